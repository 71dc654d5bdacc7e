"""Sample quality tracked while training: every ``train.eval_every`` updates, on fixed
queries of ``train.eval_split`` (val by default, so choices made from the curves never see
the test split), the Fréchet distance between generated and real images of that split in the
regressor's feature space, the attribute cosine similarity and squared error (the paper's
Table-1 figures), the centred cosine and the sign accuracy, the colour speckle (the colour's
high-frequency energy over the real images'; attrgan.evaluation.metrics), and a sample grid. The figures
go to metrics.csv; the trainer plots them against updates and wall-clock time (quality_curves.png)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from attrgan.data.dataset import Standardizer, load_images
from attrgan.evaluation.plots import save_grid
from attrgan.evaluation.registry import Draw, Reference, score, tracked_fields
from attrgan.evaluation.regressor import LoadedRegressor, load_regressor
from attrgan.runtime.errors import UserError

GRID_ROWS, GRID_COLUMNS = 8, 8


@dataclass
class QualityTracker:
    regressor: LoadedRegressor
    queries: np.ndarray  # raw attribute vectors [Q, A]
    y: torch.Tensor  # the same, standardized for the generator
    z: torch.Tensor  # fixed latent codes [Q, z]
    reference: Reference  # the queries and the real images of the split (attrgan.evaluation.registry)
    device: torch.device
    precision: str

    @classmethod
    def create(cls, regressor_path: str | Path, dataset, names: list[str], scaler: Standardizer, config,
               device: torch.device, precision: str) -> "QualityTracker":
        """Check the regressor against the model (attributes, size); fix queries, codes and real
        features. An unconditional model (no ``names``) is tracked by its Fréchet distance only."""
        regressor = load_regressor(regressor_path)
        regressor.check_fits(names or None, config.model.image_size, "the model in training")
        split = config.train.eval_split
        rows = dataset.rows(split, labelled_only=True)
        if len(rows) < 2:
            raise UserError(f"{config.data.path}: fewer than 2 labelled {split} images for quality tracking")
        pick = np.sort(np.random.default_rng(config.train.seed).permutation(len(rows))[: config.train.eval_queries])
        queries = dataset.attributes(rows[pick], names)
        real = load_images(dataset, rows[pick], config.model.image_size)
        _, real_features = regressor.predict_raw(real, device, precision)
        reference = Reference.of(queries, regressor.scaler.mean, regressor.scaler.std, real, real_features)
        z = torch.randn(len(queries), config.model.z_dim,
                        generator=torch.Generator().manual_seed(config.train.seed + 2))
        y = torch.from_numpy(scaler.transform(queries))
        return cls(regressor, queries, y, z, reference, device, precision)

    @torch.no_grad()
    def measure(self, decoder: nn.Module, folder: Path, step: int) -> dict[str, float]:
        """Generate one image per query with the fixed codes, score it, save a grid; return the figures."""
        started = time.perf_counter()
        decoder.eval()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            images = torch.cat([decoder(self.z[i : i + 256].to(self.device),
                                        self.y[i : i + 256].to(self.device)).float()
                                for i in range(0, len(self.z), 256)])
        decoder.train()
        regressed, features = self.regressor.predict_raw(images, self.device, self.precision)
        save_grid(images[: GRID_ROWS * GRID_COLUMNS], folder / f"step{step:06d}_quality.png", nrow=GRID_COLUMNS)
        figures = score([Draw(images, regressed, features)], self.reference, conditional=bool(self.queries.shape[1]))
        tracked = {column: round(figures[f.key], f.digits + 2) for column, f in tracked_fields().items()
                   if figures[f.key] is not None}  # an unconditional model: no attribute figures
        return {**tracked, "quality_seconds": round(time.perf_counter() - started, 2)}


def quality_fields() -> tuple[str, ...]:
    """metrics.csv's columns of the quality checks: the tracked figures and their cost in seconds."""
    return (*tracked_fields(), "quality_seconds")
