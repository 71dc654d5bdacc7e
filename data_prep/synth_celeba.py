"""Synthetic CelebA: synth-lfw's faces under CelebA's attribute names, written byte for byte in
the release's formats and in each layout users have (:mod:`data_prep.celeba_layout`).

The release's text files end lines with CRLF; ``list_attr_celeba.txt``'s line 2 ends with a
space after ``Young`` (torchvision's reader then sees a 41st, empty name); values are padded to
width 2 (``000001.jpg -1  1``); ``list_landmarks_align_celeba.txt`` pads its first value to 2
and the rest to 5, ``list_bbox_celeba.txt`` its first to 6 and the rest to 4. Kaggle's copy
has CSV files with an ``image_id`` column (LF) and no identity file. The bounding boxes, which
CelebA gives in its in-the-wild photos, are here the aligned frame's place in the synthetic
photo it was cut from; the landmarks are where the drawn pupils, nose tip and mouth corners
fell after the pose jitter, rounded to whole pixels as released.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from attrgan.runtime.errors import UserError
from attrgan.runtime.files import atomic_directory, guard_output
from attrgan.runtime.limits import require
from data_prep.align import CELEBA_SIZE
from data_prep.attributes import LFW_ATTRIBUTE_NAMES
from data_prep.celeba import CELEBA_ATTRIBUTES, IMAGES_DIR
from data_prep.celeba_layout import LAYOUTS
from data_prep.synth import SynthSummary, render_jpegs, sample_attributes

# CelebA's names of the attributes the synthetic faces render; the other 30 columns are random.
CELEBA_RENDERED = {
    "Male": "Male", "Smiling": "Smiling", "Eyeglasses": "Eyeglasses", "Blond_Hair": "Blond Hair",
    "Black_Hair": "Black Hair", "Bald": "Bald", "Pale_Skin": "Pale Skin", "Mustache": "Mustache",
    "Wearing_Lipstick": "Wearing Lipstick", "Mouth_Slightly_Open": "Mouth Wide Open",
}
LFW_CROP_CORNER = (35, 10)  # where a 178x218 CelebA frame sits in a 250x250 synthetic LFW photo (face box on CelebA's)
LANDMARK_COLUMNS = ("lefteye_x", "lefteye_y", "righteye_x", "righteye_y", "nose_x", "nose_y",
                    "leftmouth_x", "leftmouth_y", "rightmouth_x", "rightmouth_y")
BBOX_COLUMNS = ("x_1", "y_1", "width", "height")
LAYOUT_NAMES = tuple(layout.name for layout in LAYOUTS)
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # a fixed member time: the same seed writes the same zip bytes


def write_synthetic_celeba(out: str | Path, images: int = 200, seed: int = 0, zip_images: bool = False,
                           force: bool = False, layout: str = "flat") -> SynthSummary:
    """Write a synthetic CelebA in ``layout`` (flat, drive, torchvision or kaggle) as the folder
    ``out``, atomically: the 178x218 images (``zip_images``: as ``img_align_celeba.zip``; the
    torchvision layout has both, as its download leaves them), the attribute list (-1/1), the
    identity-disjoint partition (0/1/2), the identities (not in Kaggle's copy), the aligned
    landmarks and the boxes, each in the release's bytes (or Kaggle's CSV)."""
    out = Path(out)
    if layout not in LAYOUT_NAMES:
        raise UserError(f"--layout must be one of {', '.join(LAYOUT_NAMES)}, got {layout!r}")
    if zip_images and layout == "kaggle":
        raise UserError("--zip does not apply to --layout kaggle (Kaggle's copy ships the images as a folder)")
    guard_output(out, [], force)
    require("--images", images, 1, 999_999)
    rng = np.random.default_rng(seed)
    frame = sample_attributes(rng, people=images, max_images=4)[:images]  # people with 1..4 photos
    people = {person: i + 1 for i, person in enumerate(dict.fromkeys(frame["person"]))}
    partition = {person: int(rng.choice(3, p=(0.8, 0.1, 0.1))) for person in people}
    x0, y0 = LFW_CROP_CORNER
    faces, rows = {}, {"attributes": [], "partition": [], "identity": [], "landmarks": [], "bbox": []}
    values_of = [dict(zip(LFW_ATTRIBUTE_NAMES, row[2:])) for row in frame.itertuples(index=False)]
    crop = (x0, y0, x0 + CELEBA_SIZE[0], y0 + CELEBA_SIZE[1])
    rendered = render_jpegs(values_of, seed=int(rng.integers(2**63)), crop=crop)
    for number, (person, values, (jpeg, points)) in enumerate(zip(frame["person"], values_of, rendered), start=1):
        file = f"{number:06d}.jpg"
        faces[file] = jpeg
        signs = [(1 if values[CELEBA_RENDERED[name]] > 0 else -1) if name in CELEBA_RENDERED
                 else int(rng.choice((-1, 1))) for name in CELEBA_ATTRIBUTES]
        rows["attributes"].append((file, signs))
        rows["partition"].append((file, [partition[person]]))
        rows["identity"].append((file, [people[person]]))
        rows["landmarks"].append((file, [int(v) for v in np.round(points - (x0, y0)).ravel()]))  # where they fell
        rows["bbox"].append((file, [x0, y0, *CELEBA_SIZE]))
    paths = _layout_paths(layout)
    with atomic_directory(out, force=force) as tmp:
        for role, relative in paths.items():
            if role != "images":
                (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
                (tmp / relative).write_bytes(_text_file(role, rows[role], csv=relative.endswith(".csv")))
        folder = tmp / paths["images"]
        if not zip_images or layout == "torchvision":
            folder.mkdir(parents=True)
            for file, data in faces.items():
                (folder / file).write_bytes(data)
        if zip_images or layout == "torchvision":
            folder.parent.mkdir(parents=True, exist_ok=True)
            _write_zip(folder.parent / f"{IMAGES_DIR}.zip", faces)
    return SynthSummary(people=len(people), images=len(frame), labelled=len(frame), root=out)


def _layout_paths(layout: str) -> dict[str, str]:
    """Each role's path in ``layout``: its first candidate (the image folder; the zip sits beside it)."""
    candidates = next(item for item in LAYOUTS if item.name == layout).candidates
    paths = {role: names[0] for role, names in candidates.items()}
    if layout == "kaggle":
        del paths["identity"]  # Kaggle's copy has no identity file
    return paths


