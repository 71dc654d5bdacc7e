"""Checkpoints: one plain dict, loadable with ``torch.load(weights_only=True)``, written
atomically (temporary file, fsync, rename) so a crash never leaves a torn checkpoint."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from attrgan.bundle import bundled_file, catalogue
from attrgan.runtime.errors import UserError
from attrgan.runtime.files import atomic_file

FORMAT_VERSION = 1
GENERATOR_FILE = "checkpoint.pt"
CHECKPOINT_FILES = (GENERATOR_FILE, "regressor.pt")  # what a run directory may hold
GENERATOR_KINDS = ("vaegan", "vae", "gan")
REGRESSOR_KIND = "regressor"
REQUIRED_KEYS = ("format_version", "kind", "config", "nets", "image_size", "attribute_names", "attribute_mean",
                 "attribute_std")  # what every loader reads, generators and regressors alike


class CheckpointError(UserError):
    """A missing, unreadable or mismatched checkpoint."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically, with the format version."""
    save_torch_file(path, {"format_version": FORMAT_VERSION, **payload})


def save_torch_file(path: str | Path, obj: Any) -> None:
    """``torch.save`` ``obj`` to ``path`` atomically (temporary file, fsync, rename). It is
    serialised in memory first and then written as bytes, so a full disk is the OS's own error,
    named by atomic_file, not torch's "enforce fail … unexpected pos"."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_file(path) as tmp, tmp.open("wb") as handle:
        handle.write(buffer.getbuffer())
        handle.flush()
        os.fsync(handle.fileno())


def checkpoint_file(path: str | Path) -> Path:
    """The file a checkpoint argument stands for: the file itself, or the checkpoint a run directory holds."""
    path = Path(path)
    if path.is_dir():
        return next((path / f for f in CHECKPOINT_FILES if (path / f).is_file()), path / GENERATOR_FILE)
    return path


SNAPSHOT_PREFIX = "checkpoint-"  # a kept copy: checkpoint-000500.pt (train.snapshot_every)


def snapshot_file(step: int) -> str:
    """The file name of the copy of a run's checkpoint kept at ``step`` (``train.snapshot_every``)."""
    return f"{SNAPSHOT_PREFIX}{step:06d}.pt"


def run_name(path: str | Path) -> str:
    """The run folder's name of a run directory or of a checkpoint file inside one; a snapshot
    (:func:`snapshot_file`) adds its step: ``run@500``."""
    path = Path(path)
    if path.suffix != ".pt":
        return path.name
    step = path.stem.removeprefix(SNAPSHOT_PREFIX)
    return f"{path.parent.name}@{int(step)}" if step != path.stem and step.isdigit() else path.parent.name


def load_checkpoint(path: str | Path, expect_kinds: tuple[str, ...] | None = None,
                    what: str = "an attrgan checkpoint") -> dict[str, Any]:
    """Load a checkpoint file (or a run directory holding ``checkpoint.pt`` or ``regressor.pt``) safely.

    ``expect_kinds`` refuses checkpoints of other model kinds with a clear message; ``what`` is
    what a file that is none at all is said not to be ("not a regressor …"). A name that is no
    file is looked up among the bundled models (attrgan.bundle), as their generator, or their
    regressor when only a regressor is expected.
    """
    given, path = path, checkpoint_file(path)
    if not path.is_file():
        role = "regressor" if expect_kinds == (REGRESSOR_KIND,) else "generator"
        bundled = bundled_file(str(given), role)
        if bundled is None:
            names = ", ".join(catalogue()) or "none installed"
            raise CheckpointError(f"{path}: checkpoint not found (nor a bundled model: {names})")
        path = bundled
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file (torch's own advice runs to many lines): one clear line
        raise CheckpointError(f"{path}: not {what} (it cannot be loaded as one: "
                              f"{type(exc).__name__})") from None
    missing = [key for key in REQUIRED_KEYS if not isinstance(payload, dict) or key not in payload]
    if missing:
        raise CheckpointError(f"{path}: not {what} (no {', '.join(missing)})")
    version = payload["format_version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path}: not {what} (format_version {version!r} is not a number)")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {version} is newer than this attrgan")
    if not isinstance(payload["config"], dict) or not isinstance(payload["nets"], dict):
        raise CheckpointError(f"{path}: not {what} (its config or networks are not mappings)")
    if expect_kinds is not None and payload["kind"] not in expect_kinds:
        raise CheckpointError(
            f"{path}: this is a {payload['kind']!r} checkpoint, expected {' or '.join(map(repr, expect_kinds))}"
        )
    return payload
