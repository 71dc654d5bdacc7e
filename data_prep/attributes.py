"""Parser for the original ``lfw_attributes.txt`` format (Kumar et al., ICCV 2009).

Format: any number of leading ``#`` comment lines; the header line starts with
``#\\tperson\\timagenum\\t`` and names the attribute columns (names contain spaces);
each data row is ``person<TAB>imagenum<TAB>floats...``. Person names use spaces, while
LFW image folders use underscores; :func:`folder_name` maps one to the other.
"""
from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from attrgan.runtime.errors import UserError

HEADER_PREFIX = "#\tperson\timagenum\t"
# The 73 attribute columns of the original file, in order.
LFW_ATTRIBUTE_NAMES: tuple[str, ...] = (
    'Male', 'Asian', 'White', 'Black', 'Baby', 'Child', 'Youth', 'Middle Aged', 'Senior',
    'Black Hair', 'Blond Hair', 'Brown Hair', 'Bald', 'No Eyewear', 'Eyeglasses', 'Sunglasses',
    'Mustache', 'Smiling', 'Frowning', 'Chubby', 'Blurry', 'Harsh Lighting', 'Flash',
    'Soft Lighting', 'Outdoor', 'Curly Hair', 'Wavy Hair', 'Straight Hair', 'Receding Hairline',
    'Bangs', 'Sideburns', 'Fully Visible Forehead', 'Partially Visible Forehead',
    'Obstructed Forehead', 'Bushy Eyebrows', 'Arched Eyebrows', 'Narrow Eyes', 'Eyes Open',
    'Big Nose', 'Pointy Nose', 'Big Lips', 'Mouth Closed', 'Mouth Slightly Open', 'Mouth Wide Open',
    'Teeth Not Visible', 'No Beard', 'Goatee', 'Round Jaw', 'Double Chin', 'Wearing Hat',
    'Oval Face', 'Square Face', 'Round Face', 'Color Photo', 'Posed Photo', 'Attractive Man',
    'Attractive Woman', 'Indian', 'Gray Hair', 'Bags Under Eyes', 'Heavy Makeup', 'Rosy Cheeks',
    'Shiny Skin', 'Pale Skin', "5 o' Clock Shadow", 'Strong Nose-Mouth Lines', 'Wearing Lipstick',
    'Flushed Face', 'High Cheekbones', 'Brown Eyes', 'Wearing Earrings', 'Wearing Necktie',
    'Wearing Necklace',
)


MAX_IMAGE_NUMBER = 999_999  # LFW numbers a person's photos from 1 with 4 digits; this leaves room, within int64


class AttributeFileError(UserError):
    """A malformed attribute file; the message names the file and line."""


@dataclass(frozen=True)
class AttributeTable:
    """Attribute rows keyed by (person folder name, image number)."""

    names: list[str]
    frame: pd.DataFrame  # columns: person (underscored), imagenum, then `names`

    def values(self) -> np.ndarray:
        """The attribute values as a float32 array ``[rows, len(names)]``."""
        return self.frame[self.names].to_numpy(dtype=np.float32)


def folder_name(person: str) -> str:
    """The LFW folder name of a person name (from the attribute file, a folder or a list), in
    Unicode's composed form (NFC): a folder named in decomposed form (NFD, as some file systems
    and archives store names) still meets its attribute row."""
    return unicodedata.normalize("NFC", person.strip().replace(" ", "_"))


def read_attribute_file(path: str | Path) -> AttributeTable:
    """Parse an ``lfw_attributes.txt`` file; raise :class:`AttributeFileError` on bad input."""
    path = Path(path)
    if not path.is_file():
        raise AttributeFileError(f"{path}: attribute file not found")
    names: list[str] | None = None
    persons: list[str] = []
    imagenums: list[int] = []
    rows: list[list[float]] = []
    seen: dict[tuple[str, int], int] = {}
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise AttributeFileError(f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column "
                                         f"{exc.start + 1}); save the file as UTF-8") from None
            if lineno == 1:
                line = line.removeprefix("\ufeff")  # a byte-order mark, as some editors write
            if not line.strip():
                continue
            if line.startswith("#"):
                if line.startswith(HEADER_PREFIX):
                    if names is not None:
                        raise AttributeFileError(f"{path}:{lineno}: a second header line")
                    names = [n.strip() for n in line[len(HEADER_PREFIX):].split("\t")]
                    if not names or any(not n for n in names) or len(set(names)) != len(names):
                        raise AttributeFileError(f"{path}:{lineno}: empty or repeated attribute names in header")
                elif names is not None:
                    raise AttributeFileError(f"{path}:{lineno}: comment line after the header")
                continue
            if names is None:
                raise AttributeFileError(
                    f"{path}:{lineno}: data row before the '#\\tperson\\timagenum\\t...' header line"
                )
            fields = line.split("\t")
            if len(fields) != 2 + len(names):
                raise AttributeFileError(
                    f"{path}:{lineno}: expected {2 + len(names)} tab-separated fields "
                    f"(person, imagenum, {len(names)} attributes), found {len(fields)}"
                )
            person = folder_name(fields[0])
            if not person:
                raise AttributeFileError(f"{path}:{lineno}: empty person name")
            try:
                imagenum = int(fields[1])
            except ValueError:
                raise AttributeFileError(f"{path}:{lineno}: image number {fields[1]!r} is not an integer") from None
            if not 1 <= imagenum <= MAX_IMAGE_NUMBER:
                raise AttributeFileError(f"{path}:{lineno}: image number {fields[1]} is outside 1..{MAX_IMAGE_NUMBER}")
            try:
                values = [float(v) for v in fields[2:]]
            except ValueError as exc:
                raise AttributeFileError(f"{path}:{lineno}: non-numeric attribute value ({exc})") from None
            if not all(math.isfinite(v) for v in values):
                raise AttributeFileError(f"{path}:{lineno}: attribute value is NaN or infinite")
            key = (person, imagenum)
            if key in seen:
                raise AttributeFileError(
                    f"{path}:{lineno}: duplicate row for {fields[0]} {imagenum} (first on line {seen[key]})"
                )
            seen[key] = lineno
            persons.append(person)
            imagenums.append(imagenum)
            rows.append(values)
    if names is None:
        raise AttributeFileError(f"{path}: no '#\\tperson\\timagenum\\t...' header line")
    frame = pd.DataFrame(np.asarray(rows, dtype=np.float64).reshape(len(rows), len(names)), columns=names)
    frame.insert(0, "imagenum", np.asarray(imagenums, dtype=np.int64))
    frame.insert(0, "person", persons)
    return AttributeTable(names=names, frame=frame)


def write_attribute_file(path: str | Path, table: AttributeTable, comment: str | None = None) -> None:
    """Write ``table`` in the original format (person names with spaces)."""
    lines = []
    if comment:
        lines.append(f"# {comment}")
    lines.append(HEADER_PREFIX + "\t".join(table.names))
    values = table.frame[table.names].to_numpy(dtype=np.float64)
    for person, imagenum, row in zip(table.frame["person"], table.frame["imagenum"], values):
        cells = "\t".join(f"{v:.12g}" for v in row)
        lines.append(f"{person.replace('_', ' ')}\t{int(imagenum)}\t{cells}")
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
