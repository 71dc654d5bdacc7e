"""Peak memory of `attrgan sample -n N` against the estimate its refusal uses (grid_memory).

    .venv/bin/python benchmarks/sample_memory.py [--n 20000 50000] [--checkpoint tests/fixtures/vaegan-2026-12-05.pt]

Each N runs in its own process; its peak resident memory comes from wait4's rusage."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import reported_cpu_flags

from attrgan.editing.edits import grid_memory
from attrgan.nets.loaded import load

ROOT = Path(__file__).resolve().parents[1]


def peak_of(argv: list[str]) -> int:
    """Peak resident bytes of one child process running ``argv``."""
    child = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(child.stderr.read().decode())
    return usage.ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, nargs="+", default=[20000, 50000])
    parser.add_argument("--checkpoint", default=str(ROOT / "tests" / "fixtures" / "vaegan-2026-12-05.pt"))
    args = parser.parse_args()
    size = load(args.checkpoint).image_size
    print("CPU flags:", " ".join(reported_cpu_flags()))
    print(f"{'n':>8} {'image':>6} {'peak GiB':>9} {'estimate GiB':>13} {'estimate / peak':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.n:
            peak = peak_of([sys.executable, "-m", "cli.main", "sample", "--checkpoint", args.checkpoint, "-n", str(n),
                            "--out", str(Path(tmp) / f"{n}.png"), "--device", "cpu"])
            estimate = grid_memory(n, size)
            print(f"{n:>8} {size:>4}px {peak / 2**30:>9.2f} {estimate / 2**30:>13.2f} {estimate / peak:>16.2f}")


if __name__ == "__main__":
    main()
