"""Device and precision selection shared by every command."""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise the named device (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine (use auto or cpu)")
    return device


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU computes bf16 natively (AVX-512 BF16 or AMX), read from the kernel's CPU
    flags. Elsewhere bf16 is emulated and tens of times slower than fp32."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return any(flag in flags for flag in NATIVE_BF16_CPU_FLAGS)


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` -> bf16 on CUDA and on CPUs with native bf16, fp32 elsewhere; other names pass through."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def resolve_compile(setting: bool | str, device: torch.device) -> bool:
    """``train.compile``: ``auto`` compiles on CUDA only. On the CPUs measured here the compiled
    networks ran slower than eager ones (their compiled backward computes every gradient, also in
    the step's input-only passes), see docs/performance.md."""
    return device.type == "cuda" if setting == "auto" else bool(setting)


def compile_networks(nets: dict[str, nn.Module], device: torch.device) -> dict[str, nn.Module]:
    """``torch.compile`` each network (parameters shared with ``nets``), or, where the backend
    cannot compile here (no C++ compiler, no Triton), say so in one line and return ``nets``."""
    try:
        torch.compile(lambda t: t * 2 + 1)(torch.ones(2, device=device))
    except Exception as exc:  # inductor reports a missing toolchain with many exception types
        print(f"train.compile: torch.compile does not work here ({type(exc).__name__}: "
              f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no message'}); training uncompiled",
              file=sys.stderr)
        return nets
    return {name: torch.compile(net) for name, net in nets.items()}
