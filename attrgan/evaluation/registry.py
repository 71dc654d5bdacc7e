"""The figures each generator is scored by, registered under their metrics.json key.

A figure is one function of a :class:`Draw` (what a model drew for the queries under one
sampling seed, as the regressor read it) and the :class:`Reference` (the queries and the real
faces); ``@figure`` registers it, and every consumer reads :data:`FIGURES`: eval-attributes
computes each (over every sampling seed, or the first) into metrics.json, the printed table,
report.md, the training-seed summaries and curves, and training's quality checks
(``tracked``: metrics.csv's ``quality_<name>`` columns and quality_curves.png). Adding a figure is one decorated '
                         'function,
as stylegan2-ada-pytorch registers its metrics."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from attrgan.evaluation.metrics import (
    MID_BAND,
    centred_cosine,
    cosine_similarity,
    frechet_distance,
    high_frequency_energy,
    power_spectrum_bands,
    sign_accuracy,
    squared_error,
)


@dataclass(frozen=True)
class Draw:
    """One model's faces for the queries under one sampling seed (or the real faces), and what
    the regressor read from them."""

    images: torch.Tensor  # [Q, 3, S, S]: floats in [-1, 1], or uint8 for real faces
    regressed: np.ndarray  # raw attribute values [Q, A]
    features: np.ndarray  # the regressor's penultimate features [Q, D]


@dataclass(frozen=True)
class Reference:
    """What every figure compares against: the queries and the real faces of the split."""

    queries: np.ndarray  # raw attribute values [Q, A]
    mean: np.ndarray  # the regressor's train-split attribute mean and std (the centred cosine)
    std: np.ndarray
    real_features: np.ndarray  # the regressor's features of the real faces
    real_detail: float  # their high-frequency energy, grey and colour (metrics.high_frequency_energy)
    real_colour: float
    real_spectrum: dict[str, float]  # their band powers (metrics.power_spectrum_bands)

    @classmethod
    def of(cls, queries: np.ndarray, mean: np.ndarray, std: np.ndarray, real_images, real_features: np.ndarray):
        """The reference of ``real_images`` (uint8, or anything sliced into batches)."""
        detail, colour = high_frequency_energy(real_images)
        return cls(queries, mean, std, real_features, detail, colour, power_spectrum_bands(real_images))


@dataclass(frozen=True)
class Figure:
    key: str  # the metrics.json key of a model row (and of the upper-bound row)
    label: str
    digits: int
    compute: Callable[[Draw, Reference], float | None]
    every_seed: bool = False  # mean ± std over the sampling seeds; else the first seed's
    conditional: bool = False  # needs attribute queries (an unconditional model has none)
    tracked: str = ""  # also measured while training, as metrics.csv's quality_<tracked> ("": not tracked)
    curve: bool = False  # a panel of quality_curves.png (a tracked figure)
    width: int = 0  # in the printed table; 0 = not printed there
    ratio: bool = False  # a ratio to the real faces' figure: 1 for the real images
    heading: str = ""  # the printed table's heading, where shorter than the label
    with_std: bool = False  # printed with its std over sampling seeds (the paper's two figures)
    paper: bool = False  # one of the paper's Table-1 figures (report.md shows the others apart)


FIGURES: dict[str, Figure] = {}


def figure(key: str, label: str, digits: int, **options) -> Callable:
    """Register ``compute(draw, reference) -> float`` as the figure ``key`` (options: :class:`Figure`)."""
    def register(compute: Callable[[Draw, Reference], float | None]) -> Callable:
        FIGURES[key] = Figure(key, label, digits, compute, **options)
        return compute
    return register


def score(draws: list[Draw], reference: Reference, conditional: bool = True) -> dict[str, float | list | None]:
    """Every registered figure of ``draws`` (one per sampling seed): ``key`` (the mean over seeds
    or the first seed's), ``key_std`` and ``per_seed_key`` for the figures of every seed."""
    row: dict[str, float | list | None] = {}
    for f in FIGURES.values():
        if f.conditional and not conditional:
            row[f.key] = None
            continue
        values = [f.compute(draw, reference) for draw in (draws if f.every_seed else draws[:1])]
        row[f.key] = float(np.mean(values)) if values[0] is not None else None
        if f.every_seed:
            row[f"{f.key}_std"], row[f"per_seed_{f.key}"] = float(np.std(values)), values
    return row


@figure("cosine_similarity", "cosine", 4, every_seed=True, conditional=True, tracked="cosine", curve=True, width=11,
        with_std=True, paper=True)
def _cosine(draw: Draw, ref: Reference) -> float:
    return float(cosine_similarity(draw.regressed, ref.queries).mean())


@figure("centred_cosine", "centred cosine", 4, every_seed=True, conditional=True, tracked="centred_cosine", width=16)
def _centred_cosine(draw: Draw, ref: Reference) -> float:
    return float(centred_cosine(draw.regressed, ref.queries, ref.mean, ref.std).mean())


@figure("sign_accuracy", "sign accuracy", 4, every_seed=True, conditional=True, tracked="sign_accuracy", width=11,
        heading="sign acc.")
def _sign_accuracy(draw: Draw, ref: Reference) -> float:
    return float(sign_accuracy(draw.regressed, ref.queries).mean())


@figure("squared_error", "squared error", 2, every_seed=True, conditional=True, tracked="squared_error", width=14,
        with_std=True, paper=True)
def _squared_error(draw: Draw, ref: Reference) -> float:
    return float(squared_error(draw.regressed, ref.queries).mean())


@figure("frechet_distance_regressor_features", "Fréchet distance", 1, tracked="frechet", curve=True)
def _frechet(draw: Draw, ref: Reference) -> float | None:
    if len(draw.features) <= 2 or len(ref.real_features) <= 2:
        return None
    return frechet_distance(draw.features, ref.real_features)


@figure("detail_vs_real", "detail / real", 3)
def _detail(draw: Draw, ref: Reference) -> float:
    return high_frequency_energy(draw.images)[0] / ref.real_detail


@figure("colour_speckle_vs_real", "colour speckle / real", 2, tracked="colour_speckle", curve=True, width=16,
        ratio=True, heading="colour speckle")
def _colour_speckle(draw: Draw, ref: Reference) -> float:
    return high_frequency_energy(draw.images)[1] / ref.real_colour


@figure("spectrum_mid_vs_real", "mid band / real", 3, width=10, ratio=True, heading="mid band")
def _mid_band(draw: Draw, ref: Reference) -> float:
    return power_spectrum_bands(draw.images)[MID_BAND] / ref.real_spectrum[MID_BAND]


@figure("spectrum_corner_vs_real", "corner / real", 1, width=10, ratio=True, heading="corner")
def _corner(draw: Draw, ref: Reference) -> float:
    return power_spectrum_bands(draw.images)["corner"] / ref.real_spectrum["corner"]


def tracked_fields() -> dict[str, Figure]:
    """metrics.csv's quality column -> its figure, for the figures training tracks."""
    return {f"quality_{f.tracked}": f for f in FIGURES.values() if f.tracked}
