"""Device and precision selection shared by every command."""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from attrgan.runtime.errors import UserError

NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise the named device (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, index = str(name).partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise UserError(f"--device must be auto, cpu or cuda[:N], got {name!r}")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine (use auto or cpu)")
    return device


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags as the kernel reports them (empty where they cannot be read)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    return next((set(line.split(":", 1)[1].split()) for line in text.splitlines() if line.startswith("flags")), set())


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU computes bf16 natively (AVX-512 BF16 or AMX), read from the kernel's CPU
    flags. Elsewhere bf16 is emulated and tens of times slower than fp32."""
    return any(flag in cpu_flags(cpuinfo) for flag in NATIVE_BF16_CPU_FLAGS)


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` -> bf16 on CUDA and on CPUs with native bf16, fp32 elsewhere; other names pass through."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def resolve_compile(setting: bool | str, device: torch.device, precision: str) -> bool:
    """``train.compile``: ``auto`` compiles where it was measured to pay, CUDA in fp32 (1.06x on
    an H200 after 24 s of compiling); not in bf16 on CUDA (0.92x) and never on CPU (0.7-0.8x:
    the compiled backward computes every gradient, also in the step's input-only passes).
    docs/performance.md has the figures."""
    if setting == "auto":
        return device.type == "cuda" and precision == "fp32"
    return bool(setting)


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
    # The step walks a graph more than once (retain_graph=True), which AOTAutograd's donated
    # buffers forbid: off, or the second walk fails (seen at 64x64 on CPU, torch 2.14).
    torch._functorch.config.donated_buffer = False
    return {name: torch.compile(net) for name, net in nets.items()}
