"""Line-oriented list files, as datasets ship them: whitespace-separated text (CRLF or LF) or
CSV; every error names the file and line."""
from __future__ import annotations

import csv
from pathlib import Path

from attrgan.runtime.errors import UserError


class ListFileError(UserError):
    """A list file that does not follow its format."""


def read_file_column(path: Path, what: str, allowed: set[str] | None = None) -> dict[str, tuple[str, int]]:
    """A ``<file> <value>`` list or a two-column CSV with a header (a partition, identities): file ->
    (value, line); ``allowed``: the values it may hold."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the {what} file is missing")
    lines = csv_lines(path)[1:] if path.suffix.lower() == ".csv" else whitespace_lines(path)  # the CSV's header skipped
    table: dict[str, tuple[str, int]] = {}
    for lineno, fields in lines:
        if len(fields) != 2:
            raise ListFileError(f"{path}:{lineno}: expected '<file> <{what}>', found {len(fields)} fields")
        if allowed is not None and fields[1] not in allowed:
            raise ListFileError(f"{path}:{lineno}: {what} {fields[1]!r} is not one of {', '.join(sorted(allowed))}")
        if fields[0] in table:
            raise ListFileError(f"{path}:{lineno}: a second row for {fields[0]} (first on line {table[fields[0]][1]})")
        table[fields[0]] = (fields[1], lineno)
    return table


def csv_lines(path: Path) -> list[tuple[int, list[str]]]:
    """A CSV's non-empty rows as (line, fields), the header included, the fields stripped."""
    return [(lineno, [f.strip() for f in next(csv.reader([line]))]) for lineno, line in _text_lines(path)]


def whitespace_lines(path: Path) -> list[tuple[int, list[str]]]:
    """A whitespace-separated text file's non-empty lines as (line, fields)."""
    return [(lineno, line.split()) for lineno, line in _text_lines(path)]


def _text_lines(path: Path) -> list[tuple[int, str]]:
    """Non-empty lines (CRLF or LF, a UTF-8 BOM dropped) as (line number, stripped text)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the file is missing")
    with path.open("rb") as handle:
        out = []
        for lineno, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").strip()
            except UnicodeDecodeError:
                raise ListFileError(f"{path}:{lineno}: not UTF-8 text") from None
            if line:
                out.append((lineno, line))
        return out
