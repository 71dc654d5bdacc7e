"""Helpers shared by the benchmark scripts."""
from __future__ import annotations

import platform
import time
from pathlib import Path

import torch

from attrgan.runtime.device import cpu_flags

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


def reported_cpu_flags() -> list[str]:
    """The vector-unit flags that decide CPU speed here (printed beside every figure)."""
    present = cpu_flags()
    if not present:
        return ["unknown"]
    return [flag for flag in REPORTED_CPU_FLAGS if flag in present] or ["none of " + "/".join(REPORTED_CPU_FLAGS)]


def cpu_model() -> str:
    """The CPU's model name (lscpu's), named beside every figure."""
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
