"""Time to quality: the training time each recipe takes to reach given Table-1 figures.

For each arm (config overrides on --config) and training seed: train to --updates, keeping a
snapshot every --every updates (one process per run, --parallel at a time, --threads each on a
CPU: one by default); score every snapshot in one eval-attributes call on --split; then print,
per arm and budget, the figures (mean over the seeds) beside the training time to that snapshot
(metrics.csv's time_s), and per arm the first budget at which the means meet the targets:
cosine >= --cosine and Fréchet distance <= --frechet (docs/results.md, "Time to quality").
Runs already trained to --updates are reused, and unfinished ones resumed, when the command is
run again; --score-only trains nothing and scores the snapshots already written (runs still
training included: snapshots are written atomically), naming the missing ones, so that the
finished budgets can be read while longer runs go on. The CPU (or GPU) is named beside the
figures. An arm that keeps weight averages (optim.ema) is also scored on its live weights, as arm
``<name>/live``: the averages do not change training, so that pair differs in the averaging alone
(docs/studies/2026-12-07-weight-averages.md).
Every run's figures go to OUT/scores-<split>.csv (--per-seed prints them too); each --against ARM
also prints every arm minus ARM, paired by training seed (mean ± std over the seeds). --control
adds eval-attributes' shuffled-query control (column ``shuffled``: each face scored against
another face's query), as `make demo`'s report gives it.

Run: .venv/bin/python benchmarks/time_to_quality.py --data data/lfw32 --regressor runs/reg32 \\
       --config configs/lfw32.yaml --out ttq --seeds 0,1 --updates 1500 --every 500 \\
       --arm default --arm "ema:optim.ema=0.999" --arm "aug:loss.dis_augment=[translation,cutout]" \\
       --arm "vae:model.kind=vae" [--against vae] [--device cuda --parallel 8]
The demo's table (docs/studies/2026-12-06-demo-on-every-cpu.md), after `make demo`: --data demo-run/dataset
--regressor demo-run/regressor --config configs/demo.yaml --condition-on "<the Makefile's DEMO_ATTRIBUTES>"
--seeds 0,1,2 --updates 1300 --every 1300 --arm "bf16:train.precision=bf16" --arm "fp32:train.precision=fp32"
--split test --control --per-seed (a CPU's AVX2 kernels: ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2)
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from common import cpu_model, reported_cpu_flags

from attrgan.checkpoint import SNAPSHOT_PREFIX, load_checkpoint, save_checkpoint, snapshot_file

ATTRGAN = str(Path(sys.executable).parent / "attrgan")
FRECHET = "frechet_distance_regressor_features"
# this script's column -> eval-attributes' figure
FIGURES = {"cosine": "cosine_similarity", "centred": "centred_cosine", "sq_error": "squared_error",
           "frechet": FRECHET, "speckle": "colour_speckle_vs_real"}


@dataclass(frozen=True)
class Arm:
    name: str
    overrides: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Arm:
        """``name`` or ``name:key=value;key=value``."""
        name, _, overrides = text.partition(":")
        return cls(name, tuple(o for o in overrides.split(";") if o))


def train_command(arm: Arm, seed: int, run: Path, args: argparse.Namespace) -> list[str]:
    """The train-conditional call of one run (resumed where it has a checkpoint)."""
    command = [ATTRGAN, "train-conditional", "--data", str(args.data), "--config", str(args.config), "--out",
               str(run), "--max-steps", str(args.updates), "--device", args.device, "--no-progress",
               "--set", f"train.seed={seed}", "--set", f"train.snapshot_every={args.every}",
               "--set", "train.sample_every_epoch=false"]
    if args.device == "cpu":
        command += ["--set", f"train.threads={args.threads}"]
    if args.condition_on:
        command += ["--condition-on", args.condition_on]
    for override in arm.overrides:
        command += ["--set", override]
    return command + (["--resume"] if (run / "checkpoint.pt").exists() else [])


def train_all(runs: dict[tuple[str, int], Path], arms: dict[str, Arm], args: argparse.Namespace) -> None:
    """Train every run not yet at --updates, --parallel processes at a time."""
    waiting = [(key, run) for key, run in runs.items() if not (run / snapshot_file(args.updates)).exists()]
    active: list[tuple[subprocess.Popen, Path]] = []
    while waiting or active:
        while waiting and len(active) < args.parallel:
            (name, seed), run = waiting.pop(0)
            run.mkdir(parents=True, exist_ok=True)
            with open(run.parent / f"{run.name}.log", "a") as log:  # the child keeps its own handle
                active.append((subprocess.Popen(train_command(arms[name], seed, run, args), stdout=log,
                                                stderr=subprocess.STDOUT), run))
        time.sleep(2)
        for process, run in list(active):
            if process.poll() is not None:
                active.remove((process, run))
                if process.returncode:
                    sys.exit(f"training {run} failed (exit {process.returncode}): see {run.parent / run.name}.log")


def score(snapshots: list[Path], args: argparse.Namespace) -> pd.DataFrame:
    """Every snapshot's Table-1 row on --split (one eval-attributes call)."""
    out = args.out / f"eval-{args.split}"
    command = [ATTRGAN, "eval-attributes", "--data", str(args.data), "--regressor", str(args.regressor), "--split",
               args.split, "--seeds", str(args.sampling_seeds), "--device", args.device, "--out", str(out), "--force"]
    if not args.control:
        command.append("--no-control")
    for snapshot in snapshots:
        command += ["--checkpoint", str(snapshot)]
    log = args.out / f"eval-{args.split}.log"
    with open(log, "w") as output:
        if subprocess.run(command, stdout=output, stderr=subprocess.STDOUT).returncode:
            sys.exit(f"scoring failed: see {log}")
    rows = json.loads((out / "metrics.json").read_text())["models"]
    return pd.DataFrame([{"checkpoint": str(Path(row["checkpoint"]).resolve()),
                          **{name: row[key] for name, key in FIGURES.items()},
                          **({"shuffled": row["shuffled_query_control"]["cosine_similarity"]} if args.control else {})}
                         for row in rows])


