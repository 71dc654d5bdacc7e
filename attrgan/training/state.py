"""What a run carries from update to update and into its checkpoint: the networks, their
optimisers and learning-rate schedules, the step noise's generator and the position in the data."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from attrgan import __version__
from attrgan.checkpoint import CheckpointError, save_checkpoint, snapshot_file
from attrgan.config import Config
from attrgan.data.dataset import Standardizer
from attrgan.nets.models import WEIGHTED_LAYERS, build_models, weight_parameter
from attrgan.runtime.distributed import DistInfo, broadcast_parameters, gather_generator_states
from attrgan.runtime.errors import UserError
from attrgan.training.averages import make_averages

POWER_SCHEDULE_EXPONENT = 0.75  # the authors' lr annealer (deeppy GammaAnnealer, gamma 0.75)


@dataclass
class TrainState:
    """Where the run is: updates done, the epoch, and the batch within it."""
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0


@dataclass
class RunState:
    nets: dict[str, nn.Module]
    optims: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler]
    noise: torch.Generator  # this rank's stream of step noise (eps, z_prior, augmentation)
    position: TrainState
    averages: dict[str, nn.Module] = field(default_factory=dict)  # optim.ema's encoder and decoder

    @property
    def outputs(self) -> dict[str, nn.Module]:
        """The networks that draw and encode faces: the weight averages where kept, else the live ones."""
        return {**self.nets, **self.averages}

    def step_schedules(self) -> None:
        for scheduler in self.schedulers.values():
            scheduler.step()

    @property
    def lr(self) -> float:
        return next(iter(self.optims.values())).param_groups[0]["lr"]


def build_state(config: Config, n_attributes: int, device: torch.device, info: DistInfo,
                previous: dict | None, ckpt_path: Path, start: Callable[[dict], None] | None = None) -> RunState:
    """Networks (seeded by ``train.seed``, then given ``start``'s weights for fine-tuning),
    optimisers and schedules; restored from ``previous`` (a checkpoint payload) when resuming;
    rank 0's parameters on every rank."""
    tc = config.train
    torch.manual_seed(tc.seed)
    nets = {name: net.to(device) for name, net in build_models(config.model, n_attributes).items()}
    if start is not None:
        start(nets)
    if tc.channels_last:
        nets = {name: net.to(memory_format=torch.channels_last) for name, net in nets.items()}
    optims = {name: make_optimizer(net, config.optim, config.optim.dis_lr_ratio if name == "discriminator" else 1.0)
              for name, net in nets.items()}
    schedulers = {name: make_scheduler(opt, config.optim) for name, opt in optims.items()}
    run = RunState(nets, optims, schedulers, torch.Generator().manual_seed(tc.seed * 7919 + info.rank), TrainState())
    if previous is not None:
        for name, net in nets.items():
            net.load_state_dict(previous["nets"][name])
            optims[name].load_state_dict(previous["optimizers"][name])
            schedulers[name].load_state_dict(previous["schedulers"][name])
        saved_states = previous["rng"]["noise"]
        if len(saved_states) != info.world_size:
            raise CheckpointError(f"{ckpt_path}: saved by {len(saved_states)} process(es); resume with the same number")
        run.noise.set_state(saved_states[info.rank])
        run.position = TrainState(previous["step"], previous["epoch"], previous["batch_in_epoch"])
    broadcast_parameters(nets, info)
    run.averages = make_averages(nets, config.optim.ema)  # rank 0's weights, as every rank now holds
    for name, average in run.averages.items():
        # else: from the live weights (ema added on resume)
        if previous is not None and name in previous.get("averages", {}):
            average.load_state_dict(previous["averages"][name])
    return run


def save_run(path: Path, run: RunState, config: Config, scaler: Standardizer, fingerprint: str, info: DistInfo,
             finished: bool = False, snapshot: bool = False) -> None:
    """Checkpoint ``run`` to ``path`` (and a kept copy beside it with ``snapshot``). A collective:
    every rank takes part (their noise states are gathered); rank 0 writes."""
    rng_states = gather_generator_states(run.noise, info)
    if not info.is_main:
        return
    at = run.position
    payload = {
        "kind": config.model.kind, "config": config.to_dict(), "image_size": config.model.image_size,
        **scaler.to_dict(),
        "nets": {n: net.state_dict() for n, net in run.nets.items()},
        **({"averages": {n: net.state_dict() for n, net in run.averages.items()}} if run.averages else {}),
        "optimizers": {n: o.state_dict() for n, o in run.optims.items()},
        "schedulers": {n: s.state_dict() for n, s in run.schedulers.items()},
        "step": at.step, "epoch": at.epoch, "batch_in_epoch": at.batch_in_epoch,
        "rng": {"noise": rng_states}, "package_version": __version__, "finished": finished,
        "dataset_fingerprint": fingerprint,
    }
    save_checkpoint(path, payload)
    if snapshot:
        save_checkpoint(path.parent / snapshot_file(at.step), payload)


def make_optimizer(net: nn.Module, oc, lr_ratio: float = 1.0) -> torch.optim.Optimizer:
    """RMSProp (or Adam) at lr * ``lr_ratio``; weight decay (if any) on conv and FC weights only,
    as in the authors' code."""
    decayed = [weight_parameter(m) for m in net.modules() if isinstance(m, WEIGHTED_LAYERS)]
    ids = {id(p) for p in decayed}
    rest = [p for p in net.parameters() if id(p) not in ids]
    groups = [{"params": decayed, "weight_decay": oc.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    if oc.optimizer == "adam":
        return torch.optim.Adam(groups, lr=oc.lr * lr_ratio, betas=(oc.beta1, oc.beta2), eps=oc.eps)
    return torch.optim.RMSprop(groups, lr=oc.lr * lr_ratio, alpha=oc.alpha, eps=oc.eps)


def warmup_factor(oc, step: int) -> float:
    """The share of the scheduled learning rate that update ``step`` (from 1) uses: rising
    linearly over ``oc.warmup_steps`` updates, then 1."""
    return min(1.0, step / oc.warmup_steps) if oc.warmup_steps else 1.0


def scheduled_per_update(oc) -> bool:
    """Whether the learning-rate schedule steps after every update (else after every epoch)."""
    return oc.schedule == "power" or oc.lr_decay_every is not None


def make_scheduler(optimizer: torch.optim.Optimizer, oc):
    """``exponential``: lr * lr_decay**epoch (stepped per epoch), or with ``lr_decay_every`` = N
    lr * lr_decay**(t/N) (stepped per update, so the decay per update does not depend on the
    epoch's length). ``power`` (the authors' annealer, stepped per update):
    lr - (t/T)**0.75 * (lr - lr_end), held at lr_end after T updates."""
    if oc.schedule == "exponential" and oc.lr_decay_every is not None:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: oc.lr_decay ** (t / oc.lr_decay_every))
    if oc.schedule == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=oc.lr_decay)
    ratio = oc.lr_end / oc.lr
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: 1.0 - min(t / oc.schedule_steps, 1.0) ** POWER_SCHEDULE_EXPONENT * (1.0 - ratio))


def precision_context(precision: str, device: torch.device):
    """(autocast context factory, grad scaler) for fp32, bf16 (CPU and CUDA) or fp16 (CUDA)."""
    if precision == "fp16" and device.type != "cuda":
        raise UserError("--precision fp16 needs CUDA; use bf16 on CPU")
    enabled = precision != "fp32"
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    return (lambda: torch.autocast(device.type, dtype=dtype, enabled=enabled)), scaler
