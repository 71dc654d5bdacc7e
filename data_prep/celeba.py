"""The CelebA reader: the official release as distributed, for the shared writer (data_prep.prep).

Found in any layout of :mod:`data_prep.celeba_layout` (flat, the Drive tree, torchvision's root,
Kaggle's copy): ``img_align_celeba/NNNNNN.jpg`` (or ``img_align_celeba.zip``, read member by
member, never extracted), ``list_attr_celeba.txt`` (line 1: the image count; line 2: the 40
attribute names, with the release's trailing space; then ``000001.jpg -1  1 ...``, split on any
whitespace, values -1/1) or Kaggle's ``list_attr_celeba.csv`` (``image_id`` and the 40 names),
``list_eval_partition`` (0/1/2 = train/val/test: the official split is kept) and, when present,
``identity_CelebA.txt`` (the person of each image; without it every image is its own person).
Mismatches between the files are errors that name the file and line; an unreadable image is
listed by the writer, never fatal.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from data_prep.attributes import AttributeTable
from data_prep.celeba_layout import find_layout
from data_prep.list_files import ListFileError, csv_lines, read_file_column, whitespace_lines
from data_prep.sources import Source, SourceImage, read_image_file, reader

CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose",
    "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses",
    "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes",
    "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling",
    "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)
IMAGES_DIR = "img_align_celeba"  # the folder the index's source paths name, in every layout
PARTITION_SPLITS = {"0": "train", "1": "val", "2": "test"}
IMAGE_NAME = re.compile(r"^(\d{1,6})\.(?:jpe?g|png)$", re.IGNORECASE)


class CelebAError(ListFileError):
    """A CelebA file that does not follow the release's format, or files that disagree."""


@reader("celeba", alignments=("celeba", "landmarks", "mtcnn", "none"), attributes="none", subset=True)
def _open_celeba(images: str | Path, attributes: None, subset: bool = False, align: str | None = None) -> Source:
    return celeba_source(images, subset=subset, landmarks=align == "landmarks")


def celeba_source(root: str | Path, subset: bool = False, landmarks: bool = False) -> Source:
    """The CelebA release under ``root``, in any layout of :mod:`data_prep.celeba_layout`, as a
    :class:`Source` (checked across its files up front). ``subset``: a partial copy, whose list
    rows without an image are skipped and counted (without it they are an error); ``landmarks``:
    read the aligned images' landmarks too (for ``--align landmarks``)."""
    layout = find_layout(root)
    files = layout.files
    if landmarks and files["landmarks"] is None:
        raise FileNotFoundError(f"{root}: --align landmarks needs list_landmarks_align_celeba.txt (or Kaggle's .csv), "
                                f"which this {layout.name} layout lacks")
    images = files["images"]
    listing = _list_images(images)
    names, rows, count = read_attribute_list(files["attributes"])
    partition = read_file_column(files["partition"], "partition", allowed=set(PARTITION_SPLITS))
    identity = read_file_column(files["identity"], "identity") if files["identity"] else None
    points = read_landmarks(files["landmarks"]) if landmarks else None
    tables = {"attributes": rows, "partition": partition, "identity": identity, "landmarks": points}
    if not listing:
        raise CelebAError(_no_listed_images(images, files["attributes"], next(iter(rows), None)))
    _check_images_listed(listing, tables, files)
    present = set(listing)
    absent = [file for file in rows if file not in present]
    if not subset:
        _check_complete(absent, rows, count, listing, files)
    # from here every table is read by the listing's files only, so rows without an image drop out

    def person(file: str) -> str:
        return identity[file][0] if identity else f"celeba_{_number(file):06d}"

    keys = {file: (person(file), _number(file)) for file in listing}
    frame = pd.DataFrame(np.asarray([rows[f][1] for f in listing], np.float64).reshape(len(listing), len(names)),
                         columns=names)
    frame.insert(0, "imagenum", [keys[f][1] for f in listing])
    frame.insert(0, "person", [keys[f][0] for f in listing])
    details = layout.record()
    if subset:
        details["subset"] = {"listed": len(rows), "present": len(listing)}
    return Source(
        kind="celeba",
        inputs={"images": images, "attributes": files["attributes"], "partition": files["partition"],
                "identity": files["identity"], **({"landmarks": files["landmarks"]} if landmarks else {})},
        images=lambda: _iter_images(images, listing, keys), count=lambda: len(listing),
        table=AttributeTable(names=names, frame=frame),
        splits={keys[f]: PARTITION_SPLITS[partition[f][0]] for f in listing},
        attribute_kinds={name: "binary" for name in names}, crop="celeba", roots=(layout.root,), details=details,
        landmarks={keys[f]: points[f][0] for f in listing} if points else None,
    )


