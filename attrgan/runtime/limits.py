"""Range and memory checks of numeric options, shared by every command: a value no run could
use, or an allocation this machine cannot hold, is refused up front with one line that names
the option, its allowed range or the memory estimate."""
from __future__ import annotations

import ctypes
import math
import os
import shutil
from pathlib import Path

from attrgan.runtime.errors import UserError


def require(name: str, value: float | int | None, low: float | None = None, high: float | None = None, *,
            open_low: bool = False, open_high: bool = False) -> None:
    """Refuse a non-finite ``value`` or one outside [low, high] (``open_low``/``open_high``
    exclude the bound); None passes (an option left unset)."""
    if value is None:
        return
    bounds = (f"{'>' if open_low else '>='} {low:g}" if low is not None else "",
              f"{'<' if open_high else '<='} {high:g}" if high is not None else "")
    allowed = " and ".join(b for b in bounds if b)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{name} must be a finite number{f' ({allowed})' if allowed else ''}, got {value!r}")
    too_low = low is not None and (value <= low if open_low else value < low)
    too_high = high is not None and (value >= high if open_high else value > high)
    if too_low or too_high:
        raise UserError(f"{name} must be {allowed}, got {value!r}")


def parse_list(name: str, text: str, kind: type = float) -> list:
    """Comma-separated numbers of an option such as ``--strength -2,0,2`` or ``--channels 64,128``."""
    items = [item.strip() for item in str(text).split(",")]
    try:
        values = [kind(item) for item in items]
    except ValueError:
        kind_name = "integers" if kind is int else "numbers"
        raise UserError(f"{name} must be comma-separated {kind_name} (e.g. "
                        f"{'64,128,256' if kind is int else '-2,0,2'}), "
                         f"got {text!r}") from None
    for value in values:
        require(name, value)
    return values


def available_memory(meminfo: Path = Path("/proc/meminfo")) -> int:
    """Bytes of memory available to a new allocation (MemAvailable), or total RAM where unreadable."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(nbytes: float, what: str) -> None:
    """Refuse an allocation of ``nbytes`` that exceeds the memory available now."""
    available = available_memory()
    if nbytes > available:
        raise UserError(f"{what} would need about {nbytes / 2**30:,.1f} GiB of memory, more than the "
                         f"{available / 2**30:,.1f} GiB available; ask for less")


def check_disk(nbytes: float, folder: str | Path, what: str) -> None:
    """Refuse writing ``nbytes`` under ``folder`` (or its nearest existing parent) when the disk lacks room."""
    folder = Path(folder).resolve()
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if nbytes > free:
        raise UserError(f"{what} would need about {nbytes / 2**30:,.1f} GiB of disk under {folder}, more than the "
                         f"{free / 2**30:,.1f} GiB free")


def release_freed_memory() -> None:
    """Hand freed heap memory back to the OS (glibc only). MTCNN allocates differently sized
    tensors every batch; without this, glibc's heap keeps growing (peak RSS 1.97 GiB over
    full LFW instead of ~1.2 GiB)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
