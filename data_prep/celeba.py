"""The CelebA reader: the official release as distributed, for the shared writer (data_prep.prep).

``ROOT/img_align_celeba/NNNNNN.jpg`` (or ``ROOT/img_align_celeba.zip``, read member by member,
never extracted), ``list_attr_celeba.txt`` (line 1: the image count; line 2: the 40 attribute
names; then ``000001.jpg -1 1 ...``, split on any whitespace, values -1/1),
``list_eval_partition.txt`` (0/1/2 = train/val/test: the official split is kept) and, when
present, ``identity_CelebA.txt`` (the person of each image; without it every image is its own
person). Mismatches between the files are errors that name the file and line; an unreadable
image is listed by the writer, never fatal.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from data_prep.attributes import AttributeTable
from data_prep.sources import Source, SourceImage

CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose",
    "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses",
    "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes",
    "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling",
    "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)
IMAGES_DIR = "img_align_celeba"
ATTRIBUTES_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IDENTITY_FILE = "identity_CelebA.txt"
PARTITION_SPLITS = {"0": "train", "1": "val", "2": "test"}
IMAGE_NAME = re.compile(r"^(\d{1,6})\.(?:jpe?g|png)$", re.IGNORECASE)


class CelebAError(ValueError):
    """A CelebA file that does not follow the release's format, or files that disagree."""


def celeba_source(root: str | Path) -> Source:
    """The CelebA release under ``root`` as a :class:`Source` (checked across its files up front)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (the CelebA root: {IMAGES_DIR}/ or {IMAGES_DIR}.zip and "
                                f"{ATTRIBUTES_FILE}, {PARTITION_FILE})")
    folder, archive = root / IMAGES_DIR, root / f"{IMAGES_DIR}.zip"
    if not folder.is_dir() and not archive.is_file():
        raise FileNotFoundError(f"{root}: neither {IMAGES_DIR}/ nor {IMAGES_DIR}.zip is here")
    images = folder if folder.is_dir() else archive
    listing = _list_images(images)
    names, rows = read_attribute_list(root / ATTRIBUTES_FILE)
    partition = read_file_column(root / PARTITION_FILE, "partition", allowed=set(PARTITION_SPLITS))
    identity_path = root / IDENTITY_FILE
    identity = read_file_column(identity_path, "identity") if identity_path.is_file() else None
    _check_agreement(listing, rows, partition, identity, root)

    def person(file: str) -> str:
        return identity[file][0] if identity else f"celeba_{_number(file):06d}"

    keys = {file: (person(file), _number(file)) for file in listing}
    frame = pd.DataFrame(np.asarray([rows[f][1] for f in listing], np.float64).reshape(len(listing), len(names)),
                         columns=names)
    frame.insert(0, "imagenum", [keys[f][1] for f in listing])
    frame.insert(0, "person", [keys[f][0] for f in listing])
    return Source(
        kind="celeba",
        inputs={"images": images, "attributes": root / ATTRIBUTES_FILE, "partition": root / PARTITION_FILE,
                "identity": identity_path if identity else None},
        images=lambda: _iter_images(images, listing, keys), count=lambda: len(listing),
        table=AttributeTable(names=names, frame=frame),
        splits={keys[f]: PARTITION_SPLITS[partition[f][0]] for f in listing},
        attribute_kinds={name: "binary" for name in names}, crop="celeba", roots=(root,),
    )


def read_attribute_list(path: Path) -> tuple[list[str], dict[str, tuple[int, list[float]]]]:
    """``list_attr_celeba.txt``: the attribute names and, per image file, (line, values)."""
    lines = _lines(path)
    if len(lines) < 2:
        raise CelebAError(f"{path}: expected the image count on line 1 and the attribute names on line 2")
    try:
        count = int(lines[0][1].strip())
    except ValueError:
        raise CelebAError(f"{path}:1: expected the image count, found {lines[0][1].strip()[:40]!r}") from None
    names = lines[1][1].split()
    if not names or len(set(names)) != len(names):
        raise CelebAError(f"{path}:2: empty or repeated attribute names")
    rows: dict[str, tuple[int, list[float]]] = {}
    for lineno, line in lines[2:]:
        fields = line.split()
        if len(fields) != 1 + len(names):
            raise CelebAError(f"{path}:{lineno}: expected a file name and {len(names)} values, found {len(fields)} fields")
        if fields[1:] and set(fields[1:]) - {"-1", "1"}:
            bad = next(v for v in fields[1:] if v not in ("-1", "1"))
            raise CelebAError(f"{path}:{lineno}: attribute value {bad!r} is not -1 or 1")
        if fields[0] in rows:
            raise CelebAError(f"{path}:{lineno}: a second row for {fields[0]} (first on line {rows[fields[0]][0]})")
        _number(fields[0], f"{path}:{lineno}")
        rows[fields[0]] = (lineno, [float(v) for v in fields[1:]])
    if len(rows) != count:
        raise CelebAError(f"{path}:1: says {count} images, the file has {len(rows)} rows")
    return names, rows


def read_file_column(path: Path, what: str, allowed: set[str] | None = None) -> dict[str, tuple[str, int]]:
    """A ``<file> <value>`` list (the partition or the identities): file -> (value, line)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the CelebA {what} file is missing")
    table: dict[str, tuple[str, int]] = {}
    for lineno, line in _lines(path):
        fields = line.split()
        if len(fields) != 2:
            raise CelebAError(f"{path}:{lineno}: expected '<file> <{what}>', found {len(fields)} fields")
        if allowed is not None and fields[1] not in allowed:
            raise CelebAError(f"{path}:{lineno}: {what} {fields[1]!r} is not one of {', '.join(sorted(allowed))}")
        if fields[0] in table:
            raise CelebAError(f"{path}:{lineno}: a second row for {fields[0]} (first on line {table[fields[0]][1]})")
        table[fields[0]] = (fields[1], lineno)
    return table


