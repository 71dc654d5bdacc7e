"""The run folder's files besides the checkpoint: config.yaml and run.json once the first
checkpoint is kept, metrics.csv as it goes (taken back to the last kept checkpoint when a save
fails), the per-epoch sample grids, and the loss and quality curves at the end."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Callable

import torch
import yaml

from attrgan.config import Config
from attrgan.data.dataset import to_model_range
from attrgan.evaluation.plots import plot_loss_curves, plot_quality_curves, save_grid
from attrgan.runtime.files import atomic_file, occupied, write_json

GRID_QUERIES = 8  # query attribute vectors in the per-epoch sample grid
GRID_SEEDS = 8  # fixed z per query


def prepare_run_folder(out: Path, replace: bool) -> None:
    """Create ``out``, emptied first with ``replace`` (once every check has passed)."""
    if replace and occupied(out):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def write_run_record(out: Path, config: Config, resume: bool, changes: dict, step: int, record: dict) -> None:
    """config.yaml and run.json (``record`` plus the settings changed on resume)."""
    with atomic_file(out / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    write_json(out / "run.json", {**record, "setting_changes": _setting_changes(out, resume, changes, step)})


def saving_in_order(save_checkpoint: Callable[..., None], log: "MetricsLog",
                    record: Callable[[], None] | None) -> Callable[..., None]:
    """The run's save: the checkpoint first; then metrics.csv counts its rows as kept, and the
    first good save of this process writes config.yaml and run.json (``record``, None on the
    ranks that write nothing). A save that fails (a full disk) takes metrics.csv back to the
    last kept checkpoint, so the run folder stays as it was before the unsaved updates."""
    recorded = False

    def save(**kwargs) -> None:
        nonlocal recorded
        try:
            save_checkpoint(**kwargs)
        except BaseException:
            log.rewind()
            raise
        log.mark_kept()
        if record is not None and not recorded:
            record()
            recorded = True

    return save


def finish_run_folder(out: Path, tracked: bool) -> None:
    """The loss curves (and the quality curves of a tracked run) from metrics.csv."""
    plot_loss_curves(out / "metrics.csv", out / "loss_curves.png")
    if tracked:
        plot_quality_curves(out / "metrics.csv", out / "quality_curves.png")


def _setting_changes(out: Path, resume: bool, changes: dict, step: int) -> list[dict]:
    """run.json's record of the settings changed on resume (``--allow-changes``), kept across resumes."""
    earlier = []
    if resume and (out / "run.json").is_file():
        earlier = json.loads((out / "run.json").read_text()).get("setting_changes", [])
    return earlier + ([{"step": step, "changed": changes}] if changes else [])


class EpochGrids:
    """The per-epoch images of fixed inputs: the first train images and their reconstructions,
    and samples for their attribute vectors (one row per query, the same GRID_SEEDS z across
    rows; an unconditional model gets a fresh z in every cell)."""

    def __init__(self, images, y: torch.Tensor, z_dim: int, seed: int, device: torch.device) -> None:
        self.x = to_model_range(images[:GRID_QUERIES]).to(device)
        self.y = y[:GRID_QUERIES].to(device)
        rows, conditional = len(self.y), self.y.shape[1] > 0
        z = torch.randn(GRID_SEEDS if conditional else rows * GRID_SEEDS, z_dim,
                        generator=torch.Generator().manual_seed(seed)).to(device)
        self.grid_z = z.repeat(rows, 1) if conditional else z
        self.grid_y = self.y.repeat_interleave(GRID_SEEDS, 0)

    @torch.no_grad()
    def write(self, nets, folder: Path, tag: str) -> None:
        """``<tag>_reconstructions.png`` (input row over reconstruction row) and ``<tag>_samples.png``."""
        for net in nets.values():
            net.eval()
        dec = nets["decoder"]
        if "encoder" in nets:
            mu, _ = nets["encoder"](self.x, self.y)
            save_grid(torch.cat([self.x, dec(mu, self.y)]), folder / f"{tag}_reconstructions.png", nrow=len(self.x))
        save_grid(dec(self.grid_z, self.grid_y), folder / f"{tag}_samples.png", nrow=GRID_SEEDS)


class MetricsLog:
    """metrics.csv, one row per logged step; on resume, rows after the checkpoint are dropped
    (the file is replaced whole) and ``elapsed`` is the last kept row's ``time_s``, so the
    training time goes on across resumes. ``extra_fields`` are columns only some rows fill
    (the quality checks)."""

    def __init__(self, path: Path, truncate_after: int, enabled: bool, extra_fields: tuple[str, ...] = ()) -> None:
        self.path, self.enabled, self.handle, self.writer = path, enabled, None, None
        self.extra_fields = list(extra_fields)
        self.fields: list[str] | None = None
        self.elapsed = 0.0
        self.kept_size: int | None = None  # bytes of metrics.csv that belong to a saved checkpoint (None: no file)
        if enabled and path.exists():
            with path.open(newline="") as f:
                rows = list(csv.DictReader(f))
            keep = [r for r in rows if int(r["step"]) <= truncate_after]
            self.fields = list(rows[0].keys()) if rows else None
            self.elapsed = float(keep[-1].get("time_s") or 0.0) if keep else 0.0
            with atomic_file(path) as tmp, tmp.open("w", newline="") as f:
                if self.fields:
                    w = csv.DictWriter(f, self.fields)
                    w.writeheader()
                    w.writerows(keep)
            self.kept_size = self._size_on_disk()

    def mark_kept(self) -> None:
        """The rows so far belong to a saved checkpoint: :meth:`rewind` keeps them."""
        if self.enabled:
            self.kept_size = self.handle.tell() if self.handle is not None else self._size_on_disk()

    def rewind(self) -> None:
        """Drop the rows written since :meth:`mark_kept` (in place: a full disk needs no new copy)."""
        if not self.enabled:
            return
        if self.handle is not None:
            self.handle.flush()
            self.handle.truncate(self.kept_size or 0)
            self.handle.seek(self.kept_size or 0)
        if self.kept_size is None:
            self.close()
            self.handle = self.writer = None
            self.path.unlink(missing_ok=True)

    def _size_on_disk(self) -> int | None:
        return self.path.stat().st_size if self.path.exists() else None

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        if self.handle is None:
            new = not self.path.exists() or self.fields is None
            self.fields = self.fields or [*row, *(f for f in self.extra_fields if f not in row)]
            self.handle = self.path.open("a", newline="")
            self.writer = csv.DictWriter(self.handle, self.fields, extrasaction="ignore")
            if new:
                self.writer.writeheader()
        self.writer.writerow(row)
        self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
