"""The run folder's files besides the checkpoint: config.yaml and run.json at the start,
metrics.csv as it goes, the per-epoch sample grids, and the loss and quality curves at the end."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import torch
import yaml

from attrgan.config import Config
from attrgan.data.dataset import to_model_range
from attrgan.evaluation.plots import plot_loss_curves, plot_quality_curves, save_grid
from attrgan.runtime.files import atomic_file, occupied, write_json

GRID_QUERIES = 8  # query attribute vectors in the per-epoch sample grid
GRID_SEEDS = 8  # fixed z per query


def start_run_folder(out: Path, config: Config, replace: bool, resume: bool, changes: dict, step: int,
                     record: dict) -> None:
    """Create ``out`` (emptied first with ``replace``, once every check has passed) with
    config.yaml and run.json (``record`` plus the settings changed on resume)."""
    if replace and occupied(out):
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_file(out / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    write_json(out / "run.json", {**record, "setting_changes": _setting_changes(out, resume, changes, step)})


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
