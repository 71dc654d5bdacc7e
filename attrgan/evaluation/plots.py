"""Image grids and loss curves written during training and evaluation."""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import torch
from PIL import Image
from torchvision.utils import make_grid

from attrgan.evaluation.registry import tracked_fields
from attrgan.runtime.errors import UserError
from attrgan.runtime.files import atomic_file

QUALITY_MARKER = "quality_seconds"  # metrics.csv's column that every quality check fills (attrgan.training.tracking)


def grid_image(images: torch.Tensor, nrow: int) -> Image.Image:
    """Float images in [-1, 1] as one picture: a grid with 1-px white padding (one image as it is)."""
    grid = make_grid(images.detach().float().cpu().add(1).div_(2).clamp_(0, 1), nrow=nrow, padding=1, pad_value=1.0)
    return Image.fromarray(grid.mul_(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy())


def check_image_output(path: str | Path) -> None:
    """Refuse, before any work, an output name whose extension is no image format Pillow writes."""
    suffix = Path(path).suffix.lower()
    if Image.registered_extensions().get(suffix) not in Image.SAVE:
        raise UserError(f"{path}: name the output with an image extension, such as .png or .jpg"
                         + (f" ({suffix} is not one Pillow writes)" if suffix else ""))


def check_figure_output(path: str | Path) -> None:
    """Refuse, before any work, an output name whose extension is no format matplotlib writes."""
    from matplotlib.backend_bases import FigureCanvasBase  # matplotlib: 0.3 s, only where a figure is written

    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FigureCanvasBase.get_supported_filetypes():
        raise UserError(f"{path}: name the output with a figure extension, such as .png, .pdf or .svg"
                         + (f" (.{suffix} is not one matplotlib writes)" if suffix else ""))


def save_grid(images: torch.Tensor, path: str | Path, nrow: int) -> None:
    """Save float images in [-1, 1] as one grid (atomically; the format from the suffix)."""
    with atomic_file(path) as tmp:
        grid_image(images, nrow).save(tmp)


def grid_png(images: torch.Tensor, nrow: int) -> bytes:
    """The grid of :func:`save_grid` as PNG bytes (what ``attrgan serve`` answers with)."""
    buffer = io.BytesIO()
    grid_image(images, nrow).save(buffer, format="PNG")
    return buffer.getvalue()


def loss_panels(frame: pd.DataFrame) -> dict[str, tuple[pd.Series | None, pd.Series]]:
    """What the loss-curve figure shows, per panel title: (raw values or None, smoothed curve).
    A loss gets its values and a rolling mean; an on/off column (``D/trained``: whether the
    equilibrium gate let D update) gets the share of updates it was on, over a rolling window."""
    window = max(1, len(frame) // 50)
    panels = {}
    for column in (c for c in frame.columns if "/" in c):
        values = frame[column].astype(float)
        if column.endswith("trained"):
            panels[f"{column} (share of updates)"] = (None, values.rolling(max(window, 10), min_periods=1).mean())
        else:
            panels[column] = (values, values.rolling(window, min_periods=1).mean())
    return panels


def plot_loss_curves(metrics_csv: str | Path, out: str | Path) -> None:
    """One panel per logged loss against the step (smoothed), and the share of updates D (and
    the decoder's GAN term) trained under the equilibrium gate, from metrics.csv."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.read_csv(metrics_csv)
    panels = loss_panels(frame)
    if frame.empty or not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 2.8), squeeze=False)
    for ax, (title, (values, smoothed)) in zip(axes[0], panels.items()):
        if values is not None:
            ax.plot(frame["step"], values, alpha=0.3, color="tab:blue")
        else:
            ax.set_ylim(-0.05, 1.05)
        ax.plot(frame["step"], smoothed, color="tab:blue")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
    _save_figure(fig, out)


def plot_quality_curves(metrics_csv: str | Path, out: str | Path) -> None:
    """Tracked sample quality (Fréchet distance, attribute cosine) against updates and wall-clock minutes."""
    plot_quality_comparison({"run": metrics_csv}, out)


def plot_quality_comparison(runs: dict[str, str | Path], out: str | Path) -> int:
    """Overlay the tracked quality curves of several runs (label -> metrics.csv); returns how
    many runs had quality columns (0: nothing written)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    frames = []
    for label, path in runs.items():
        frame = pd.read_csv(path)
        if QUALITY_MARKER in frame.columns:  # the rows of the quality checks
            frames.append(frame.dropna(subset=[QUALITY_MARKER]).assign(run=label, minutes=lambda f: f["time_s"] / 60))
    frame = pd.concat(frames) if frames else pd.DataFrame()
    if frame.empty:
        return 0
    panels = [(column, f.label) for column, f in tracked_fields().items() if f.curve
              and column in frame.columns and frame[column].notna().any()]  # unconditional runs: no cosine
    fig, axes = plt.subplots(len(panels), 2, figsize=(9, 3.25 * len(panels)), squeeze=False)
    for row, (column, label) in enumerate(panels):
        for col, x in enumerate(("step", "minutes")):
            ax = axes[row][col]
            sns.lineplot(data=frame, x=x, y=column, hue="run", marker="o", ax=ax, legend=row == 0 and col == 0)
            ax.set_ylabel(label)
            ax.set_xlabel("updates" if x == "step" else "wall-clock minutes")
    _save_figure(fig, out)
    return len(frames)


def plot_across_updates(groups: dict[str, dict], figures: tuple[tuple[str, str], ...], real: dict[str, float],
                        out: str | Path) -> None:
    """One panel per figure: each series' mean ± sample std over training seeds against updates
    (``groups``: the across-training-seeds groups, each with ``series``, ``updates`` and a
    spread per figure); ``real``: figure -> the real images' level, drawn dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [{"series": g["series"], "updates": g["updates"][0], "figure": figure, "mean": g[figure]["mean"],
             "std": g[figure]["std"] or 0.0}
            for g in groups.values() if g["updates"][0] is not None for figure, _ in figures if figure in g]
    frame = pd.DataFrame(rows).sort_values("updates")
    shown = [(figure, label) for figure, label in figures if (frame["figure"] == figure).any()]
    columns = min(3, len(shown))
    rows_of_panels = -(-len(shown) // columns)
    fig, axes = plt.subplots(rows_of_panels, columns, figsize=(4.2 * columns, 3.2 * rows_of_panels), squeeze=False)
    for ax, (figure, label) in zip(axes.flat, shown):
        for name, line in frame[frame["figure"] == figure].groupby("series", sort=False):
            ax.errorbar(line["updates"], line["mean"], yerr=line["std"], marker="o", capsize=3, label=name)
        if figure in real:
            ax.axhline(real[figure], color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel("updates")
        ax.set_ylabel(label)
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize="small")
    _save_figure(fig, out)


def _save_figure(fig, out: str | Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_file(out) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
