"""`train-conditional`: the training loop for the conditional VAE/GAN and its baselines.

Reads top to bottom: setup (device, data, networks, optimizers, resume), then one loop of
steps (batch, gradients, NaN check, update, log, checkpoint) with per-epoch samples.
Determinism: the batch order of epoch e is seeded by (seed, e) (attrgan/batches.py), the step
noise comes from a dedicated generator saved in the checkpoint, so `--resume` continues
bit-for-bit.
"""
from __future__ import annotations

import contextlib
import csv
import math
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import yaml
from torch import nn

from data_prep.io import atomic_file, guard_output, occupied, write_json

from . import __version__
from .checkpoint import (GENERATOR_FILE, CheckpointError, checkpoint_file, load_checkpoint, save_checkpoint,
                         snapshot_file)
from .config import Config
from .augment import augment_batch
from .batches import epoch_order, share_applies
from .data import ImageRows, Standardizer, open_dataset, select_attributes, to_model_range
from .device import compile_networks, resolve_compile, resolve_device, resolve_precision
from .distributed import DistInfo, all_agree, average_gradients, broadcast_parameters, init_distributed, shutdown
from .models import WEIGHTED_LAYERS, build_models, weight_parameter
from .plots import plot_loss_curves, plot_quality_curves, save_grid
from .progress import progress_bar
from .resume import check_compatible, dataset_fingerprint
from .steps import STEPS, Noise
from .tracking import QUALITY_FIELDS, QualityTracker

POWER_SCHEDULE_EXPONENT = 0.75  # the authors' lr annealer (deeppy GammaAnnealer, gamma 0.75)
GRID_QUERIES = 8  # query attribute vectors in the per-epoch sample grid
GRID_SEEDS = 8  # fixed z per query