def live_copy(snapshot: Path) -> Path | None:
    """A copy of ``snapshot`` without its weight averages (in ``<run>-live/``), or None where it keeps none."""
    payload = load_checkpoint(snapshot)
    if not payload.pop("averages", None):
        return None
    payload["config"]["optim"]["ema"] = 0.0  # what trained it is the recipe without averages (they change no update)
    copy = snapshot.parent.with_name(f"{snapshot.parent.name}-live") / snapshot.name
    if not copy.exists():
        copy.parent.mkdir(exist_ok=True)
        save_checkpoint(copy, payload)
    return copy


def training_seconds(run: Path, step: int) -> float:
    """metrics.csv's training time at ``step`` (it goes on across --resume)."""
    metrics = pd.read_csv(run / "metrics.csv", usecols=["step", "time_s"])
    return float(metrics.loc[metrics["step"] <= step, "time_s"].iloc[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--regressor", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--arm", action="append", required=True, help="name or name:key=value;key=value")
    parser.add_argument("--condition-on", default=None, help="train-conditional --condition-on (default: all)")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--updates", type=int, default=1500)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--split", default="val")
    parser.add_argument("--sampling-seeds", type=int, default=3)
    parser.add_argument("--cosine", type=float, default=0.85)
    parser.add_argument("--frechet", type=float, default=250.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run on a CPU")
    parser.add_argument("--against", action="append", default=[],
                        help="also print each arm minus this one, paired by seed (repeatable)")
    parser.add_argument("--control", action="store_true", help="also score the shuffled-query control")
    parser.add_argument("--per-seed", action="store_true", help="also print every run's figures")
    parser.add_argument("--score-only", action="store_true",
                        help="train nothing; score the snapshots already written and name the missing ones")
    args = parser.parse_args()
    if args.updates % args.every:
        sys.exit("--updates must be a multiple of --every")
    arms = {arm.name: arm for arm in map(Arm.parse, args.arm)}
    seeds = [int(s) for s in args.seeds.split(",")]
    # seed-major, so that the first runs to finish cover every arm
    runs = {(name, seed): args.out / "runs" / f"{name}-s{seed}" for seed in seeds for name in arms}
    if not args.score_only:
        train_all(runs, arms, args)
    budgets = range(args.every, args.updates + 1, args.every)
    snapshots = {(name, seed, step): run / snapshot_file(step)
                 for (name, seed), run in runs.items() for step in budgets}
    if missing := [key for key, snapshot in snapshots.items() if not snapshot.exists()]:
        print(f"not yet written, left out: {', '.join(f'{name}-s{seed} at {step}' for name, seed, step in missing)}")
        snapshots = {key: snapshot for key, snapshot in snapshots.items() if key not in missing}
    if not snapshots:
        sys.exit(f"no snapshot to score under {args.out / 'runs'}")
    for (name, seed, step), snapshot in list(snapshots.items()):
        if live := live_copy(snapshot):
            snapshots[(f"{name}/live", seed, step)] = live
    scores = score(list(snapshots.values()), args).set_index("checkpoint")
    columns = list(scores.columns)  # FIGURES, and shuffled under --control
    rows = []
    for (name, seed, step), snapshot in snapshots.items():
        figures = scores.loc[str(snapshot.resolve())]
        rows.append({"arm": name, "seed": seed, "updates": step, **{name: figures[name] for name in columns},
                     "minutes": training_seconds(runs[(name.removesuffix("/live"), seed)], step) / 60})
    per_seed = pd.DataFrame(rows)
    per_seed.to_csv(args.out / f"scores-{args.split}.csv", index=False)
    table = per_seed.groupby(["arm", "updates"], sort=False)[[*columns, "minutes"]]
    means = table.mean().assign(seeds=table.size())
    device = args.device if args.device != "cpu" else f"{cpu_model()} ({' '.join(reported_cpu_flags())})"
    print(f"{device}; {args.split} split, {len(seeds)} training seeds, {args.sampling_seeds} sampling seeds; "
          f"snapshots named {SNAPSHOT_PREFIX}NNNNNN.pt")
    decimals = {"cosine": 4, "centred": 4, "sq_error": 2, "frechet": 1, "speckle": 2, "shuffled": 4, "minutes": 1}
    if args.per_seed:
        print(per_seed.round(decimals).to_string(index=False))
    print(means.round(decimals).to_string())
    for name in means.index.unique("arm"):
        arm = means.loc[name]
        last = arm.index[-1]  # --updates, or the last budget scored under --score-only
        met = arm[(arm["cosine"] >= args.cosine) & (arm["frechet"] <= args.frechet)]
        reached = (f"{met.index[0]} updates, {met['minutes'].iloc[0]:.1f} min of training" if len(met)
                   else f"not within {last} updates ({arm['minutes'].iloc[-1]:.1f} min)")
        spread = np.ptp(table.get_group((name, last))["cosine"])
        print(f"{name}: cosine >= {args.cosine} and Fréchet <= {args.frechet:g}: {reached}; "
              f"cosine spread over seeds at {last}: {spread:.4f}")
    for against in args.against:
        print(paired_differences(per_seed, against).to_string())


def paired_differences(per_seed: pd.DataFrame, against: str) -> pd.DataFrame:
    """Each arm minus arm ``against`` at equal updates, paired by training seed: mean ± std over the seeds."""
    keyed = per_seed.set_index(["arm", "updates", "seed"])[list(FIGURES)]
    reference = keyed.xs(against, level="arm")
    rows = {}
    for (arm, updates), figures in keyed.drop(against, level="arm").groupby(level=["arm", "updates"], sort=False):
        if updates not in reference.index.get_level_values("updates"):
            continue  # --score-only: ARM has no snapshot at this budget yet
        difference = figures.droplevel("arm") - reference.loc[[updates]]
        difference = difference.dropna()
        rows[(f"{arm} − {against}", updates)] = {
            name: f"{difference[name].mean():+.4g} ± {difference[name].std(ddof=1):.2g}" for name in FIGURES}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["paired by seed", "updates"])


if __name__ == "__main__":
    main()
