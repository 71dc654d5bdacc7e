"""Dataset sources: what the shared writer (data_prep.prep) needs from a reader, and the LFW
reader, streaming the ``lfw.tgz`` archive (never extracted) or an image folder.

The LFW readers yield the raw bytes of every ``<Name>/<Name>_NNNN.<ext>`` file in a
deterministic order: archive order for a tar file, sorted path order for a folder. Other
formats (CelebA, a folder with a CSV) are readers of their own beside this one; each returns a
:class:`Source`.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from attrgan.runtime.errors import UserError
from data_prep.attributes import MAX_IMAGE_NUMBER, AttributeTable, folder_name, read_attribute_file

IMAGE_PATTERN = re.compile(r"(?:^|/)([^/]+)/\1_(\d+)\.(?:jpe?g|png)$", re.IGNORECASE)
TAR_SUFFIXES = (".tgz", ".tar.gz", ".tar")


@dataclass(frozen=True)
class SourceImage:
    """One image file of the input: who, which number, where, and its encoded bytes."""

    person: str  # folder name, with underscores
    imagenum: int
    source: str  # relative path inside the input
    data: bytes
    error: str | None = None  # why the file (or its folder) could not be read: listed as unreadable, like a corrupt one


def read_image_file(path: Path, person: str, imagenum: int, source: str) -> SourceImage:
    """One image file's bytes; a file the OS refuses (permission) is an unreadable image, not a stop."""
    try:
        return SourceImage(person, imagenum, source, path.read_bytes())
    except (PermissionError, IsADirectoryError) as exc:
        return SourceImage(person, imagenum, source, b"", f"{type(exc).__name__}: {exc.strerror}")


@dataclass
class Source:
    """One dataset to prepare: where its images come from, their labels and any split it fixes.

    Images and labels meet on (person, imagenum): ``person`` is the identity where the source
    knows one, else a unique id per image."""

    kind: str  # lfw | celeba | folder
    inputs: dict[str, Path | None]  # name -> file or folder read (guarded, fingerprinted in the manifest)
    images: Callable[[], Iterator["SourceImage"]]  # a fresh iterator over every image, in a fixed order
    count: Callable[[], int]  # how many images ``images()`` yields (a cheap listing pass)
    table: "AttributeTable | None" = None  # attribute rows keyed by (person, imagenum); None: all unlabelled
    splits: dict[tuple[str, int], str] | None = None  # the source's own split (CelebA's partition), else None
    attribute_kinds: dict[str, str] = field(default_factory=dict)  # name -> binary | continuous
    crop: str = "mtcnn"  # the default crop of this source: mtcnn | celeba | none
    roots: tuple[Path, ...] = ()  # folders the inputs were found in: guarded (no output inside), not fingerprinted
    details: dict = field(default_factory=dict)  # what the reader found (a layout, a subset), for the manifest
    landmarks: dict[tuple[str, int], np.ndarray] | None = None  # given 5-point landmarks [5, 2] (--align landmarks)


@dataclass(frozen=True)
class Reader:
    """A registered dataset source: how `reproduce --dataset NAME` opens it, and what it takes."""

    name: str
    open: Callable[..., Source]  # (images, attributes, subset=..., align=...) -> Source
    alignments: tuple[str, ...]  # the crops its --align offers
    attributes: str  # its --attributes file: "optional", "required" or "none" (the labels come with the images)
    subset: bool = False  # it takes --subset (a partial copy of its list files)


READERS: dict[str, Reader] = {}


def reader(name: str, *, alignments: tuple[str, ...], attributes: str, subset: bool = False) -> Callable:
    """Register ``open(images, attributes, subset, align) -> Source`` as the dataset source ``name``."""
    def register(open_source: Callable[..., Source]) -> Callable[..., Source]:
        READERS[name] = Reader(name, open_source, alignments, attributes, subset)
        return open_source
    return register


def open_source(name: str, images: str | Path, attributes: str | Path | None = None, subset: bool = False,
                align: str | None = None) -> Source:
    """The registered reader ``name`` over ``images`` (and ``attributes``), its options checked first."""
    if name not in READERS:
        raise UserError(f"--dataset must be one of {', '.join(READERS)}, got {name!r}")
    found = READERS[name]
    if align is not None:
        check_alignment(name, align)
    if subset and not found.subset:
        raise UserError(f"--subset is for --dataset {' or '.join(n for n, r in READERS.items() if r.subset)} (a "
                        "partial "
                        "copy of the release's list files)")
    if found.attributes == "none" and attributes is not None:
        raise UserError(f"--dataset {name} reads its attributes from the root given as --images; drop --attributes")
    if found.attributes == "required" and attributes is None:
        raise UserError(f"--dataset {name} needs --attributes, the file that labels the images")
    return found.open(images, attributes, subset=subset, align=align)


def check_alignment(kind: str, align: str) -> None:
    """One message for an ``--align`` that source ``kind`` does not offer."""
    allowed = READERS[kind].alignments
    if align not in allowed:
        choices = f"{', '.join(allowed[:-1])} or {allowed[-1]}" if len(allowed) > 1 else allowed[0]
        raise UserError(f"--align for {kind} must be {choices}, got {align!r}")


def attribute_kinds(table: "AttributeTable") -> dict[str, str]:
    """``binary`` for a column whose values are all -1/1 or 0/1, else ``continuous``."""
    kinds = {}
    for name in table.names:
        values = set(table.frame[name].dropna().unique().tolist())
        kinds[name] = "binary" if values and (values <= {-1.0, 1.0} or values <= {0.0, 1.0}) else "continuous"
    return kinds


