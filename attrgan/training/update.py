"""One update's inputs and its optimiser steps: this rank's share of a batch with its noise,
then each network stepped with its own gradients (averaged over ranks, optionally clipped)."""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
import torch

from attrgan.config import Config
from attrgan.data.augment import augment_batch
from attrgan.data.dataset import to_model_range
from attrgan.data.training_set import TrainingSet
from attrgan.nets.dis_augment import draw_augment
from attrgan.nets.steps import Noise
from attrgan.runtime.distributed import DistInfo, all_agree, average_gradients
from attrgan.training.state import RunState, warmup_factor


def make_batch(data: TrainingSet, idx: np.ndarray, config: Config, noise: torch.Generator,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor, Noise]:
    """Images (augmented, in [-1, 1]), standardized attributes and the step noise of rows ``idx``,
    drawn from ``noise`` in a fixed order so a resumed run draws the same."""
    x = augment_batch(to_model_range(data.images[idx]), config.data.augment, noise).to(device, non_blocking=True)
    y = data.y[idx].to(device, non_blocking=True)
    if config.train.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    z_dim = config.model.z_dim
    step_noise = Noise(
        eps=torch.randn(len(idx), z_dim, generator=noise).to(device),
        z_prior=torch.randn(len(idx), z_dim, generator=noise).to(device),
        labelled=data.labelled[idx].to(device) if config.model.labelled_input else None,
    )
    dis_augment = draw_augment(config.loss.dis_augment, len(idx), x.shape[-1], noise)  # nothing drawn when off
    step_noise.dis_augment = None if dis_augment is None else dis_augment.to(device)
    return x, y, step_noise


def apply_gradients(grads: dict[str, tuple[torch.Tensor, ...] | None], run: RunState, grad_scaler,
                    config: Config, info: DistInfo) -> None:
    """Step each network's optimiser with its gradients (at the warm-up's share of the scheduled
    learning rate, ``optim.warmup_steps``); a network whose gradients are None on any rank (its
    equilibrium gate closed) is skipped on every rank."""
    share = warmup_factor(config.optim, run.position.step + 1)
    for name, net_grads in grads.items():
        if not all_agree(net_grads is not None, info):  # equilibrium gates can differ between ranks
            continue
        params = [p for p in run.nets[name].parameters() if p.requires_grad]
        for p, g in zip(params, average_gradients(net_grads, info)):
            p.grad = g
        if config.optim.grad_clip:
            grad_scaler.unscale_(run.optims[name])
            torch.nn.utils.clip_grad_norm_(params, config.optim.grad_clip)
        with scaled_learning_rate(run.optims[name], share):
            grad_scaler.step(run.optims[name])
        run.optims[name].zero_grad(set_to_none=True)
    grad_scaler.update()


@contextlib.contextmanager
def scaled_learning_rate(optimizer: torch.optim.Optimizer, share: float) -> Iterator[None]:
    """The optimiser steps at ``share`` of each group's learning rate, which is then restored, so
    the schedule's own state never sees the warm-up."""
    if share == 1.0:
        yield
        return
    scheduled = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] *= share
    try:
        yield
    finally:
        for group, lr in zip(optimizer.param_groups, scheduled):
            group["lr"] = lr
