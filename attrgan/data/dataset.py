"""Reading the dataset directory written by `prep-lfw` (design: dataset contract)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from attrgan.runtime.errors import UserError

INDEX_FIXED_COLUMNS = ("person", "imagenum", "source", "split", "aligned", "labelled")


class DatasetError(UserError):
    """A dataset directory that does not follow the contract."""


@dataclass
class Dataset:
    """A dataset directory: uint8 images ``[N, 3, S, S]`` (memory-mapped), index and manifest."""

    root: Path
    images: np.ndarray
    index: pd.DataFrame
    manifest: dict

    def read_images(self, rows: np.ndarray) -> np.ndarray:
        """uint8 images of ``rows``, read from the memory map once the file is checked to be
        whole: reading a mapped file that shrank would end the process with a bus error."""
        path = self.root / "images.npy"
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            raise DatasetError(f"{path} vanished while it was being read; write the dataset again with "
                               "prep-lfw") from None
        expected = getattr(self.images, "offset", 0) + self.images.nbytes
        if size < expected:
            raise DatasetError(f"{path} shrank to {size:,} bytes (from {expected:,}) while it was being read; write "
                               "the "
                               "dataset again with prep-lfw (a run's last checkpoint is intact)")
        return np.ascontiguousarray(self.images[rows])

    @property
    def attribute_names(self) -> list[str]:
        return list(self.manifest["attribute_names"])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def rows(self, split: str | None = None, labelled_only: bool = True) -> np.ndarray:
        """Row numbers of a split (``None`` = all), labelled rows only by default."""
        mask = np.ones(len(self.index), dtype=bool)
        if split is not None:
            mask &= (self.index["split"] == split).to_numpy()
        if labelled_only:
            mask &= self.index["labelled"].to_numpy(dtype=bool)
        return np.flatnonzero(mask)

    def attributes(self, rows: np.ndarray, names: list[str] | None = None) -> np.ndarray:
        """Raw attribute values ``[len(rows), A]`` (float32) of the given rows; a name the dataset
        lacks (a model trained on other attributes) is one error naming it."""
        names = self.attribute_names if names is None else list(names)
        missing = [name for name in names if name not in self.attribute_names]
        if missing:
            raise DatasetError(f"{self.root}: lacks the attribute column{'s' * (len(missing) > 1)} "
                               f"{', '.join(map(repr, missing[:5]))}{' …' * (len(missing) > 5)} that the model "
                               "conditions on; use a dataset prepared with those attributes (or a model trained on "
                               "this one's)")
        return self.index.iloc[rows][names].to_numpy(dtype=np.float32)


def open_dataset(root: str | Path) -> Dataset:
    """Open a dataset directory, checking that its three files agree."""
    root = Path(root)
    for name in ("images.npy", "index.csv", "manifest.json"):
        if not (root / name).is_file():
            raise DatasetError(f"{root}: not a dataset directory (missing {name}; write one with `attrgan prep-lfw`)")
    try:
        manifest = json.loads((root / "manifest.json").read_text())
        images = np.load(root / "images.npy", mmap_mode="r")
        index = pd.read_csv(root / "index.csv")
    except (ValueError, EOFError, OSError, pd.errors.ParserError) as exc:  # EOFError: an empty or torn .npy
        raise DatasetError(f"{root}: a damaged dataset file ({type(exc).__name__}: {exc or 'empty file'}); "
                           "write the dataset again with prep-lfw") from None
    missing = [c for c in (*INDEX_FIXED_COLUMNS, *manifest.get("attribute_names", [])) if c not in index.columns]
    if missing:
        raise DatasetError(f"{root}/index.csv lacks columns: {', '.join(missing[:5])}")
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3] or images.dtype != np.uint8:
        raise DatasetError(f"{root}/images.npy holds {images.dtype} of shape {list(images.shape)}, not uint8 RGB "
                           "images [N, 3, S, S]; write the dataset again with prep-lfw")
    if images.shape[0] != len(index):
        raise DatasetError(f"{root}: images.npy holds {images.shape[0]} images, index.csv {len(index)} rows; write the "
                           "dataset again with prep-lfw")
    index["labelled"] = index["labelled"].astype(bool)
    index["aligned"] = index["aligned"].astype(bool)
    labels = index.loc[index["labelled"], manifest["attribute_names"]].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(labels)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise DatasetError(f"{root}/index.csv: labelled row {index.index[index['labelled']][row] + 2} has a non-finite "
                           f"value in {manifest['attribute_names'][column]!r} ({int(bad.sum())} such cells); "
                           "rewrite the dataset with prep-lfw")
    return Dataset(root=root, images=images, index=index, manifest=manifest)


def load_images(dataset: Dataset, rows: np.ndarray, size: int) -> torch.Tensor:
    """uint8 images ``[len(rows), 3, size, size]`` in RAM; a dataset prepared at a multiple of
    ``size`` (e.g. 64 for 32) is box-downsampled, so one prep serves every model size."""
    images = torch.from_numpy(dataset.read_images(rows))
    if dataset.image_size == size:
        return images
    if dataset.image_size % size:
        raise DatasetError(
            f"{dataset.root} holds {dataset.image_size}x{dataset.image_size} images, which do not downsample to "
            f"{size}x{size}; prepare the data with prep-lfw --size {size}"
        )
    factor = dataset.image_size // size
    return torch.nn.functional.avg_pool2d(images.float(), factor).round().to(torch.uint8)


class ImageRows:
    """The images of ``rows`` of a dataset at ``size``, read from its memory-mapped array batch
    by batch, never whole into RAM: ``images[idx]`` (an index array or a slice) gives uint8
    ``[len(idx), 3, size, size]``, the same values as :func:`load_images` of those rows."""

    def __init__(self, dataset: Dataset, rows: np.ndarray, size: int) -> None:
        load_images(dataset, np.asarray(rows[:1]), size)  # refuses a size the data cannot give, before any work
        self.dataset, self.rows, self.size = dataset, np.asarray(rows), size

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: np.ndarray | torch.Tensor | slice) -> torch.Tensor:
        picked = self.rows[index] if isinstance(index, slice) else self.rows[np.asarray(index)]
        return load_images(self.dataset, picked, self.size)


def binary_midpoint(values: np.ndarray) -> float:
    """Where a binary attribute's labels split: 0 for -1/1 labels, 0.5 for 0/1."""
    return 0.5 if np.min(values) >= 0 else 0.0


