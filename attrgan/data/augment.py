"""Training-image augmentation for the generative models (``data.augment``).

``flip``: random horizontal flips. ``authors``: flips plus the jitter of the authors' LFW code
(andersbll/autoencoding_beyond_pixels, dataset/augment.py), drawn per image with its sigmas:
translation N(0, 1 px at 64x64, scaled with the side), scale N(1, 0.01), rotation N(0, 0.01 rad),
gamma and contrast exp(N(s², s)/ln 2) with s = 0.07, hue N(0, 0.0125 turns). Deviation: the
authors jitter contrast and hue in HSV; here contrast scales the chroma (saturation) and hue
rotates the YIQ chroma plane, which needs no HSV round trip.
Images are [-1, 1] tensors [B, 3, S, S]; the warp is bilinear with border padding.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

TRANSLATION_PX_AT_64, SCALE_SIGMA, ROTATION_SIGMA = 1.0, 0.01, 0.01
GAMMA_SIGMA, CONTRAST_SIGMA, HUE_SIGMA = 0.07, 0.07, 0.0125
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def augment_batch(x: torch.Tensor, mode: str, generator: torch.Generator) -> torch.Tensor:
    """Augment a batch with random draws from ``generator`` (so resumed runs replay them)."""
    if mode == "none":
        return x
    batch = x.shape[0]
    flip = torch.rand(batch, generator=generator) < 0.5
    x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(3), x)
    if mode == "flip":
        return x
    return _colour_jitter(_geometric_jitter(x, generator), generator)


def _normal(batch: int, generator: torch.Generator, mean: float, std: float) -> torch.Tensor:
    return torch.randn(batch, generator=generator) * std + mean


def _geometric_jitter(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    batch, _, size, _ = x.shape
    shift = torch.randn(batch, 2, generator=generator) * TRANSLATION_PX_AT_64 * (size / 64) * 2 / size  # grid units
    scale = _normal(batch, generator, 1.0, SCALE_SIGMA)
    angle = _normal(batch, generator, 0.0, ROTATION_SIGMA)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _colour_jitter(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    batch = x.shape[0]

    def log2_normal(sigma: float) -> torch.Tensor:
        return torch.exp(_normal(batch, generator, sigma**2,
                                 sigma) / math.log(2)).to(x.device, x.dtype)[:, None, None, None]

    gamma, contrast = log2_normal(GAMMA_SIGMA), log2_normal(CONTRAST_SIGMA)
    hue = (_normal(batch, generator, 0.0, HUE_SIGMA) * 2 * math.pi).to(x.device, x.dtype)
    rgb = ((x + 1) / 2).clamp(1e-6, 1).pow(gamma)
    yiq = torch.einsum("ij,bjhw->bihw", _RGB_TO_YIQ.to(x.device, x.dtype), rgb)
    luma, i, q = yiq[:, :1], yiq[:, 1], yiq[:, 2]
    cos, sin = torch.cos(hue)[:, None, None], torch.sin(hue)[:, None, None]
    chroma = torch.stack([cos * i - sin * q, sin * i + cos * q], 1) * contrast  # hue rotation, saturation power
    rgb = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_RGB_TO_YIQ).to(x.device, x.dtype),
                       torch.cat([luma, chroma], 1))
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    return (rgb.clamp(0, 1) * 2 - 1).contiguous(memory_format=layout)