def lfw_source(images: str | Path, attributes: str | Path | None = None) -> Source:
    """LFW in its official layout: ``lfw.tgz`` or a folder of ``<Name>/<Name>_NNNN.jpg``, with
    ``lfw_attributes.txt`` (73 continuous values) when given."""
    if not Path(images).exists():
        raise FileNotFoundError(f"{images}: no such folder or .tgz/.tar archive")
    table = read_attribute_file(attributes) if attributes is not None else None
    return Source(kind="lfw", inputs={"images": Path(images), "attributes": attributes and Path(attributes)},
                  images=lambda: iter_images(images), count=lambda: count_images(images), table=table,
                  attribute_kinds={name: "continuous" for name in table.names} if table else {})


@reader("lfw", alignments=("mtcnn",), attributes="optional")
def _open_lfw(images: str | Path, attributes: str | Path | None, subset: bool = False,
              align: str | None = None) -> Source:
    return lfw_source(images, attributes)


def parse_image_path(path: str) -> tuple[str, int] | None:
    """``(person, imagenum)`` for an LFW-layout path, or None for any other file; an image
    number outside 1..MAX_IMAGE_NUMBER is an error naming the file."""
    match = IMAGE_PATTERN.search(path.replace("\\", "/"))
    if match is None:
        return None
    imagenum = int(match.group(2))
    if not 1 <= imagenum <= MAX_IMAGE_NUMBER:
        raise UserError(f"{path}: image number {match.group(2)} is outside 1..{MAX_IMAGE_NUMBER}; rename the file "
                         "(<Name>/<Name>_NNNN.jpg, numbered from 1)")
    return folder_name(match.group(1)), imagenum


def is_archive(path: Path) -> bool:
    """Whether ``path`` is a tar archive we read in streaming mode."""
    return path.is_file() and path.name.lower().endswith(TAR_SUFFIXES)


class ArchiveError(UserError):
    """A tar archive that cannot be read to its end (truncated, corrupt or not a tar)."""


@contextlib.contextmanager
def _readable_archive(path: Path) -> Iterator[tarfile.TarFile]:
    """Open a tar archive for streaming; any read failure inside becomes one ArchiveError."""
    try:
        with tarfile.open(path, mode="r|*") as archive:  # streaming: one member in memory at a time
            yield archive
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ArchiveError(f"{path}: not a readable tar archive, or truncated ({type(exc).__name__}: {exc}); "
                           "download it again") from None


def count_images(path: str | Path) -> int:
    """Number of LFW-layout images in the input (one streaming pass for an archive, which
    also proves the archive readable to its end before any work starts)."""
    path = Path(path)
    if is_archive(path):
        with _readable_archive(path) as archive:
            return sum(1 for m in archive if m.isfile() and parse_image_path(m.name))
    return sum(1 for _ in _folder_images(path))


def iter_images(path: str | Path) -> Iterator[SourceImage]:
    """Yield every LFW-layout image of a tar archive or folder, one at a time."""
    path = Path(path)
    if is_archive(path):
        yield from _iter_archive(path)
    elif path.is_dir():
        for rel, person, imagenum, refused in _folder_images(path):
            yield SourceImage(person, imagenum, rel, b"", refused) if refused else \
                read_image_file(path / rel, person, imagenum, rel)
    else:
        raise FileNotFoundError(f"{path}: no such folder or .tgz/.tar archive")


def _iter_archive(path: Path) -> Iterator[SourceImage]:
    with _readable_archive(path) as archive:
        for member in archive:
            parsed = parse_image_path(member.name) if member.isfile() else None
            if parsed is None:
                continue
            handle = archive.extractfile(member)
            data = handle.read() if handle is not None else b""
            yield SourceImage(parsed[0], parsed[1], member.name, data)


def _folder_images(root: Path) -> Iterator[tuple[str, str, int, str | None]]:
    """(relative path, person, image number, None) of each LFW-layout image below ``root``, then
    (folder/, its name, 0, why) of each folder that could not be listed (its images unreadable)."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder or .tgz/.tar archive")
    refused: list[tuple[Path, OSError]] = []
    for file in files_under(root, refused):
        rel = file.relative_to(root).as_posix()
        parsed = parse_image_path(rel)
        if parsed is not None:
            yield rel, parsed[0], parsed[1], None
    for folder, error in refused:
        yield (f"{folder.relative_to(root).as_posix()}/", folder.name, 0,
               f"{type(error).__name__}: {error.strerror} (the folder could not be listed)")


def files_under(root: Path, refused: list[tuple[Path, OSError]] | None = None) -> list[Path]:
    """Every file below ``root``, sorted, symlinked folders followed (``Path.rglob`` skips them);
    a link back into a folder already walked is not walked twice. A folder that cannot be listed
    is added to ``refused`` with its error (and skipped)."""
    walked, files = set(), []

    def note(error: OSError) -> None:
        if refused is not None and error.filename is not None:
            refused.append((Path(error.filename), error))

    for folder, subfolders, names in os.walk(root, followlinks=True, onerror=note):
        real = os.path.realpath(folder)
        if real in walked:
            subfolders.clear()
            continue
        walked.add(real)
        files.extend(Path(folder) / name for name in names if (Path(folder) / name).is_file())
    return sorted(files)


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, or of every file of a folder (relative paths and bytes, sorted)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = files_under(path) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode())
        try:
            with file.open("rb") as handle:
                while block := handle.read(chunk):
                    digest.update(block)
        except PermissionError:
            if not path.is_dir():
                raise
            digest.update(b"\0unreadable\0")  # a folder's file the OS refuses: prep lists it as unreadable
    return digest.hexdigest()
