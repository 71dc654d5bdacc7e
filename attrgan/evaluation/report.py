"""The eval-attributes report: report.md (Table-1 layout), metrics.json, seaborn plots, image grids."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from attrgan.evaluation.metrics import BAND_NAMES, MID_BAND
from attrgan.evaluation.plots import plot_across_updates, save_grid
from attrgan.evaluation.registry import FIGURES, Figure
from attrgan.evaluation.table import MODEL_LABELS
from attrgan.evaluation.training_seeds import CURVES_FILE, has_curves, training_seeds_markdown, training_seeds_text
from attrgan.runtime.files import write_json

OTHER_BANDS = tuple(band for band in BAND_NAMES if band != MID_BAND)  # the mid band is a registered figure
SCATTER_ATTRIBUTES = 8  # attributes shown in the regressed-vs-query scatter plot (largest query variance)


def write_report(out: Path, metrics: dict, names, queries, upper, scores, grids: dict[str, torch.Tensor],
                 grid_columns: int) -> None:
    """Write every report file into ``out``: what ``evaluate`` computed, rendered (``grids``: file
    name -> images, ``grid_columns`` per row)."""
    write_json(out / "metrics.json", metrics)
    _plot_per_attribute_error(out / "per_attribute_error.png", names, upper, scores)
    _plot_scatter(out / "regressed_vs_query.png", names, queries, scores)
    if has_curves(metrics["across_training_seeds"]):
        _plot_across_updates(out / CURVES_FILE, metrics)
    for name, images in grids.items():
        save_grid(images, out / name, nrow=grid_columns)
    (out / "report.md").write_text(_markdown(metrics, list(grids)))


def _plot_across_updates(path: Path, metrics: dict) -> None:
    """The training-seed groups' figures against updates, the real images' levels dashed."""
    upper = metrics["upper_bound"] or {}
    real = {key: upper[key] for key in FIGURES if isinstance(upper.get(key), float)}
    ratios = dict.fromkeys((key for key, f in FIGURES.items() if f.ratio), 1.0)  # ratios to the real faces'
    plot_across_updates(metrics["across_training_seeds"]["groups"], [(key, f.label) for key, f in FIGURES.items()],
                        {**real, **ratios}, path)


def _instrument_markdown(metrics: dict) -> list[str]:
    """Every registered figure beyond the paper's two per row (attrgan.evaluation.registry), the
    spectrum's other bands, and the regressor's response to blurred real faces."""
    beyond = [f for f in FIGURES.values() if not f.paper]
    lines = ["## Beyond the paper's figures", "",
             "Centred cosine: queries and predictions standardized by the train split's attribute mean and std "
             "(the raw cosine's common component removed). Sign accuracy: the share of attributes whose regressed "
             "value has the query's sign. Detail and colour speckle: the mean squared Laplacian of the grey "
             "image and of the colour left after removing the grey (first sampling seed), each divided by the "
             "real images' (1.0 = real-like; a blurry face has little detail, a speckled one much colour energy). "
             "Spectrum: the mean power of the samples' radially averaged spectrum per band of cycles per pixel, "
             "and at the (½, ½) checkerboard corner (both |f| ≥ 7/16), each divided by the real images' "
             "(first sampling seed): a sharper face brings the mid band nearer 1, a speckled one raises the corner.",
             "", "| Model | " + " | ".join(f.label for f in beyond) + " | "
             + " | ".join(f"{band} / real" for band in OTHER_BANDS) + " |",
             "|---|" + "---|" * (len(beyond) + len(OTHER_BANDS))]
    u = metrics["upper_bound"]
    if u:
        lines.append("| Real images (upper bound) | " + " | ".join(
            "1" if f.ratio else _value(u.get(f.key), f.digits) for f in beyond) + " |" + " 1 |" * len(OTHER_BANDS))
    for r in metrics["models"]:
        spectrum = r["spectrum"]["vs_real"]
        lines.append(f"| {r['model']} | " + " | ".join(_value(r.get(f.key), f.digits, r.get(f"{f.key}_std"))
                                                     for f in beyond) + " | "
                     + " | ".join(f"{spectrum[band]:.3g}" for band in OTHER_BANDS) + " |")
    lines += _encoder_markdown(metrics)
    if u:
        lines += ["", "How much each figure rewards blur: the regressor on the same real faces, sharp and blurred.", "",
                  "| Real images | Cosine | Squared error | Centred cosine | Sign accuracy |", "|---|---|---|---|---|",
                  f"| sharp | {u['cosine_similarity']:.4f} | {u['squared_error']:.2f} | {u['centred_cosine']:.4f} | "
                  f"{u['sign_accuracy']:.4f} |"]
        for name, f in u["blur_response"].items():
            lines.append(f"| blurred, {name.removeprefix('sigma_').replace('px', ' px')} Gaussian | {f['cosine']:.4f} "
                         "| "
                         f"{f['squared_error']:.2f} | {f['centred_cosine']:.4f} | {f['sign_accuracy']:.4f} |")
    return lines + [""]


def _encoder_markdown(metrics: dict) -> list[str]:
    """Per model with an encoder: its reconstructions' figures beside its samples', and its prior mismatch."""
    rows = [r for r in metrics["models"] if r.get("prior_mismatch_nats") is not None or r.get("reconstruction")]
    if not rows:
        return []
    lines = ["", "Samples against reconstructions: the same figures for the query images encoded and decoded (codes "
             "from the encoder, not the prior), and the prior mismatch, KL in nats from the aggregate posterior of "
             "the train images' codes (one Gaussian) to N(0, I). Good reconstructions with poorer samples and a large "
             "mismatch: the prior's codes fall where the decoder was rarely trained.", "",
             "| Model | Sample cosine | Reconstruction cosine | Sample centred cosine | Reconstruction centred cosine "
             "| Prior mismatch (nats) |", "|---|---|---|---|---|---|"]
    for r in rows:
        rec = r.get("reconstruction") or {}
        mismatch = r.get("prior_mismatch_nats")
        lines.append(f"| {r['model']} | {r['cosine_similarity']:.4f} | {_figure(rec.get('cosine'))} | "
                     f"{r['centred_cosine']:.4f} | {_figure(rec.get('centred_cosine'))} | "
                     f"{'–' if mismatch is None else f'{mismatch:.1f}'} |")
    return lines


def _figure(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _markdown(metrics: dict, grid_files: list[str]) -> str:
    lines = [
        "# Attribute similarity (Larsen et al. 2016, Table 1)",
        "",
        f"Queries: {metrics['queries']['count']} attribute vectors from {metrics['queries']['source']}; "
        f"{metrics['seeds']} sampling seeds (z ~ N(0, I)) per query; mean ± std over seeds. Squared error is "
        "summed over attributes and averaged over queries, in raw attribute units.",
        "",
        "| Model | Cosine similarity | Squared error | Paper: cosine | Paper: squared error |",
        "|---|---|---|---|---|",
    ]
    paper = metrics["paper_table_1"]
    if metrics["upper_bound"]:
        u = metrics["upper_bound"]
        p = paper["LFW test set"]
        lines.append(f"| Real images (upper bound) | {u['cosine_similarity']:.4f} | {u['squared_error']:.2f} | "
                     f"{p['cosine_similarity']:.4f} | {p['squared_error']:.2f} |")
    for row in metrics["models"]:
        p = paper.get(MODEL_LABELS[row["kind"]], {})
        lines.append(
            f"| {row['model']} | {row['cosine_similarity']:.4f} ± {row['cosine_similarity_std']:.4f} | "
            f"{row['squared_error']:.2f} ± {row['squared_error_std']:.2f} | "
            f"{p.get('cosine_similarity', float('nan')):.4f} | {p.get('squared_error', float('nan')):.2f} |"
        )
    lines += ["", "Paper columns: the paper's values (64×64, ~13k labelled LFW images, GPU), quoted for reference; "
              "ours come from the checkpoints listed in metrics.json.", "",
              "The paper's Table 1 as it prints it:", "", "| Model (paper) | Cosine similarity | Mean squared error |",
              "|---|---|---|"]
    lines += [f"| {name} | {p['cosine_similarity']:.4f} | {p['squared_error']} |" for name, p in paper.items()]
    lines.append("")
    lines += training_seeds_markdown(metrics.get("across_training_seeds"))
    lines += _instrument_markdown(metrics)
    lines += _breakdown_markdown(metrics)
    controls = [r for r in metrics["models"] if "shuffled_query_control" in r]
    if controls:
        lines += ["## Shuffled-query control", "",
                  "Each model generates for a random other query and is scored against this one: a conditional "
                  "model must score clearly better on its own queries. The real faces' row, each face scored "
                  "against another's query, is what a model that draws every query as well as the real faces "
                  "show it would score: the queries' common component keeps it above zero.", "",
                  "| Model | Cosine (own queries) | Cosine (shuffled) | Squared error (own) | "
                  "Squared error (shuffled) |",
                  "|---|---|---|---|---|"]
        u = metrics["upper_bound"] or {}
        if "shuffled_query_control" in u:
            c = u["shuffled_query_control"]
            lines.append(f"| Real images | {u['cosine_similarity']:.4f} | {c['cosine_similarity']:.4f} | "
                         f"{u['squared_error']:.2f} | {c['squared_error']:.2f} |")
        for r in controls:
            c = r["shuffled_query_control"]
            lines.append(f"| {r['model']} | {r['cosine_similarity']:.4f} | {c['cosine_similarity']:.4f} | "
                         f"{r['squared_error']:.2f} | {c['squared_error']:.2f} |")
        lines.append("")
    sloped = [r for r in metrics["models"] if r.get("condition_slopes")]
    if sloped:
        attributes = list(sloped[0]["condition_slopes"])
        lines += ["## Condition response", "",
                  "Regressed change of an attribute (raw units) per training-split std that the query moves it "
                  "(prior codes fixed, first 64 queries, strengths -2..2; the units of `attrgan edit --report`).", "",
                  "| Model | " + " | ".join(attributes) + " |", "|---" * (len(attributes) + 1) + "|"]
        lines += [f"| {r['model']} | " + " | ".join(f"{r['condition_slopes'][a]:.3f}" for a in attributes) + " |"
                  for r in sloped]
        lines.append("")
    lines += ["## Distribution distance", "",
              "| Model | Fréchet distance (regressor features, not FID) | FID |", "|---|---|---|"]
    for r in metrics["models"]:
        fd = r["frechet_distance_regressor_features"]
        fid = r["fid"]
        lines.append(f"| {r['model']} | {'n/a' if fd is None else f'{fd:.3f}'} | "
                     f"{'skipped' if fid is None else f'{fid:.2f}'} |")
    lines += ["", f"FID: {metrics['fid']}.", "",
              "## Plots", "", "![per-attribute error](per_attribute_error.png)", "",
              "![regressed vs query](regressed_vs_query.png)", "", "## Generated faces", ""]
    lines += [f"![{name}]({name})" for name in grid_files]
    return "\n".join(lines) + "\n"


def _breakdown_markdown(metrics: dict) -> list[str]:
    """Cosine / squared error on male and female queries (by the sign of the Male attribute), first seed."""
    rows = ([("Real images (upper bound)", metrics["upper_bound"])] if metrics["upper_bound"] else []) + \
        [(r["model"], r) for r in metrics["models"]]
    rows = [(label, r["by_sex"]) for label, r in rows if r.get("by_sex")]
    if not rows:
        return []
    first = rows[0][1]
    lines = ["## Male and female queries", "",
             f"Queries split by the sign of the Male attribute ({first['male']['count']} male, "
             f"{first['female']['count']} female); first sampling seed.", "",
             "| Model | Cosine (male) | Cosine (female) | Squared error (male) | Squared error (female) |",
             "|---|---|---|---|---|"]

    def fmt(value, digits):
        return "n/a" if value is None else f"{value:.{digits}f}"

    for label, b in rows:
        lines.append(f"| {label} | {fmt(b['male']['cosine_similarity'], 4)} | "
                     f"{fmt(b['female']['cosine_similarity'], 4)} | "
                     f"{fmt(b['male']['squared_error'], 2)} | {fmt(b['female']['squared_error'], 2)} |")
    return lines + [""]


def _plot_per_attribute_error(path: Path, names, upper, scores) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    records = []
    for s in scores:
        for seed_errors in s.per_attribute_se:
            records += [{"attribute": n, "model": s.label, "squared error": float(e)} for n,
                        e in zip(names, seed_errors)]
    if upper is not None:
        records += [{"attribute": n, "model": "real images", "squared error": float(e)}
                    for n, e in zip(names, upper["per_attribute_se"])]
    frame = pd.DataFrame(records)
    fig, ax = plt.subplots(figsize=(max(8, 0.28 * len(names)), 4.5))
    sns.barplot(frame, x="attribute", y="squared error", hue="model", errorbar="sd", ax=ax)
    ax.tick_params(axis="x", rotation=90, labelsize=7)
    ax.set_title("Per-attribute squared error (mean ± sd over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_scatter(path: Path, names, queries, scores) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    chosen = np.argsort(-queries.var(0))[:SCATTER_ATTRIBUTES]
    records = []
    for s in scores:
        for i in chosen:
            records += [{"attribute": names[i], "model": s.label, "query": float(q), "regressed": float(r)}
                        for q, r in zip(queries[:, i], s.regressed[:, i])]
    if not records:
        return
    grid = sns.relplot(pd.DataFrame(records), x="query", y="regressed", hue="model", col="attribute",
                       col_wrap=4, height=2.4, s=10, alpha=0.6, facet_kws={"sharex": False, "sharey": False})
    for ax in grid.axes.flat:
        lo, hi = ax.get_xlim()
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--")
    grid.savefig(path, dpi=80)
    plt.close(grid.figure)


def format_table(metrics: dict) -> str:
    """The Table-1 rows as eval-attributes prints them (the registered figures with a printed
    width), then the training-seed summary's lines."""
    printed = [f for f in FIGURES.values() if f.width]
    lines = [f"{'model':<26}" + "".join(_cell(c, c.heading or c.label) for c in printed)
             + f"{'shuffled-query cosine':>24}"]
    upper = metrics["upper_bound"]
    if upper:
        control = upper.get("shuffled_query_control")  # absent from reports written before it existed
        cells = "".join(_cell(c, 1 if c.ratio else upper.get(c.key, "n/a")) for c in printed)
        lines.append((f"{'real images (upper bound)':<26}" + cells
                      + (f"{control['cosine_similarity']:>24.4f}" if control else "")).rstrip())
    for row in metrics["models"]:
        control = row.get("shuffled_query_control")
        lines.append(f"{row['model']:<26}" + "".join(_cell(c, row[c.key], row.get(c.key + "_std")) for c in printed)
                     + (f"{control['cosine_similarity']:>24.4f}" if control else ""))
    if upper:
        lines.append("regressor on blurred real images (cosine / centred cosine): " + ", ".join(
            f"{name.removeprefix('sigma_')} {f['cosine']:.4f} / {f['centred_cosine']:.4f}"
            for name, f in upper["blur_response"].items()))
    return "\n".join(lines + training_seeds_text(metrics.get("across_training_seeds")))


def _value(value: float | None, digits: int, std: float | None = None) -> str:
    """A report cell: the value (``n/a`` where missing), ``± std`` where the figure has one."""
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def _cell(column: Figure, value: float | str, std: float | None = None) -> str:
    """One printed cell: the value right-aligned in the column's width, then ``± std`` (or as
    much room) for the columns printed with their std."""
    text = f"{value:>{column.width}}" if isinstance(value, str) else f"{value:>{column.width}.{column.digits}f}"
    if not column.with_std:
        return text
    return text + (f" ± {std:<{column.digits + 3}.{column.digits}f}" if std is not None else " " * (column.digits + 6))
