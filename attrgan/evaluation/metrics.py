"""Attribute similarity metrics of the paper's Table 1 (raw attribute units)."""
from __future__ import annotations

import numpy as np
import torch

from attrgan.data.dataset import to_model_range, to_uint8


def cosine_similarity(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-row cosine similarity of two ``[N, A]`` arrays."""
    predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
    norms = np.linalg.norm(predicted, axis=1) * np.linalg.norm(target, axis=1)
    return (predicted * target).sum(1) / np.maximum(norms, 1e-12)


def squared_error(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-row squared error ``||predicted - target||^2``, summed over attributes."""
    diff = np.asarray(predicted, np.float64) - np.asarray(target, np.float64)
    return (diff**2).sum(1)


def centred_cosine(predicted: np.ndarray, target: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Per-row cosine similarity after standardizing both arrays with the train split's
    attribute ``mean`` and ``std``: the raw cosine's large common component (every face
    shares the average attribute vector) is gone, so an average face no longer scores high."""
    mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    return cosine_similarity((np.asarray(predicted, np.float64) - mean) / std,
                             (np.asarray(target, np.float64) - mean) / std)


def sign_accuracy(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per attribute, the share of rows whose regressed value has the query's sign (positive
    raw values mean the attribute is present): does the face show what the query asks for."""
    return (np.sign(np.asarray(predicted)) == np.sign(np.asarray(target))).mean(0)


def attribute_scores(predicted: np.ndarray, target: np.ndarray, mean: np.ndarray, std: np.ndarray) -> dict[str, float]:
    """The four figures of regressed attributes against their queries, averaged over rows (raw
    units; the centred cosine standardized by the train split's ``mean`` and ``std``)."""
    return {"cosine": float(cosine_similarity(predicted, target).mean()),
            "squared_error": float(squared_error(predicted, target).mean()),
            "centred_cosine": float(centred_cosine(predicted, target, mean, std).mean()),
            "sign_accuracy": float(sign_accuracy(predicted, target).mean())}


def kl_from_standard_normal(mean: np.ndarray, cov: np.ndarray) -> float:
    """KL(N(mean, cov) || N(0, I)) in nats (infinite for a singular ``cov``)."""
    mean, cov = np.asarray(mean, np.float64), np.asarray(cov, np.float64)
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        return float("inf")
    return 0.5 * float(np.trace(cov) + mean @ mean - len(mean) - logdet)


def prior_mismatch(mu: np.ndarray, logvar: np.ndarray) -> float:
    """How far a VAE's aggregate posterior (the mixture of q(z | x) over images, moment-matched
    by one Gaussian: the means' covariance plus the mean posterior variance) sits from the prior
    N(0, I), in nats. Prior samples of a model with a large mismatch fall where the decoder
    saw few codes in training."""
    mu, variance = np.asarray(mu, np.float64), np.exp(np.asarray(logvar, np.float64))
    return kl_from_standard_normal(mu.mean(0), np.cov(mu, rowvar=False, bias=True) + np.diag(variance.mean(0)))


def high_frequency_energy(images, batch: int = 256) -> tuple[float, float]:
    """Mean squared 4-neighbour Laplacian of ``[N, 3, H, W]`` images (uint8, or floats in
    [-1, 1]; a tensor or anything sliced into batches, like attrgan.data.dataset.ImageRows), split into
    the grey image's (fine detail: low for blurry faces) and the colour left after removing the
    grey (a colour speckle raises it). Divided by the same figures of real images, they read 1.0
    for real-like detail and colour."""
    def energy(t: torch.Tensor) -> torch.Tensor:
        laplacian = 4 * t[..., 1:-1, 1:-1] - t[..., :-2, 1:-1] - t[..., 2:, 1:-1] - t[..., 1:-1, :-2] - t[..., 1:-1, 2:]
        return laplacian.pow(2).mean() * len(t)

    detail = colour = 0.0
    for i in range(0, len(images), batch):
        chunk = images[i : i + batch]
        x = to_model_range(chunk) if chunk.dtype == torch.uint8 else chunk.float()
        grey = x.mean(1, keepdim=True)
        detail, colour = detail + float(energy(grey)), colour + float(energy(x - grey))
    return detail / len(images), colour / len(images)


SPECTRUM_BANDS = ((0.0, 1 / 8), (1 / 8, 1 / 4), (1 / 4, 3 / 8), (3 / 8, 0.75))  # radial frequency, cycles per pixel
BAND_NAMES = ("0-1/8", "1/8-1/4", "1/4-3/8", ">3/8")
MID_BAND = "1/8-1/4"  # eyes, mouth and hair edges at 32x32: where a sharper face gains power over a blurry one
# the (1/2, 1/2) corner: |f_x| and |f_y| both >= 7/16 cycles per pixel, where a checkerboard's power sits
CORNER = 7 / 16


def power_spectrum_bands(images, batch: int = 256) -> dict[str, float]:
    """Band-wise power spectrum of ``[N, 3, H, W]`` images (uint8, or floats in [-1, 1] taken
    to the 8-bit grid first, as saved and as the real faces are stored, so both carry the same
    quantisation noise; a tensor or anything sliced into batches): each image's channels have their mean removed,
    then |FFT|^2 / (H W) is averaged over images and channels and, within each radial band
    of :data:`SPECTRUM_BANDS` (cycles per pixel; the lowest band excludes DC), over its
    frequency bins. ``corner`` is the mean power where both |f_x| and |f_y| are >= 7/16, the
    (1/2, 1/2) checkerboard corner. Divided by the real faces' figures they read 1.0 for a
    real-like spectrum: a blurry face falls below 1 in the mid and high bands, a speckled one
    rises far above 1 at the corner."""
    total = None
    for i in range(0, len(images), batch):
        chunk = images[i : i + batch]
        levels = (chunk if chunk.dtype == torch.uint8 else to_uint8(chunk)).double()
        x = levels / 127.5 - 1
        x = x - x.mean((-2, -1), keepdim=True)
        power = torch.fft.fft2(x).abs().pow(2).sum((0, 1)) / (x.shape[-1] * x.shape[-2])
        total = power if total is None else total + power
    power = total / (len(images) * 3)
    fy = torch.fft.fftfreq(power.shape[0], dtype=torch.float64).abs()[:, None]
    fx = torch.fft.fftfreq(power.shape[1], dtype=torch.float64).abs()[None, :]
    radius = (fx**2 + fy**2).sqrt()
    bands = {name: float(power[(radius > low) & (radius <= high)].mean()) for name,
             (low, high) in zip(BAND_NAMES, SPECTRUM_BANDS)}
    return {**bands, "corner": float(power[(fx >= CORNER) & (fy >= CORNER)].mean())}


def spectrum_vs_real(images, real: dict[str, float]) -> dict[str, float]:
    """:func:`power_spectrum_bands` of ``images`` divided band by band by the real faces' ``real``."""
    return {band: value / real[band] for band, value in power_spectrum_bands(images).items()}


def r2_per_attribute(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Coefficient of determination of each attribute column."""
    predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
    residual = ((target - predicted) ** 2).sum(0)
    total = ((target - target.mean(0)) ** 2).sum(0)
    return 1.0 - residual / np.maximum(total, 1e-12)


def mean_std(values: list[float] | np.ndarray) -> tuple[float, float]:
    """Mean and (population) standard deviation over seeds; std is 0 for one value."""
    values = np.asarray(values, np.float64)
    return float(values.mean()), float(values.std())


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``[N, D]``:
    |mu_a - mu_b|² + tr(C_a) + tr(C_b) - 2 tr sqrt(C_a C_b).

    With centred features A, B the non-zero eigenvalues of C_a C_b are the squared singular
    values of M = A Bᵀ / sqrt((N_a - 1)(N_b - 1)), so tr sqrt(C_a C_b) is M's nuclear norm:
    exact, and an N_a x N_b SVD instead of a D x D matrix square root (D = 2048 features)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ca, cb = a - a.mean(0), b - b.mean(0)
    m = (ca @ cb.T) / np.sqrt((len(a) - 1) * (len(b) - 1))
    trace_sqrt = np.linalg.svd(m, compute_uv=False).sum()
    traces = (ca**2).sum() / (len(a) - 1) + (cb**2).sum() / (len(b) - 1)
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + traces - 2 * trace_sqrt)
