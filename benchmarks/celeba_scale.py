"""CelebA at scale on a synthetic copy of the official layout: prep-celeba's images/s and peak
resident memory, training's peak resident memory on a small and a large dataset (it should not
grow with the data), and training speed reading batches from the memory-mapped images.npy
(what attrgan does) against the same images held in RAM (the baseline), in one process.

Run: .venv/bin/python benchmarks/celeba_scale.py [--images 20000] [--small 2000] [--work DIR]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import reported_cpu_flags

from attrgan.config import from_dict
from attrgan.data.dataset import ImageRows, load_images, open_dataset, to_model_range
from attrgan.nets.models import build_models
from attrgan.nets.steps import Noise, vaegan_step

ROOT = Path(__file__).resolve().parents[1]


def scaled_copy(small: Path, out: Path, images: int) -> None:
    """A CelebA layout of ``images`` images made of copies of ``small``'s (hard links) under new
    numbers, each copy with its own identities: synth-celeba draws ~20 faces/s on this CPU, so
    the large set repeats a small one's faces; prep and training do the same work on each file."""
    lines = {name: (small / name).read_text().splitlines() for name in
             ("list_attr_celeba.txt", "list_eval_partition.txt", "identity_CelebA.txt",
              "list_landmarks_align_celeba.txt")}
    base = len(lines["list_eval_partition.txt"])
    people = max(int(line.split()[1]) for line in lines["identity_CelebA.txt"])
    (out / "img_align_celeba").mkdir(parents=True)
    written = {name: [] for name in lines}
    for number in range(1, images + 1):
        copy, source = divmod(number - 1, base)
        file, original = f"{number:06d}.jpg", f"{source + 1:06d}.jpg"
        os.link(small / "img_align_celeba" / original, out / "img_align_celeba" / file)
        written["list_attr_celeba.txt"].append(file + lines["list_attr_celeba.txt"][2 + source][10:])
        written["list_eval_partition.txt"].append(file + lines["list_eval_partition.txt"][source][10:])
        landmarks = "list_landmarks_align_celeba.txt"
        written[landmarks].append(file + lines[landmarks][2 + source][10:])
        identity = int(lines["identity_CelebA.txt"][source].split()[1]) + copy * people
        written["identity_CelebA.txt"].append(f"{file} {identity}")
    for name, rows in written.items():
        header = [str(images),
                  lines[name][1]] if name in ("list_attr_celeba.txt", "list_landmarks_align_celeba.txt") else []
        (out / name).write_text("\n".join(header + rows) + "\n")


def run_measured(args: list[str]) -> tuple[float, float]:
    """Run ``attrgan ARGS`` in a child process; its wall seconds and peak resident GiB."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "cli.main", *args], cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    if status:
        raise SystemExit(f"attrgan {' '.join(args)} failed (status {status})")
    return time.perf_counter() - started, usage.ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux


def images_per_second(images, rows: int, batch: int, steps: int, nets, config) -> tuple[float, float]:
    """(images/s of batch fetching alone, images/s of fetching + the VAE/GAN step)."""
    order = np.random.default_rng(0).permutation(rows)
    started = time.perf_counter()
    for i in range(0, len(order) - batch + 1, batch):
        to_model_range(images[order[i : i + batch]])
    fetch = (len(order) // batch * batch) / (time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(steps):
        idx = order[i * batch : (i + 1) * batch]
        x = to_model_range(images[idx])
        y = torch.zeros(batch, 40)
        noise = Noise(torch.randn(batch, config.model.z_dim), torch.randn(batch, config.model.z_dim))
        vaegan_step(nets, x, y, noise, config.loss)
    return fetch, steps * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--small", type=int, default=2000, help="distinct faces drawn; also the small dataset's size")
    parser.add_argument("--steps", type=int, default=6, help="training steps timed per variant")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; cpu flags: {', '.join(reported_cpu_flags())}")
    work = args.work or Path(tempfile.mkdtemp(prefix="celeba-scale-"))
    small, synth = work / "synthetic-celeba-small", work / "synthetic-celeba"
    if not synth.exists():
        seconds, _ = run_measured(["synth-celeba", str(small), "--images", str(args.small)])
        print(f"synth-celeba {args.small:,} images: {seconds:.0f} s; copied up to {args.images:,} (scaled_copy)")
        scaled_copy(small, synth, args.images)
    datasets = {}
    for name, limit in (("small", args.small), ("large", args.images)):
        out = work / f"dataset-{name}"
        if not out.exists():
            seconds, peak = run_measured(["prep-celeba", "--root", str(synth), "--out", str(out), "--size", "64",
                                          "--limit", str(limit), "--no-progress"])
            print(f"prep-celeba {limit:,} images at 64x64: {seconds:.1f} s, {limit / seconds:.0f} images/s, "
                  f"peak resident {peak:.2f} GiB")
        datasets[name] = out

    for name, out in datasets.items():
        run = work / f"train-{name}"
        seconds, peak = run_measured(["train-conditional", "--data", str(out), "--config", "configs/lfw64.yaml",
                                      "--out", str(run), "--max-steps", "3", "--no-progress", "--force",
                                      "--set", "train.sample_every_epoch=false"])
        count = len(open_dataset(out).rows("train"))
        print(f"train-conditional (64x64 VAE/GAN, 3 steps) on {count:,} train images: peak resident {peak:.2f} GiB")

    dataset = open_dataset(datasets["large"])
    rows = dataset.rows("train")
    config = from_dict({"model": {"image_size": 64, "kind": "vaegan"}, "data": {"path": str(datasets["large"])}})
    torch.manual_seed(0)
    nets = build_models(config.model, 40)
    mapped = ImageRows(dataset, rows, 64)
    started = time.perf_counter()
    in_ram = load_images(dataset, rows, 64)
    print(f"baseline: {len(rows):,} train images loaded into RAM in {time.perf_counter() - started:.1f} s "
          f"({in_ram.numel() / 2**30:.2f} GiB)")
    results = {}
    for label, images in (("memory-mapped", mapped), ("in RAM", in_ram)):
        results[label] = images_per_second(images, len(rows), 64, args.steps, nets, config)
        print(f"{label:<14} batch fetch {results[label][0]:>9.0f} images/s   fetch + step {results[label][1]:>7.1f} "
              "images/s")
    ratio = results["memory-mapped"][1] / results["in RAM"][1]
    print(f"memory-mapped / in RAM, training: {ratio:.3f}x   (fetch alone: "
          f"{results['memory-mapped'][0] / results['in RAM'][0]:.2f}x)")


if __name__ == "__main__":
    main()
