"""One writer per output folder: an exclusive lock on a file beside it (``.NAME.lock``), held
while a command writes and released by the kernel if the process dies. Readers take none."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Iterator

from attrgan.runtime.errors import UserError
from attrgan.runtime.signals import terminate_as_interrupt


class OutputBusyError(UserError):
    """Another process is writing the same output folder."""


def lock_file(out: str | Path) -> Path:
    """The lock of output ``out``: a hidden file beside it, so replacing ``out`` leaves it alone."""
    out = Path(out)
    return out.parent / f".{out.name}.lock"


@contextlib.contextmanager
def writer_lock(out: str | Path) -> Iterator[None]:
    """Hold ``out``'s lock while the block writes it. A second writer is refused in one line
    naming the holder (PID, start time, command); a lock whose holder died is taken over with a
    note on stderr. The file is removed on release."""
    out = Path(out)
    path = lock_file(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            handle = open(path, "a+")
        except (PermissionError, IsADirectoryError) as exc:
            raise PermissionError(exc.errno, f"{out}: cannot write in {out.parent} ({exc.strerror}); choose an output "
                                             "in a folder you can write") from None
        except OSError as exc:
            if exc.errno != errno.EROFS:
                raise
            raise OSError(exc.errno, f"{out}: {out.parent} is on a read-only file system; choose an output "
                                     "elsewhere") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            handle.close()
            raise OutputBusyError(f"{out} is being written by another process ({holder or 'unknown'}); wait for it "
                                  "to finish or stop it, or choose another output") from None
        if _same_file(handle, path):  # not a lock file that its last holder removed meanwhile
            break
        handle.close()
    left = _holder(handle)
    if left:
        print(f"note: {out}: taking over the lock left by {left}, which is no longer running", file=sys.stderr)
    handle.seek(0)
    handle.truncate()
    json.dump({"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
               "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])}, handle)
    handle.flush()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        handle.close()  # closing releases the lock


@contextlib.contextmanager
def sole_writer(out: str | Path) -> Iterator[None]:
    """:func:`writer_lock` on ``out``, with SIGTERM handled as Ctrl-C inside (the atomic write then
    cleans up and says that nothing was written)."""
    with writer_lock(out), terminate_as_interrupt(f"nothing was written to {out}"):
        yield


def _holder(handle) -> str:
    """'PID 123, started 2026-12-05 12:00:01: attrgan train-conditional ...' from a lock file, '' if empty."""
    handle.seek(0)
    try:
        info = json.loads(handle.read() or "{}")
    except ValueError:
        return ""
    if not info:
        return ""
    return f"PID {info.get('pid')}, started {info.get('started')}: {info.get('command')}"


def _same_file(handle, path: Path) -> bool:
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