class NonFiniteLossError(RuntimeError):
    """A NaN or Inf loss or weight; training stops and the last good checkpoint is kept."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM during training: the current step was finished and checkpointed."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum  # 130 for Ctrl-C, 143 for SIGTERM


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[dict]:
    """While training, SIGINT/SIGTERM only ask the loop to stop after the current step
    (``flag["signal"]`` is set); the previous handlers are restored afterwards."""
    flag: dict = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def request_stop(signum, _frame) -> None:
        flag["signal"] = signum

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0


def train(config: Config, out: str | Path, resume: bool = False, argv: list[str] | None = None,
          regressor: str | Path | None = None, force: bool = False, allow_changes: bool = False,
          config_path: str | Path | None = None) -> Path:
    """Train ``config.model.kind`` on ``config.data.path``; write the run directory ``out``.

    Returns the checkpoint path. With ``resume`` the run continues from ``out/checkpoint.pt``
    (with other training settings only if ``allow_changes``); with ``force`` an existing run in
    ``out`` is replaced once the new one starts. ``out`` may not overlap the dataset, the
    regressor or ``config_path`` (the YAML the config came from; on resume the run's own
    config.yaml is fine). With a ``regressor`` (and ``train.eval_every``) the run tracks its
    sample quality on fixed queries of ``train.eval_split``: Fréchet distance, cosine and a
    grid (attrgan.tracking).
    """
    out = Path(out)
    if resume and force:
        raise ValueError("--resume continues the run in OUT and --force replaces it: pass one of them")
    own_config = resume and config_path is not None and Path(config_path).resolve() == (out / "config.yaml").resolve()
    guard_output(out, [config.data.path, regressor and checkpoint_file(regressor), None if own_config else config_path],
                 force=force or resume)
    tc = config.train
    device = resolve_device(tc.device)
    info = init_distributed(device.type)
    if device.type == "cuda" and info.enabled:
        device = torch.device("cuda", info.local_rank)
    if tc.threads and device.type == "cpu":
        torch.set_num_threads(tc.threads)
    try:
        with _stop_on_signals() as stop:
            return _train(config, out, resume, argv, device, info, regressor, stop, force, allow_changes)
    finally:
        shutdown(info)


def _train(config: Config, out: Path, resume: bool, argv, device: torch.device, info: DistInfo, regressor,
           stop: dict, force: bool, allow_changes: bool) -> Path:
    tc, kind = config.train, config.model.kind
    ckpt_path = out / GENERATOR_FILE
    if resume and not ckpt_path.exists():
        raise CheckpointError(f"{ckpt_path}: nothing to resume")
    previous = load_checkpoint(ckpt_path, expect_kinds=("vaegan", "vae", "gan")) if resume else None

    # ---------------------------------------------------------------- data
    dataset = open_dataset(config.data.path)
    fingerprint = dataset_fingerprint(config.data.path)
    names = select_attributes(dataset.attribute_names, config.data.attributes)
    # with unlabelled images in the batch, the FC layers also see a labelled flag; an
    # unconditional model sees no attributes, so every image is alike and needs none
    config.model.labelled_input = bool(names) and (config.model.labelled_input or config.data.unlabelled == "use")
    changes = check_compatible(previous, config, ckpt_path, fingerprint, allow_changes) if previous is not None else {}
    training = training_set(dataset, config, names, previous)
    rows, images, y_all, labelled_all, scaler_y = (training.rows, training.images, training.y, training.labelled,
                                                    training.scaler)
    batch = min(tc.batch_size, len(rows))
    if batch < tc.batch_size and info.is_main:
        print(f"train.batch_size {tc.batch_size} is more than the {len(rows)} training images: batches of {batch}",
              file=sys.stderr)
    if batch % info.world_size:
        raise ValueError(f"batch size {batch} is not divisible by the {info.world_size} processes")
    batches_per_epoch = len(rows) // batch
    if config.data.labelled_share is not None and not share_applies(labelled_all, config.data.labelled_share) \
            and info.is_main:
        print(f"data.labelled_share={config.data.labelled_share} changes nothing here: every training image is "
              "labelled (data.unlabelled=skip or a fully labelled dataset)", file=sys.stderr)
    total_steps = tc.max_steps if tc.max_steps is not None else tc.epochs * batches_per_epoch
    if previous is not None and previous["step"] >= total_steps:
        if info.is_main:
            print(f"{ckpt_path}: already at step {previous['step']}, at or past the step limit {total_steps}: "
                  "nothing to train, the run is left as it is (raise --max-steps or --epochs to go on)", file=sys.stderr)
        return ckpt_path

    # ---------------------------------------------------------------- networks and optimizers
    torch.manual_seed(tc.seed)
    nets = {name: net.to(device) for name, net in build_models(config.model, len(names)).items()}
    if tc.channels_last:
        nets = {name: net.to(memory_format=torch.channels_last) for name, net in nets.items()}
    optims = {name: make_optimizer(net, config.optim, config.optim.dis_lr_ratio if name == "discriminator" else 1.0)
              for name, net in nets.items()}
    schedulers = {name: make_scheduler(opt, config.optim) for name, opt in optims.items()}
    noise_gen = torch.Generator().manual_seed(tc.seed * 7919 + info.rank)
    state = TrainState()
    if previous is not None:
        for name, net in nets.items():
            net.load_state_dict(previous["nets"][name])
            optims[name].load_state_dict(previous["optimizers"][name])
            schedulers[name].load_state_dict(previous["schedulers"][name])
        saved_states = previous["rng"]["noise"]
        if len(saved_states) != info.world_size:
            raise CheckpointError(f"{ckpt_path}: saved by {len(saved_states)} process(es); resume with the same number")
        noise_gen.set_state(saved_states[info.rank])
        state = TrainState(previous["step"], previous["epoch"], previous["batch_in_epoch"])
    broadcast_parameters(nets, info)
    precision = resolve_precision(tc.precision, device)
    autocast, grad_scaler = _precision(precision, device)
    step_fn = STEPS[kind]
    step_nets = compile_networks(nets, device) if resolve_compile(tc.compile, device, precision) else nets  # same parameters
    compiled = step_nets is not nets
    tracker = QualityTracker.create(regressor, dataset, names, scaler_y, config, device, precision) \
        if regressor is not None and tc.eval_every and info.is_main else None

    # fixed inputs of the per-epoch grids: first train images, and queries of the first images
    fixed_x = to_model_range(images[:GRID_QUERIES]).to(device)
    fixed_y = y_all[:GRID_QUERIES].to(device)
    grid_z, grid_y = _sample_grid_inputs(fixed_y, config.model.z_dim, tc.seed + 1)

    if info.is_main:
        if force and occupied(out):  # --force: the old run goes once everything above has passed
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_file(out / "config.yaml") as tmp:
            tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        write_json(out / "run.json", {"argv": argv or sys.argv, "version": __version__, "device": str(device),
                                      "setting_changes": _setting_changes(out, resume, changes, state.step),
                                      "precision": precision, "compiled": compiled, "world_size": info.world_size, "train_images": len(rows),
                                      "labelled_train_images": int(labelled_all.sum()),
                                      "regressor": str(regressor) if tracker else None})
        print(f"train {kind}: {len(rows)} train images ({int(labelled_all.sum())} labelled), {device}, {precision}"
              f"{', compiled' if compiled else ''}",
              file=sys.stderr)
    log = _MetricsLog(out / "metrics.csv", truncate_after=state.step, enabled=info.is_main,
                      extra_fields=(*(("D/r1",) if kind != "vae" and config.loss.r1_weight else ()),
                                    *(QUALITY_FIELDS if tracker else ())))

    def checkpoint(finished: bool = False, snapshot: bool = False) -> None:
        rng_states = _gather_generator_states(noise_gen, info)  # a collective: every rank takes part
        if not info.is_main:
            return
        payload = {
            "kind": kind, "config": config.to_dict(), "image_size": config.model.image_size, **scaler_y.to_dict(),
            "nets": {n: net.state_dict() for n, net in nets.items()},
            "optimizers": {n: o.state_dict() for n, o in optims.items()},
            "schedulers": {n: s.state_dict() for n, s in schedulers.items()},
            "step": state.step, "epoch": state.epoch, "batch_in_epoch": state.batch_in_epoch,
            "rng": {"noise": rng_states}, "package_version": __version__, "finished": finished,
            "dataset_fingerprint": fingerprint,
        }
        save_checkpoint(out / GENERATOR_FILE, payload)
        if snapshot:
            save_checkpoint(out / snapshot_file(state.step), payload)

    # ---------------------------------------------------------------- training loop
    bar = _progress(total_steps, state.step, info.is_main and tc.progress, kind)
    started = time.perf_counter()
    if state.step == 0:
        checkpoint()  # a good checkpoint exists from the start, so a NaN at step 1 still leaves one
    def must_stop() -> bool:
        late = tc.max_minutes is not None and time.perf_counter() - started > 60 * tc.max_minutes
        return not all_agree(not (late or stop["signal"]), info)

    while state.step < total_steps and not must_stop():
        order = epoch_order(tc.seed, state.epoch, labelled_all, batch, batches_per_epoch, config.data.labelled_share)
        while state.batch_in_epoch < batches_per_epoch and state.step < total_steps and not must_stop():
            # ---- batch: this rank's share of the global batch
            idx = order[state.batch_in_epoch * batch : (state.batch_in_epoch + 1) * batch][info.rank :: info.world_size]
            x = augment_batch(to_model_range(images[idx]), config.data.augment, noise_gen).to(device, non_blocking=True)
            y = y_all[idx].to(device, non_blocking=True)
            if tc.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            noise = Noise(
                eps=torch.randn(len(idx), config.model.z_dim, generator=noise_gen).to(device),
                z_prior=torch.randn(len(idx), config.model.z_dim, generator=noise_gen).to(device),
                labelled=labelled_all[idx].to(device) if config.model.labelled_input else None,
            )
            for net in nets.values():
                net.train()
            # ---- gradients, each network from its own loss
            with autocast():
                result = step_fn(step_nets, x, y, noise, config.loss, scale=grad_scaler.scale,
                                 r1=state.step % config.loss.r1_every == 0)  # lazy R1: every r1_every-th update
            bad = [f"{n}={v}" for n, v in result.logs.items() if not math.isfinite(v)]
            if not all_agree(not bad, info):
                raise NonFiniteLossError(
                    f"step {state.step + 1}: non-finite loss ({', '.join(bad) or 'on another rank'}); stopped. "
                    f"The last good checkpoint ({out / GENERATOR_FILE}, step {_saved_step(out)}) is intact"
                )
            # ---- update
            for name, grads in result.grads.items():
                if not all_agree(grads is not None, info):  # equilibrium gates can differ between ranks
                    continue
                params = [p for p in nets[name].parameters() if p.requires_grad]
                for p, g in zip(params, average_gradients(grads, info)):
                    p.grad = g
                if config.optim.grad_clip:
                    grad_scaler.unscale_(optims[name])
                    torch.nn.utils.clip_grad_norm_(params, config.optim.grad_clip)
                grad_scaler.step(optims[name])
                optims[name].zero_grad(set_to_none=True)
            grad_scaler.update()
            bad_weights = [name for name, net in nets.items() if not weights_finite(net)]
            if not all_agree(not bad_weights, info):  # checked before anything of this step is saved
                raise NonFiniteLossError(
                    f"step {state.step + 1}: non-finite weights in the {', '.join(bad_weights) or 'networks of another rank'} "
                    f"after the update (a learning rate or loss weight too large?); stopped. The last good checkpoint "
                    f"({out / GENERATOR_FILE}, step {_saved_step(out)}) is intact"
                )
            state.step += 1
            state.batch_in_epoch += 1
            if scheduled_per_update(config.optim):
                for scheduler in schedulers.values():
                    scheduler.step()
            # ---- log
            quality = {}
            if tracker is not None and state.step % tc.eval_every == 0:
                quality = tracker.measure(nets["decoder"], out / "samples", state.step)
            if state.step % tc.log_every == 0 or quality:
                log.write({"step": state.step, "epoch": state.epoch, "time_s": round(time.perf_counter() - started, 3),
                           "lr": optims[next(iter(optims))].param_groups[0]["lr"], **result.logs, **quality})
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in result.logs.items() if "trained" not in k}, refresh=False)
            snapshot = bool(tc.snapshot_every) and state.step % tc.snapshot_every == 0
            if snapshot or (tc.checkpoint_every and state.step % tc.checkpoint_every == 0):
                checkpoint(snapshot=snapshot)
        if state.batch_in_epoch >= batches_per_epoch:
            # ---- end of epoch: lr decay, grids, curves
            if not scheduled_per_update(config.optim):
                for scheduler in schedulers.values():
                    scheduler.step()
            if info.is_main and tc.sample_every_epoch:
                _write_epoch_images(nets, fixed_x, fixed_y, grid_z, grid_y, out / "samples", state.epoch)
            state.epoch += 1
            state.batch_in_epoch = 0
    bar.close()
    if not all_agree(stop["signal"] is None, info):  # a signal reached some rank: every rank saves and stops
        signum = stop["signal"] or signal.SIGTERM
        checkpoint()
        log.close()
        raise TrainingInterrupted(signum, f"interrupted by {signal.Signals(signum).name} at step {state.step}: "
                                  f"checkpoint saved to {out / GENERATOR_FILE}; --resume continues exactly")
    checkpoint(finished=True)
    if info.is_main:
        log.close()
        plot_loss_curves(out / "metrics.csv", out / "loss_curves.png")
        if tracker is not None:
            plot_quality_curves(out / "metrics.csv", out / "quality_curves.png")
        if tc.sample_every_epoch:
            _write_epoch_images(nets, fixed_x, fixed_y, grid_z, grid_y, out / "samples", "final")
    return out / GENERATOR_FILE


@dataclass
class TrainingSet:
    rows: np.ndarray  # dataset rows, labelled first
    images: ImageRows  # uint8 [N, 3, S, S], read from the dataset's memory map per batch
    y: torch.Tensor  # standardized attributes [N, A]; 0 (the mean) for unlabelled images
    labelled: torch.Tensor  # [N] float 1/0
    scaler: Standardizer


def training_set(dataset, config: Config, names: list[str], previous: dict | None = None) -> TrainingSet:
    """The images a generative model trains on: the labelled rows of ``data.split`` and, with
    ``data.unlabelled=use``, its unlabelled rows too (y = 0, labelled = 0). The standardizer is
    fitted on the labelled rows only (or taken from the resumed checkpoint). An unconditional
    model (no ``names``) trains on every image of the split. Splits are identity-disjoint, so
    no val or test person's image, labelled or not, is ever here."""
    labelled_rows = dataset.rows(config.data.split, labelled_only=bool(names))  # unconditional: every image
    if len(labelled_rows) < 2:
        raise ValueError(f"{config.data.path}: fewer than 2 labelled {config.data.split} images to train on")
    extra = np.setdiff1d(dataset.rows(config.data.split, labelled_only=False), labelled_rows) \
        if config.data.unlabelled == "use" else np.array([], dtype=np.int64)
    rows = np.concatenate([labelled_rows, extra])
    raw_y = dataset.attributes(labelled_rows, names)
    scaler = Standardizer.from_dict(previous) if previous else Standardizer.fit(names, raw_y)
    y = np.concatenate([scaler.transform(raw_y), np.zeros((len(extra), len(names)), np.float32)])
    labelled = torch.cat([torch.ones(len(labelled_rows)), torch.zeros(len(extra))])
    images = ImageRows(dataset, rows, config.model.image_size)
    return TrainingSet(rows, images, torch.from_numpy(y), labelled, scaler)


