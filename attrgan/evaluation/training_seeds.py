"""Across training seeds: the variance that decides whether one model kind beats another.

eval-attributes scores each run over several sampling seeds; when several runs of one kind
are given (``reproduce --train-seeds N``, or any set of checkpoints), this module summarises
each kind by the mean and sample std of its runs' figures (the sampling seeds nested inside
each run's mean), and pairs runs of two kinds by training seed to give the paired difference
VAE/GAN − VAE (and − GAN) per seed, and a lever's runs against its baseline recipe's: runs of
one seed share their batch order and data, so the paired difference is the sharper test of an
ordering."""
from __future__ import annotations

import re

import numpy as np

from attrgan.checkpoint import run_name
from attrgan.evaluation.registry import FIGURES

CURVES_FILE = "across_updates.png"  # the groups' figures against updates, where runs were scored at several budgets
REFERENCE_KIND = "vaegan"  # the paired differences are this kind minus each other kind


def spread(values: list[float]) -> dict:
    """Mean, sample std (n − 1; None for one value) and count."""
    array = np.asarray(values, np.float64)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(array) > 1 else None, "n": len(array)}


def across_training_seeds(rows: list[dict], labels: dict[str, str]) -> dict | None:
    """From eval-attributes' model rows (each with ``kind``, ``recipe``, ``train_seed``,
    ``updates``, ``model`` and the figures): runs of one kind and recipe trained for the same
    number of updates form a group (a run's snapshots at other budgets form others); per group,
    mean ± std over its runs; per pair of a VAE/GAN group and another kind's group at equal
    updates, the paired differences over the training seeds both have; likewise each other recipe
    of a kind minus the recipe of that kind's first row (a lever against its baseline).
    ``labels``: kind -> the paper's model name. None unless some group has two runs."""
    groups: dict[tuple[str, str, int | None], list[dict]] = {}
    for row in sorted(rows, key=lambda r: (r["train_seed"] is None, r["train_seed"] or 0)):  # runs in seed order
        groups.setdefault((row["kind"], row["recipe"], row["updates"]), []).append(row)
    if max(len(runs) for runs in groups.values()) < 2:
        return None
    budgets = {key[:2]: {k[2] for k in groups if k[:2] == key[:2]} for key in groups}
    series = {}  # kind and recipe -> its name, the same at every budget
    for kind, recipe in budgets:
        runs = [run for key, group in groups.items() if key[:2] == (kind, recipe) for run in group]
        series[kind, recipe] = labels.get(kind, kind) + (
            f" [{_group_tag(recipe, runs)}]" if len({k[1] for k in groups if k[0] == kind}) > 1 else "")
    names = {key: series[key[:2]] + (f" @ {key[2]} updates" if len(budgets[key[:2]]) > 1 else "") for key in groups}
    summary = {"groups": {}, "paired_differences": {}}
    for key, runs in groups.items():
        summary["groups"][names[key]] = {
            "kind": key[0], "recipe": key[1], "series": series[key[:2]], "runs": [r["model"] for r in runs],
            "train_seeds": [r["train_seed"] for r in runs], "updates": [r["updates"] for r in runs],
            **{figure: spread([r[figure] for r in runs]) for figure in FIGURES if _present(runs, figure)}}
    differences = summary["paired_differences"]
    for ref_key, ref_runs in groups.items():
        for key, runs in groups.items():
            if ref_key[0] == REFERENCE_KIND != key[0] and key[2] == ref_key[2] and (pairs := _by_seed(ref_runs, runs)):
                differences[f"{names[ref_key]} − {names[key]}"] = _paired(pairs)
    baseline = {}  # kind -> the recipe of its first run as given: a lever is paired against it
    for row in rows:
        baseline.setdefault(row["kind"], row["recipe"])
    for key, runs in groups.items():
        base_key = (key[0], baseline[key[0]], key[2])
        if key != base_key and base_key in groups and (pairs := _by_seed(runs, groups[base_key])):
            differences[f"{names[key]} − {names[base_key]}"] = _paired(pairs)
    return summary


def has_curves(summary: dict | None) -> bool:
    """Whether some kind and recipe was scored at two or more budgets (snapshots of its runs)."""
    if summary is None:
        return False
    budgets: dict[str, set] = {}
    for group in summary["groups"].values():
        budgets.setdefault(group["series"], set()).update(u for u in group["updates"] if u is not None)
    return any(len(b) > 1 for b in budgets.values())


