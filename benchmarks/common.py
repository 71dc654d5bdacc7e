"""Helpers shared by the benchmark scripts."""
from __future__ import annotations

import time
from pathlib import Path

import torch

REPORTED_CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def matmul_peak(dtype: torch.dtype, n: int = 1024, repeats: int = 5, device: torch.device | str = "cpu") -> float:
    """GFLOP/s of a square matmul: this machine's practical peak for ``dtype``."""
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    torch.mm(a, b)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    sync()
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    sync()
    return 2 * n**3 * repeats / (time.perf_counter() - started) / 1e9


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """The vector-unit flags that decide CPU speed here (printed beside every figure)."""
    try:
        line = next(l for l in cpuinfo.read_text().splitlines() if l.startswith("flags"))
    except (OSError, StopIteration):
        return ["unknown"]
    present = set(line.split(":", 1)[1].split())
    return [flag for flag in REPORTED_CPU_FLAGS if flag in present] or ["none of " + "/".join(REPORTED_CPU_FLAGS)]
