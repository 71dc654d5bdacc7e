"""The images a generative model trains on, with their standardized attributes, and the
batch size and count per epoch they allow."""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch

from attrgan.config import Config
from attrgan.data.batches import share_applies
from attrgan.data.dataset import Dataset, ImageRows, Standardizer
from attrgan.runtime.errors import UserError


@dataclass
class TrainingSet:
    rows: np.ndarray  # dataset rows, labelled first
    images: ImageRows  # uint8 [N, 3, S, S], read from the dataset's memory map per batch
    y: torch.Tensor  # standardized attributes [N, A]; 0 (the mean) for unlabelled images
    labelled: torch.Tensor  # [N] float 1/0
    scaler: Standardizer


def training_set(dataset: Dataset, config: Config, names: list[str], previous: dict | None = None) -> TrainingSet:
    """The images a generative model trains on: the labelled rows of ``data.split`` and, with
    ``data.unlabelled=use``, its unlabelled rows too (y = 0, labelled = 0). The standardizer is
    fitted on the labelled rows only (or taken from the resumed checkpoint). An unconditional
    model (no ``names``) trains on every image of the split. Splits are identity-disjoint, so
    no val or test person's image, labelled or not, is ever here."""
    labelled_rows = dataset.rows(config.data.split, labelled_only=bool(names))  # unconditional: every image
    if len(labelled_rows) < 2:
        raise UserError(f"{config.data.path}: fewer than 2 labelled {config.data.split} images to train on")
    extra = np.setdiff1d(dataset.rows(config.data.split, labelled_only=False), labelled_rows) \
        if config.data.unlabelled == "use" else np.array([], dtype=np.int64)
    rows = np.concatenate([labelled_rows, extra])
    raw_y = dataset.attributes(labelled_rows, names)
    scaler = Standardizer.from_dict(previous) if previous else Standardizer.fit(names, raw_y)
    y = np.concatenate([scaler.transform(raw_y), np.zeros((len(extra), len(names)), np.float32)])
    labelled = torch.cat([torch.ones(len(labelled_rows)), torch.zeros(len(extra))])
    images = ImageRows(dataset, rows, config.model.image_size)
    return TrainingSet(rows, images, torch.from_numpy(y), labelled, scaler)


def batch_layout(data: TrainingSet, config: Config, world_size: int, warn: bool) -> tuple[int, int]:
    """(global batch size, batches per epoch): ``train.batch_size``, or the whole set where it
    is smaller; ``warn`` notes on stderr settings that change nothing here."""
    wanted = config.train.batch_size
    batch = min(wanted, len(data.rows))
    if batch < wanted and warn:
        print(f"train.batch_size {wanted} is more than the {len(data.rows)} training images: batches of {batch}",
              file=sys.stderr)
    if batch % world_size:
        raise UserError(f"batch size {batch} is not divisible by the {world_size} processes")
    share = config.data.labelled_share
    if share is not None and not share_applies(data.labelled, share) and warn:
        print(f"data.labelled_share={share} changes nothing here: every training image is "
              "labelled (data.unlabelled=skip or a fully labelled dataset)", file=sys.stderr)
    return batch, len(data.rows) // batch