def select_attributes(available: list[str], wanted: list[str] | None) -> list[str]:
    """The attribute names a model uses: all (``None``), none (``[]``: an unconditional model,
    ``--condition-on none``), or a checked subset (``--attributes``)."""
    if wanted is None:
        return list(available)
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise DatasetError(f"unknown attribute name(s): {', '.join(unknown)}")
    twice = sorted({name for name in wanted if wanted.count(name) > 1})
    if twice:
        raise DatasetError(f"attribute name(s) given more than once: {', '.join(twice)}")
    return list(wanted)


def to_model_range(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images (an array or a tensor, on any device) -> float32 in [-1, 1] (the paper's pixel range)."""
    tensor = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    return tensor.float().div(127.5).sub(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> uint8."""
    return images.detach().float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


@dataclass(frozen=True)
class Standardizer:
    """Attribute standardization with the training split's mean and std (stored in checkpoints)."""

    names: list[str]
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, names: list[str], values: np.ndarray) -> "Standardizer":
        std = values.std(0)
        return cls(names, values.mean(0).astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.std).astype(np.float32)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return (values * self.std + self.mean).astype(np.float32)

    def to_dict(self) -> dict:
        return {"attribute_names": list(self.names), "attribute_mean": self.mean.tolist(),
                "attribute_std": self.std.tolist()}

    @classmethod
    def from_dict(cls, payload: dict) -> "Standardizer":
        return cls(
            list(payload["attribute_names"]),
            np.asarray(payload["attribute_mean"], np.float32),
            np.asarray(payload["attribute_std"], np.float32),
        )