def _text_file(role: str, rows: list[tuple[str, list[int]]], csv: bool) -> bytes:
    """One of the release's text files (CRLF, its padding) or Kaggle's CSV of it (LF)."""
    columns = {"attributes": CELEBA_ATTRIBUTES, "partition": ("partition",), "identity": ("identity",),
               "landmarks": LANDMARK_COLUMNS, "bbox": BBOX_COLUMNS}[role]
    if csv:
        lines = [",".join(("image_id", *columns))] + [",".join((file, *map(str, values))) for file, values in rows]
        return ("\n".join(lines) + "\n").encode()
    header = {"attributes": [str(len(rows)), " ".join(columns) + " "],  # the release's trailing space
              "landmarks": [str(len(rows)), " ".join(columns)],
              "bbox": [str(len(rows)), " ".join(("image_id", *columns))]}.get(role, [])
    line = {"attributes": lambda v: "".join(f" {x:2d}" for x in v),
            "landmarks": lambda v: f" {v[0]:2d}" + "".join(f"{x:5d}" for x in v[1:]),
            "bbox": lambda v: f"{v[0]:6d}" + "".join(f"{x:4d}" for x in v[1:])}.get(role, lambda v: f" {v[0]}")
    return ("\r\n".join(header + [file + line(values) for file, values in rows]) + "\r\n").encode()


def _write_zip(path: Path, faces: dict[str, bytes]) -> None:
    """``img_align_celeba.zip`` as released: the images under ``img_align_celeba/``, stored."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for file, data in faces.items():
            archive.writestr(zipfile.ZipInfo(f"{IMAGES_DIR}/{file}", date_time=ZIP_TIME), data)