def _group_tag(recipe: str, runs: list[dict]) -> str:
    """What tells a group from the other recipes of its kind: the run folders' common name
    without the seed suffix (base-s0, base-s1 -> base; vaegan, vaegan-seed1 -> vaegan), else
    the recipe's fingerprint."""
    stems = set()
    for run in runs:
        folder = run_name(run.get("checkpoint") or "")
        folder = folder.split("@")[0]  # a snapshot's step is the group's budget, not its name
        stems.add(re.sub(r"[-_]?(s|seed)?\d+$", "", folder) if len(runs) > 1 else folder)
    return stems.pop() if len(stems) == 1 and "" not in stems else recipe


def _by_seed(runs_a: list[dict], runs_b: list[dict]) -> list[tuple[dict, dict]]:
    """(a, b) pairs of runs with the same training seed, in ``runs_a``'s order."""
    by_seed = {r["train_seed"]: r for r in runs_b}
    return [(a, by_seed[a["train_seed"]]) for a in runs_a if a["train_seed"] in by_seed]


def _paired(pairs: list[tuple[dict, dict]]) -> dict:
    """Differences a − b per training seed of each figure, with their mean and sample std."""
    differences = {"train_seeds": [b["train_seed"] for _, b in pairs], "updates": pairs[0][0]["updates"]}
    for figure in FIGURES:
        if _present([run for pair in pairs for run in pair], figure):
            per_seed = [a[figure] - b[figure] for a, b in pairs]
            differences[figure] = {**spread(per_seed), "per_seed": per_seed}
    return differences


def _present(runs: list[dict], figure: str) -> bool:
    return all(r.get(figure) is not None for r in runs)


def _cells(entry: dict) -> list[str]:
    """'mean ± std' (or 'mean' for one run, 'n/a' when missing) of each figure of a group or a difference."""
    out = []
    for figure, f in FIGURES.items():
        s, digits = entry.get(figure), f.digits
        spread = "" if s is None or s["std"] is None else f" ± {s['std']:.{digits}f}"
        out.append("n/a" if s is None else f"{s['mean']:.{digits}f}{spread}")
    return out


def training_seeds_markdown(summary: dict | None) -> list[str]:
    """The report's section on ``summary`` (nothing when it is None)."""
    if summary is None:
        return []
    lines = ["## Across training seeds", "",
             "Runs of one model kind and one recipe (the same config but for the seed) are separately trained "
             "models. Each run's figure is its mean over the sampling seeds; the table gives the mean ± sample "
             "std of those over the runs, then the paired difference between two kinds, and between a recipe "
             "and the first recipe given of its kind, over the training seeds both have (positive favours the "
             "first on cosine, centred cosine and sign accuracy; negative on squared error, Fréchet distance, "
             "colour speckle and corner power; the mid band is best near 1, the real faces').", "",
             "| Model | training seeds | updates | " + " | ".join(f.label for f in FIGURES.values()) + " |",
             "|---|---|---" + "|---" * len(FIGURES) + "|"]
    for name, group in summary["groups"].items():
        updates = ", ".join(map(str, sorted(set(group["updates"]))))
        lines.append(f"| {name} | {', '.join(map(str, group['train_seeds']))} | {updates} | "
                     f"{' | '.join(_cells(group))} |")
    for name, d in summary["paired_differences"].items():
        updates = "n/a" if d["updates"] is None else f"{d['updates']} each"
        lines.append(f"| {name}, paired | {', '.join(map(str, d['train_seeds']))} | {updates} | "
                     f"{' | '.join(_cells(d))} |")
    if has_curves(summary):
        lines += ["", f"![across updates]({CURVES_FILE})", "",
                  "Each figure against updates: mean ± sample std over the training seeds scored at that budget "
                  "(dashed: the real images)."]
    return lines + [""]


def training_seeds_text(summary: dict | None) -> list[str]:
    """The same summary as terminal lines."""
    if summary is None:
        return []
    lines = []
    for name, entry in [*summary["groups"].items(),
                        *((f"{n}, paired" , d) for n, d in summary["paired_differences"].items())]:
        seeds = entry["train_seeds"]
        figures = ", ".join(f"{f.label} {cell}" for f, cell in zip(FIGURES.values(), _cells(entry)))
        lines.append(f"{name} over training seeds {', '.join(map(str, seeds))}: {figures}")
    return lines