def read_attribute_list(path: Path) -> tuple[list[str], dict[str, tuple[int, list[float]]], int | None]:
    """The attribute list (the release's ``.txt`` or Kaggle's ``.csv``): the names, per image file
    (line, values), and the image count line 1 of the ``.txt`` states (None for the CSV)."""
    is_csv = path.suffix.lower() == ".csv"
    lines = csv_lines(path) if is_csv else whitespace_lines(path)
    if len(lines) < (1 if is_csv else 2):
        raise CelebAError(f"{path}: expected " + ("a header row" if is_csv else
                                                  "the image count on line 1 and the attribute names on line 2"))
    count = None
    if not is_csv:
        try:
            count = int(lines[0][1][0])
        except ValueError:
            raise CelebAError(f"{path}:1: expected the image count, found {' '.join(lines[0][1])[:40]!r}") from None
        lines = lines[1:]
    names = lines[0][1][1:] if is_csv else lines[0][1]  # the CSV's first column is image_id
    if not names or len(set(names)) != len(names):
        raise CelebAError(f"{path}:{lines[0][0]}: empty or repeated attribute names")
    rows: dict[str, tuple[int, list[float]]] = {}
    for lineno, fields in lines[1:]:
        if len(fields) != 1 + len(names):
            raise CelebAError(f"{path}:{lineno}: expected a file name and {len(names)} values, found {len(fields)} "
                              "fields")
        if fields[1:] and set(fields[1:]) - {"-1", "1"}:
            bad = next(v for v in fields[1:] if v not in ("-1", "1"))
            raise CelebAError(f"{path}:{lineno}: attribute value {bad!r} is not -1 or 1")
        if fields[0] in rows:
            raise CelebAError(f"{path}:{lineno}: a second row for {fields[0]} (first on line {rows[fields[0]][0]})")
        _number(fields[0], f"{path}:{lineno}")
        rows[fields[0]] = (lineno, [float(v) for v in fields[1:]])
    return names, rows, count


def read_landmarks(path: Path) -> dict[str, tuple[np.ndarray, int]]:
    """``list_landmarks_align_celeba`` (the release's ``.txt``: the count, the 10 column names, then
    ``000001.jpg 69  109 ...``; or Kaggle's ``.csv``): file -> (``[5, 2]`` x, y in pixels, line)."""
    is_csv = path.suffix.lower() == ".csv"
    lines = csv_lines(path) if is_csv else whitespace_lines(path)[1:]  # the .txt's count line skipped
    if not lines or len(lines[0][1]) != (11 if is_csv else 10):
        raise CelebAError(f"{path}: expected a header of the 10 landmark columns (lefteye_x ... rightmouth_y)")
    table: dict[str, tuple[np.ndarray, int]] = {}
    for lineno, fields in lines[1:]:
        try:
            values = np.array([float(v) for v in fields[1:]])
        except ValueError:
            values = np.array([])
        if len(values) != 10 or not np.isfinite(values).all():
            raise CelebAError(f"{path}:{lineno}: expected a file name and 10 landmark coordinates")
        if fields[0] in table:
            raise CelebAError(f"{path}:{lineno}: a second row for {fields[0]} (first on line {table[fields[0]][1]})")
        table[fields[0]] = (values.reshape(5, 2), lineno)
    return table


def _check_images_listed(listing: list[str], tables: dict[str, dict | None], files: dict[str, Path | None]) -> None:
    """Every image has an attribute, partition (and identity) row."""
    for file in listing:
        for role, table in tables.items():
            if table is not None and file not in table:
                raise CelebAError(f"{files['images']}/{file}: no row in {files[role].name}")


def _check_complete(absent: list[str], rows: dict, count: int | None, listing: list[str],
                    files: dict[str, Path | None]) -> None:
    """Without --subset, every listed image is here and line 1 counts the rows."""
    if absent:
        raise CelebAError(f"{files['attributes']}:{rows[absent[0]][0]}: {absent[0]} has no image in {files['images']} "
                          f"({len(listing):,} of {len(rows):,} listed images present); for a partial copy, pass "
                          "--subset to prepare the images that are here")
    if count is not None and count != len(rows):
        raise CelebAError(f"{files['attributes']}:1: says {count} images, the file has {len(rows)} rows; for a "
                          "partial copy of the list, pass --subset")


def _no_listed_images(images: Path, attributes: Path, listed: str | None) -> str:
    """Why no image file is here: the images sit one folder further in (a tree nested twice), or
    their names are not the list's (an example of each), or there are none."""
    if images.is_dir():
        inner = [d for d in sorted(images.iterdir())
                 if d.is_dir() and any(IMAGE_NAME.match(f.name) for f in d.iterdir())]
        if inner:
            return (f"{images}: the images are one folder further in, in {inner[0]}; move them up into {images} "
                    "(the zip was unpacked into a folder of its own name)")
        others = sorted(p.name for p in images.iterdir() if p.is_file())
    else:
        with zipfile.ZipFile(images) as archive:
            others = sorted(member_file_name(n) for n in archive.namelist() if not n.endswith(("/", "\\")))
    if not others:
        return f"{images}: holds no image files"
    return (f"{images}: none of its {len(others):,} files has a name {attributes.name} lists (it lists e.g. "
            f"{listed!r}; "
            f"here is e.g. {others[0]!r}); the images must keep the release's names (NNNNNN.jpg)")


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
                names = [member_file_name(n) for n in archive.namelist() if not n.endswith(("/", "\\"))]
        except zipfile.BadZipFile as exc:
            raise CelebAError(f"{images}: not a readable zip archive ({exc}); download it again") from None
    return sorted(n for n in names if IMAGE_NAME.match(n))


def member_file_name(member: str) -> str:
    """A zip member's file name, whether its folders are separated by / or, as in zips written on
    Windows, by backslashes."""
    return member.replace("\\", "/").rsplit("/", 1)[-1]


def _iter_images(images: Path, listing: list[str], keys: dict[str, tuple[str, int]]) -> Iterator[SourceImage]:
    """Each image's bytes in listing order: from the folder, or member by member from the zip."""
    if images.is_dir():
        for file in listing:
            yield read_image_file(images / file, *keys[file], f"{IMAGES_DIR}/{file}")
        return
    with zipfile.ZipFile(images) as archive:
        members = {member_file_name(n): n for n in archive.namelist() if not n.endswith(("/", "\\"))}
        for file in listing:
            yield SourceImage(*keys[file], f"{IMAGES_DIR}/{file}", archive.read(members[file]))
