"""Load and sampling time of a bundled model (``attrgan.load("lfw32")``: the sha256 check, the
half-precision file, the networks built) and of 16 samples, against the full run checkpoint it
was exported from, in the same process; plus how far the half-precision copy's samples lie from
the run's (levels of 255).

Run: .venv/bin/python benchmarks/bundled_model.py --name lfw32 [--run bundle-run/runs/vaegan] [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from common import cpu_model, reported_cpu_flags

import attrgan
import attrgan.bundle

SAMPLES = 16


def timed_load(path: str) -> tuple[float, attrgan.ConditionalModel]:
    """Seconds to load ``path`` as a fresh process would (the bundled file's sha256 checked again)."""
    attrgan.bundle._verified.clear()
    started = time.perf_counter()
    model = attrgan.load(path)
    return time.perf_counter() - started, model


def sample_seconds(model: attrgan.ConditionalModel, rows: np.ndarray, repeats: int) -> float:
    """Median seconds for SAMPLES samples (one warm-up call first)."""
    model.sample(rows, seed=0)
    times = []
    for seed in range(repeats):
        started = time.perf_counter()
        model.sample(rows, seed=seed)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="lfw32", help="a bundled model's name")
    parser.add_argument("--run", help="the run folder or checkpoint it was exported from (the baseline)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}, flags {' '.join(reported_cpu_flags())}, {torch.get_num_threads()} threads")
    entry = attrgan.bundle.catalogue()[args.name]
    print(f"bundled {args.name}: {attrgan.bundle.size_mb(entry):.1f} MiB ({entry['card']})")
    subjects = {args.name: args.name, **({"run": args.run} if args.run else {})}
    results = {}
    for label, path in subjects.items():
        load_s, model = timed_load(path)
        rows = np.stack([model.scaler.mean] * SAMPLES).astype(np.float32)
        results[label] = (load_s, sample_seconds(model, rows, args.repeats), model.sample(rows, seed=1))
        print(f"{label:>8}: load {load_s * 1000:.0f} ms, {SAMPLES} samples {results[label][1] * 1000:.0f} ms "
              f"(median of {args.repeats})")
    if args.run:
        (bundled_load, bundled_sample, bundled_images), (run_load, run_sample, run_images) = results.values()
        levels = ((bundled_images - run_images).abs() * 127.5).max().item()
        print(f"bundled / run: load {bundled_load / run_load:.2f}x, sampling {bundled_sample / run_sample:.2f}x; "
              f"largest pixel difference {levels:.2f} of 255 levels")


if __name__ == "__main__":
    main()