def _check_agreement(listing: list[str], rows: dict, partition: dict, identity: dict | None, root: Path) -> None:
    """Every image has an attribute, partition (and identity) row, and every row an image."""
    present = set(listing)
    for file in listing:
        for table, name in ((rows, ATTRIBUTES_FILE), (partition, PARTITION_FILE), (identity, IDENTITY_FILE)):
            if table is not None and file not in table:
                raise CelebAError(f"{root / IMAGES_DIR}/{file}: no row in {name}")
    for table, name in ((rows, ATTRIBUTES_FILE), (partition, PARTITION_FILE), (identity, IDENTITY_FILE)):
        for file, entry in (table or {}).items():
            if file not in present:
                line = entry[0] if name == ATTRIBUTES_FILE else entry[1]
                raise CelebAError(f"{root / name}:{line}: {file} has no image in {IMAGES_DIR}")


def _lines(path: Path) -> list[tuple[int, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the CelebA file is missing")
    with path.open("rb") as handle:
        out = []
        for lineno, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise CelebAError(f"{path}:{lineno}: not UTF-8 text") from None
            if line:
                out.append((lineno, line))
        return out


def _number(file: str, where: str | None = None) -> int:
    match = IMAGE_NAME.match(file)
    if match is None:
        raise CelebAError(f"{where or file}: {file!r} is not a CelebA image name (NNNNNN.jpg)")
    return int(match.group(1))


def _list_images(images: Path) -> list[str]:
    """The image file names, sorted, of the folder or the zip (its files under img_align_celeba/)."""
    if images.is_dir():
        names = [p.name for p in images.iterdir() if p.is_file()]
    else:
        try:
            with zipfile.ZipFile(images) as archive:
                names = [Path(n).name for n in archive.namelist() if not n.endswith("/")]
        except zipfile.BadZipFile as exc:
            raise CelebAError(f"{images}: not a readable zip archive ({exc}); download it again") from None
    return sorted(n for n in names if IMAGE_NAME.match(n))


def _iter_images(images: Path, listing: list[str], keys: dict[str, tuple[str, int]]) -> Iterator[SourceImage]:
    """Each image's bytes in listing order: from the folder, or member by member from the zip."""
    if images.is_dir():
        for file in listing:
            yield SourceImage(*keys[file], f"{IMAGES_DIR}/{file}", (images / file).read_bytes())
        return
    with zipfile.ZipFile(images) as archive:
        members = {Path(n).name: n for n in archive.namelist() if not n.endswith("/")}
        for file in listing:
            yield SourceImage(*keys[file], f"{IMAGES_DIR}/{file}", archive.read(members[file]))
