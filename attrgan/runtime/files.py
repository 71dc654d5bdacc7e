"""Atomic output: build in a temporary sibling (directory or file), rename into place at the end."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator

from attrgan.runtime.errors import UserError


def guard_output(out: str | Path, inputs: Iterable[str | Path | None], force: bool = False, *,
                 expect: str = "dir", side_files: Iterable[str | Path] = ()) -> None:
    """The one output rule of every command that writes, checked before any work.

    ``out`` and each of ``side_files`` (files named from ``out``, such as edit's report JSON)
    may not be, hold or lie inside any of ``inputs`` (the files and folders the command reads),
    with or without ``force``: replacing it would delete what the command reads. A file output
    (``expect="file"``) may not name a folder, nor a folder output a file. An existing output
    (a file, or a folder that is not empty) is replaced only with ``force``."""
    inputs = [Path(item) for item in inputs if item is not None]
    for target in [Path(out), *map(Path, side_files)]:
        resolved = target.resolve()
        for source in inputs:
            held = source.resolve()
            if resolved == held or held.is_relative_to(resolved) or resolved.is_relative_to(held):
                raise UserError(f"{target} overlaps the input {source}; choose an output outside the inputs "
                                 "(nothing was written or deleted)")
        if expect == "file" and target.is_dir():
            raise UserError(f"{target} is a folder; the output must name a file (e.g. {target / 'out.png'})")
        if expect == "dir" and target == Path(out) and target.exists() and not target.is_dir():
            raise UserError(f"{target} is a file; the output must name a folder")
        if expect == "dir" and occupied(target) and Path.cwd().resolve().is_relative_to(resolved):
            raise UserError(f"{target} holds the current folder, so it cannot be replaced; run the command from "
                             "elsewhere or choose another output")
        if occupied(target) and not force:
            raise FileExistsError(f"{target} already exists; pass --force to replace it")


def occupied(path: str | Path) -> bool:
    """Whether ``path`` holds something a write would replace: a file, or a folder that is not empty."""
    path = Path(path)
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: Path, name: str) -> list[Path]:
    """Delete the temporaries (``.NAME.tmp-PID*``, ``.NAME.old-PID*``) that a killed process
    left beside ``name`` in ``folder``; those of live processes are kept. Returns what went."""
    removed = []
    if not folder.is_dir():
        return removed
    for path in folder.glob(f".{name}.*-*"):
        tag, _, rest = path.name[len(name) + 2 :].partition("-")
        pid = rest.split(".")[0]
        if tag not in ("tmp", "old") or not pid.isdigit() or _pid_alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_directory(out: str | Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``out`` to fill; rename it to ``out`` on success.

    On any error or interrupt the temporary directory is removed and ``out`` is untouched.
    An existing ``out`` is an error unless ``force``; then it is replaced only at the end.
    Callers check ``guard_output`` against their inputs first, before any long work.
    """
    out = Path(out)
    remove_stale_temporaries(out.parent, out.name)
    if occupied(out) and not force:
        raise FileExistsError(f"{out} already exists; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        with _disk_errors_named(out):
            yield tmp
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` (same suffix, so writers that infer the format
    from it still work) to write; rename it to ``path`` on success. On any error or interrupt
    the temporary file is removed and an existing ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, path.stem)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        with _disk_errors_named(path):
            yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def _disk_errors_named(path: Path) -> Iterator[None]:
    """A full disk or an over-large file while writing ``path``: one line naming it."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise
        raise OSError(exc.errno, f"{path}: {exc.strerror} while writing it (nothing was replaced); free some space "
                      "or write elsewhere") from None


def write_json(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
