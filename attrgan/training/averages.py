"""Exponential moving averages of the encoder's and decoder's weights (``optim.ema``).

Sampling, encoding and editing use the averages (Karras et al. 2018; StyleGAN2's G_ema): they
smooth out the update-to-update jitter that a GAN's decoder carries, which shows as colour
speckle at small budgets. Each update moves the average towards the live weights by
``1 - beta``, with ``beta = min(ema, (1 + t) / (10 + t))`` after ``t`` updates, so that a short
run is not dominated by its initial weights; buffers (batch-norm statistics) are copied.
D is never averaged: it is only trained against."""
from __future__ import annotations

import copy

import torch
from torch import nn

AVERAGED = ("encoder", "decoder")  # the networks sampling, encoding and editing read


def make_averages(nets: dict[str, nn.Module], decay: float) -> dict[str, nn.Module]:
    """Frozen copies of the encoder and decoder in ``nets`` (none when ``decay`` is 0: off)."""
    if not decay:
        return {}
    averages = {name: copy.deepcopy(net) for name, net in nets.items() if name in AVERAGED}
    for net in averages.values():
        net.requires_grad_(False)
        net.eval()
    return averages


def average_decay(decay: float, step: int) -> float:
    """The decay used after ``step`` updates: ``decay``, warmed up as ``(1 + step) / (10 + step)``."""
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def update_averages(averages: dict[str, nn.Module], nets: dict[str, nn.Module], decay: float, step: int) -> None:
    """Move each average towards its live network after update ``step`` (counted from 1)."""
    beta = average_decay(decay, step)
    for name, average in averages.items():
        live = nets[name]
        for kept, current in zip(average.parameters(), live.parameters()):
            kept.lerp_(current.detach(), 1.0 - beta)
        for kept, current in zip(average.buffers(), live.buffers()):
            kept.copy_(current)
