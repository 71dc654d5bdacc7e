"""Differentiable augmentation of D's inputs (``loss.dis_augment``; Zhao et al. 2020, DiffAugment).

D sees every image, real or generated, through the same family of random transforms, which
makes a small training set harder for it to memorise pixel for pixel; the decoder still gets
gradients, because each transform is differentiable:

    color        brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5)
    translation  an integer shift of up to 1/8 of the side each way, zeros (grey) shifted in
    cutout       a square of half the side, centred anywhere in the image, set to zero

One draw per image of the batch. D's batch holds several images per row of the batch (real,
reconstruction, prior sample): row i of each gets draw i. So Dis_l compares x and its
reconstruction under the same transform, and L_llike is still smallest where x_rec = x: the
features it compares are those of the images D is trained on (augmented ones), and the
augmentation adds no difference of its own between the two. The R1 penalty takes the gradient
with respect to the un-augmented real images through the same transform (StyleGAN2-ADA's
order). The draws come from the step's noise generator, so a resumed run replays them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

TRANSLATION_SHARE, CUTOUT_SHARE = 0.125, 0.5  # DiffAugment's ratios


@dataclass
class AugmentDraw:
    """One batch's random transforms; a field is None where its transform is off."""
    brightness: torch.Tensor | None = None  # [B] added
    saturation: torch.Tensor | None = None  # [B] factor around the per-pixel channel mean
    contrast: torch.Tensor | None = None  # [B] factor around the image mean
    shift: torch.Tensor | None = None  # [B, 2] int (rows, columns)
    cutout_centre: torch.Tensor | None = None  # [B, 2] int (row, column)

    def to(self, device: torch.device) -> AugmentDraw:
        return AugmentDraw(*(None if t is None else t.to(device) for t in self.__dict__.values()))


def draw_augment(ops: list[str], batch: int, size: int, generator: torch.Generator) -> AugmentDraw | None:
    """Draw ``batch`` transforms of ``size``-pixel images from ``generator``, in a fixed order."""
    if not ops:
        return None
    draw = AugmentDraw()
    if "color" in ops:
        uniform = torch.rand(3, batch, generator=generator)
        draw.brightness, draw.saturation, draw.contrast = uniform[0] - 0.5, uniform[1] * 2, uniform[2] + 0.5
    if "translation" in ops:
        reach = int(size * TRANSLATION_SHARE + 0.5)
        draw.shift = torch.randint(-reach, reach + 1, (batch, 2), generator=generator)
    if "cutout" in ops:
        draw.cutout_centre = torch.randint(0, size + 1, (batch, 2), generator=generator)
    return draw


def augment_for_dis(images: torch.Tensor, draw: AugmentDraw | None) -> torch.Tensor:
    """``images`` [k*B, 3, S, S] through the draw's transforms, row i + j*B taking draw i."""
    if draw is None:
        return images
    times = len(images) // _batch_of(draw)
    x = images
    if draw.brightness is not None:
        x = x + _per_row(draw.brightness, times)
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * _per_row(draw.saturation, times) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * _per_row(draw.contrast, times) + mean
    if draw.shift is not None:
        x = _translate(x, draw.shift.repeat(times, 1))
    if draw.cutout_centre is not None:
        x = x * _outside_cutout(draw.cutout_centre.repeat(times, 1), x.shape[-1]).to(x.dtype)
    return x


def _batch_of(draw: AugmentDraw) -> int:
    return len(next(t for t in draw.__dict__.values() if t is not None))


def _per_row(values: torch.Tensor, times: int) -> torch.Tensor:
    return values.repeat(times)[:, None, None, None]


def _translate(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Each image moved by its (rows, columns) shift, zeros filling what comes in."""
    size = x.shape[-1]
    reach = int(shift.abs().max())
    padded = torch.nn.functional.pad(x, [reach] * 4)
    grid = torch.arange(size, device=x.device) + reach
    rows, cols = grid - shift[:, :1], grid - shift[:, 1:]  # [B, S] each
    batch = torch.arange(len(x), device=x.device)[:, None, None]
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # [B, S, S, C] -> [B, C, S, S]


def _outside_cutout(centre: torch.Tensor, size: int) -> torch.Tensor:
    """[B, 1, S, S] mask: 0 inside each image's square (side ``CUTOUT_SHARE * size``), 1 elsewhere."""
    half = int(size * CUTOUT_SHARE) // 2
    grid = torch.arange(size, device=centre.device)
    rows_in = (grid >= centre[:, :1] - half) & (grid < centre[:, :1] + half)
    cols_in = (grid >= centre[:, 1:] - half) & (grid < centre[:, 1:] + half)
    return ~(rows_in[:, :, None] & cols_in[:, None, :])[:, None]