def make_optimizer(net: nn.Module, oc, lr_ratio: float = 1.0) -> torch.optim.Optimizer:
    """RMSProp at lr * ``lr_ratio``; weight decay (if any) on conv and FC weights only, as in the authors' code."""
    decayed = [weight_parameter(m) for m in net.modules() if isinstance(m, WEIGHTED_LAYERS)]
    ids = {id(p) for p in decayed}
    rest = [p for p in net.parameters() if id(p) not in ids]
    groups = [{"params": decayed, "weight_decay": oc.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.RMSprop(groups, lr=oc.lr * lr_ratio, alpha=oc.alpha, eps=oc.eps)


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


def _precision(precision: str, device: torch.device):
    """(autocast context factory, grad scaler) for fp32, bf16 (CPU and CUDA) or fp16 (CUDA)."""
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("--precision fp16 needs CUDA; use bf16 on CPU")
    enabled = precision != "fp32"
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    return (lambda: torch.autocast(device.type, dtype=dtype, enabled=enabled)), scaler


def weights_finite(net: nn.Module) -> bool:
    """Whether every parameter and buffer is finite: the largest and smallest value of each
    tensor (NaN propagates through both; no overflow, unlike a sum), read back once; about 30 ms
    for the 18 M values of configs/lfw32.yaml on one AVX2 core, 0.5% of its step."""
    tensors = [t.detach() for t in [*net.parameters(), *net.buffers()] if t.is_floating_point() and t.numel()]
    return bool(torch.isfinite(torch.stack([t.amax() for t in tensors] + [t.amin() for t in tensors])).all())


def _setting_changes(out: Path, resume: bool, changes: dict, step: int) -> list[dict]:
    """run.json's record of the settings changed on resume (``--allow-changes``), kept across resumes."""
    import json

    earlier = []
    if resume and (out / "run.json").is_file():
        earlier = json.loads((out / "run.json").read_text()).get("setting_changes", [])
    return earlier + ([{"step": step, "changed": changes}] if changes else [])


def _gather_generator_states(generator: torch.Generator, info: DistInfo) -> list[torch.Tensor]:
    """Every rank's noise-generator state (rank order), so resume restores each rank's stream."""
    state = generator.get_state()
    if not info.enabled:
        return [state]
    import torch.distributed as dist

    states = [torch.empty_like(state) for _ in range(info.world_size)]
    dist.all_gather(states, state)
    return states


def _saved_step(out: Path) -> int | str:
    try:
        return load_checkpoint(out / GENERATOR_FILE)["step"]
    except CheckpointError:
        return "none"


def _sample_grid_inputs(fixed_y: torch.Tensor, z_dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(z, y) of the per-epoch sample grid, row by row: one row per fixed query, the same
    GRID_SEEDS z across rows; an unconditional model (no attribute columns) gets a fresh z in
    every cell instead of GRID_QUERIES copies of one row."""
    rows = len(fixed_y)
    conditional = fixed_y.shape[1] > 0
    z = torch.randn(GRID_SEEDS if conditional else rows * GRID_SEEDS, z_dim,
                    generator=torch.Generator().manual_seed(seed)).to(fixed_y.device)
    return (z.repeat(rows, 1) if conditional else z), fixed_y.repeat_interleave(GRID_SEEDS, 0)


@torch.no_grad()
def _write_epoch_images(nets, fixed_x, fixed_y, grid_z, grid_y, folder: Path, epoch) -> None:
    """Reconstructions (input row over reconstruction row) and samples (the grid of
    :func:`_sample_grid_inputs`, GRID_SEEDS per row)."""
    for net in nets.values():
        net.eval()
    dec = nets["decoder"]
    tag = epoch if isinstance(epoch, str) else f"epoch{epoch:03d}"
    if "encoder" in nets:
        mu, _ = nets["encoder"](fixed_x, fixed_y)
        save_grid(torch.cat([fixed_x, dec(mu, fixed_y)]), folder / f"{tag}_reconstructions.png", nrow=len(fixed_x))
    save_grid(dec(grid_z, grid_y), folder / f"{tag}_samples.png", nrow=GRID_SEEDS)


class _MetricsLog:
    """metrics.csv, one row per logged step; on resume, rows after the checkpoint are dropped.
    ``extra_fields`` are columns only some rows fill (the quality checks)."""

    def __init__(self, path: Path, truncate_after: int, enabled: bool, extra_fields: tuple[str, ...] = ()) -> None:
        self.path, self.enabled, self.handle, self.writer = path, enabled, None, None
        self.extra_fields = list(extra_fields)
        self.fields: list[str] | None = None
        if enabled and path.exists():
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
            keep = [r for r in rows if int(r["step"]) <= truncate_after]
            self.fields = list(rows[0].keys()) if rows else None
            with path.open("w", newline="") as f:
                if self.fields:
                    w = csv.DictWriter(f, self.fields)
                    w.writeheader()
                    w.writerows(keep)

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        if self.handle is None:
            new = not self.path.exists() or self.fields is None
            self.fields = self.fields or [*row, *(f for f in self.extra_fields if f not in row)]
            self.handle = self.path.open("a", newline="")
            self.writer = csv.DictWriter(self.handle, self.fields, extrasaction="ignore")
            if new:
                self.writer.writeheader()
        self.writer.writerow(row)
        self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _progress(total: int, initial: int, enabled: bool, kind: str):
    return progress_bar(enabled, total=total, initial=initial, unit="step", desc=f"train {kind}")
