"""Trained models that ship inside the package, under short names (``--checkpoint lfw32``,
``--regressor lfw32``): where their files are, checked.

``attrgan/bundled/models.json`` lists each name's files (its generator and its regressor), their
sha256 and a line of its card (docs/models.md). A file is checked against its sha256 when it is
first loaded in a process, so a damaged install is one clear error. attrgan.bundle_export
writes them."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from attrgan.runtime.errors import UserError

BUNDLE_DIR = Path(__file__).parent / "bundled"
CATALOGUE = "models.json"
ROLES = ("generator", "regressor")
_verified: set[Path] = set()


class BundleError(UserError):
    """A bundled model's file that is missing or damaged."""


def catalogue(folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """name -> {"card": one line, "generator"/"regressor": {"file", "sha256", "bytes"}}."""
    path = (folder or BUNDLE_DIR) / CATALOGUE
    return json.loads(path.read_text()) if path.is_file() else {}


def size_mb(entry: dict[str, Any]) -> float:
    """The megabytes (MiB) a catalogue entry's files take together."""
    return sum(entry[role]["bytes"] for role in ROLES if role in entry) / 2**20


def bundled_file(name: str, role: str) -> Path | None:
    """The checked file of bundled model ``name`` in ``role`` (generator or regressor), or None
    when no bundled model has that name; a file whose sha256 differs is refused."""
    entry = catalogue().get(str(name))
    if entry is None or role not in entry:
        return None
    path = BUNDLE_DIR / entry[role]["file"]
    if path not in _verified:
        if not path.is_file() or sha256_of_file(path) != entry[role]["sha256"]:
            raise BundleError(f"bundled model {name!r}: its {role} file {path} is missing or damaged (its sha256 "
                                  "does not match the catalogue); reinstall attrgan")
        _verified.add(path)
    return path


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
