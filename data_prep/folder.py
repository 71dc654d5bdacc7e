"""The reader of any attribute-labelled image folder, for the shared writer (data_prep.prep).

A folder of images (any depth) and a CSV or TSV with one row per image: a file-name column
(the path relative to the folder), numeric attribute columns (binary -1/1 or 0/1, or
continuous, kept as given) and, optionally, ``split`` (train/val/test: kept; or a separate split
file such as CelebA's partition list) and ``identity`` (then the seeded split keeps each
identity in one split). An image without a row, a row without
an image, a repeated row and a non-numeric value are errors naming the file and line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pandas as pd

from attrgan.runtime.errors import UserError
from data_prep.attributes import AttributeTable
from data_prep.list_files import read_file_column
from data_prep.sources import Source, SourceImage, attribute_kinds, files_under, read_image_file, reader

FILE_COLUMNS = ("file", "filename", "file_name", "image", "image_id", "path")  # recognised names of the file column
SPLIT_VALUES = ("train", "val", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class LabelFileError(UserError):
    """A label file that does not fit its image folder."""


SPLIT_FILE_VALUES = {"0": "train", "1": "val", "2": "test", **{name: name for name in SPLIT_VALUES}}


@reader("folder", alignments=("celeba", "mtcnn", "none"), attributes="required")
def _open_folder(images: str | Path, attributes: str | Path, subset: bool = False, align: str | None = None) -> Source:
    return folder_source(images, attributes)


def folder_source(images: str | Path, attributes: str | Path, file_column: str | None = None,
                  split_file: str | Path | None = None) -> Source:
    """The folder ``images`` labelled by the CSV/TSV ``attributes`` as a :class:`Source`;
    ``split_file`` (e.g. CelebA's partition list): each image's split, kept as given."""
    images, attributes = Path(images), Path(attributes)
    if not images.is_dir():
        raise FileNotFoundError(f"{images}: no such image folder")
    if not attributes.is_file():
        raise FileNotFoundError(f"{attributes}: label file not found")
    frame = _read_table(attributes)
    column = _file_column(frame, attributes, file_column)
    files = frame[column].astype(str).str.strip().str.replace("\\", "/", regex=False)
    line = {i: i + 2 for i in range(len(frame))}  # the header is line 1
    repeated = files[files.duplicated()]
    if len(repeated):
        i = repeated.index[0]
        first = files[files == repeated.iloc[0]].index[0]
        raise LabelFileError(f"{attributes}:{line[i]}: a second row for {repeated.iloc[0]} (first on line "
                             f"{line[first]})")
    refused: list = []
    on_disk = [p.relative_to(images).as_posix() for p in files_under(images,
                                                                     refused) if p.suffix.lower() in IMAGE_SUFFIXES]
    if refused:
        folder, error = refused[0]
        raise PermissionError(error.errno, f"{folder}: {error.strerror}, so the images in it cannot be read; make it "
                                           "readable (or move it out of the image folder)")
    missing = [i for i, f in files.items() if not (images / f).is_file()]
    if missing:
        raise LabelFileError(f"{attributes}:{line[missing[0]]}: {files[missing[0]]} has no image in {images} "
                             f"({len(missing)} such rows)")
    unlabelled = sorted(set(on_disk) - set(files))
    if unlabelled:
        raise LabelFileError(f"{images / unlabelled[0]}: no row in {attributes} ({len(unlabelled)} such images)")

    split_column = next((c for c in frame.columns if c.lower() == "split"), None)
    identity_column = next((c for c in frame.columns if c.lower() in ("identity", "person")), None)
    names = [c for c in frame.columns if c not in (column, split_column, identity_column)]
    if not names:
        raise LabelFileError(f"{attributes}: no attribute columns beside {column!r}")
    values = _numeric(frame, names, attributes, line)
    if split_column is not None:
        bad = frame.index[~frame[split_column].astype(str).str.strip().isin(SPLIT_VALUES)]
        if len(bad):
            raise LabelFileError(f"{attributes}:{line[bad[0]]}: split {frame.loc[bad[0], split_column]!r} is not one "
                                 "of "
                                 f"{', '.join(SPLIT_VALUES)}")
    persons = (frame[identity_column].astype(str).str.strip() if identity_column is not None
               else files.str.rsplit(".", n=1).str[0])
    numbers = pd.Series(range(1, len(frame) + 1), index=frame.index)
    keys = {f: (persons[i], int(numbers[i])) for i, f in files.items()}
    table = AttributeTable(names=names, frame=pd.concat(
        [pd.DataFrame({"person": persons, "imagenum": numbers}), values], axis=1).reset_index(drop=True))
    splits = None if split_column is None else {
        keys[f]: frame.loc[i, split_column].strip() for i, f in files.items()}
    if split_file is not None:
        if split_column is not None:
            raise LabelFileError(f"{attributes}: has a {split_column!r} column, and --split-file {split_file} gives "
                                 "the "
                                 "split too; keep one")
        splits = {keys[f]: split for f, split in _splits_from_file(Path(split_file), files, images).items()}
    order = sorted(files)
    return Source(kind="folder", inputs={"images": images, "attributes": attributes,
                                         "split_file": None if split_file is None else Path(split_file)},
                  images=lambda: _iter_images(images, order, keys), count=lambda: len(order), table=table,
                  splits=splits, attribute_kinds=attribute_kinds(table), crop="mtcnn")


def _splits_from_file(path: Path, files: pd.Series, images: Path) -> dict[str, str]:
    """Each labelled file's split from a ``<file> <split>`` list or a two-column CSV (values
    0/1/2 or train/val/test), matched on the relative path, else the file name; entries for
    other files are ignored (a partition list of a whole release for part of it)."""
    table = read_file_column(path, "split", allowed=set(SPLIT_FILE_VALUES))
    splits = {}
    for file in files:
        entry = table.get(file) or table.get(file.rsplit("/", 1)[-1])
        if entry is None:
            raise LabelFileError(f"{images / file}: no entry in {path} (the split file names every image)")
        splits[file] = SPLIT_FILE_VALUES[entry[0]]
    return splits


def _read_table(path: Path) -> pd.DataFrame:
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise LabelFileError(f"{path}: not a readable {'TSV' if sep == chr(9) else 'CSV'} file "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'empty'})") from None
    if frame.empty:
        raise LabelFileError(f"{path}: no rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _file_column(frame: pd.DataFrame, path: Path, wanted: str | None) -> str:
    if wanted is not None:
        if wanted not in frame.columns:
            raise LabelFileError(f"{path}: no column {wanted!r} (columns: {', '.join(frame.columns[:8])})")
        return wanted
    found = next((c for c in frame.columns if c.lower() in FILE_COLUMNS), None)
    if found is None:
        raise LabelFileError(f"{path}: no file-name column (one of {', '.join(FILE_COLUMNS)}; or pass --file-column)")
    return found


def _numeric(frame: pd.DataFrame, names: list[str], path: Path, line: dict[int, int]) -> pd.DataFrame:
    values = frame[names].apply(pd.to_numeric, errors="coerce")
    bad = values.isna() | ~values.abs().le(1e30)
    if bad.to_numpy().any():
        i, j = next((i, j) for i, row in bad.iterrows() for j, flag in row.items() if flag)
        raise LabelFileError(f"{path}:{line[i]}: {j} value {frame.loc[i, j]!r} is not a finite number (attribute "
                             "columns hold numbers: -1/1, 0/1 or continuous values)")
    return values.astype(float)


def _iter_images(images: Path, order: list[str], keys: dict[str, tuple[str, int]]) -> Iterator[SourceImage]:
    for file in order:
        yield read_image_file(images / file, *keys[file], file)
