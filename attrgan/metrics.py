"""Attribute similarity metrics of the paper's Table 1 (raw attribute units)."""
from __future__ import annotations

import numpy as np


def cosine_similarity(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-row cosine similarity of two ``[N, A]`` arrays."""
    predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
    norms = np.linalg.norm(predicted, axis=1) * np.linalg.norm(target, axis=1)
    return (predicted * target).sum(1) / np.maximum(norms, 1e-12)


def squared_error(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-row squared error ``||predicted - target||^2``, summed over attributes."""
    diff = np.asarray(predicted, np.float64) - np.asarray(target, np.float64)
    return (diff**2).sum(1)


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
    """Fréchet distance between Gaussians fitted to two feature sets ``[N, D]``."""
    from scipy import linalg

    mu_a, mu_b = a.mean(0), b.mean(0)
    offset = 1e-6 * np.eye(a.shape[1])  # keeps the product well-conditioned when N < D
    cov_a, cov_b = np.cov(a, rowvar=False) + offset, np.cov(b, rowvar=False) + offset
    covmean = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))
