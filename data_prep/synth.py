"""Synthetic LFW: procedural face-like photos with known attributes, in LFW's exact layout
(the same faces in CelebA's layouts: :mod:`data_prep.synth_celeba`).

`attrgan synth-lfw OUT` writes ``OUT/lfw/<Name>/<Name>_NNNN.jpg`` (250x250 RGB JPEG) and
``OUT/lfw_attributes.txt`` in the original format, so every stage runs on it unchanged.
:data:`RENDERED` attributes drive the drawing continuously (through a sigmoid of the raw
value); the other columns are plausible but invisible (correlated with rendered ones or
random per person), as a regressor would find in real data.
"""
from __future__ import annotations

import io
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter

from attrgan.runtime.files import atomic_directory, guard_output
from attrgan.runtime.limits import check_memory, require
from data_prep.attributes import LFW_ATTRIBUTE_NAMES, AttributeTable, write_attribute_file

SYNTH_BYTES_PER_IMAGE = 73 * 8 * 4  # the attribute table in memory (pandas, with copies), per photo

RENDERED = (
    "Male", "Smiling", "Mouth Wide Open", "Eyeglasses", "Blond Hair", "Black Hair",
    "Bald", "Pale Skin", "Mustache", "Wearing Lipstick",
)
# Attributes that vary from photo to photo of one person; the rest are per-person traits.
# a tuple: a set's order follows the per-process hash seed, and it feeds the draws
PER_IMAGE = ("Smiling", "Mouth Wide Open")
# Invisible columns that mirror a rendered one: name -> (source, sign).
MIRRORED = {
    "No Eyewear": ("Eyeglasses", -1), "Mouth Closed": ("Mouth Wide Open", -1),
    "Mouth Slightly Open": ("Mouth Wide Open", 1), "Attractive Woman": ("Male", -1),
    "Attractive Man": ("Male", 1), "Heavy Makeup": ("Wearing Lipstick", 1),
    "Teeth Not Visible": ("Smiling", -1), "Frowning": ("Smiling", -1),
    "5 o' Clock Shadow": ("Male", 1), "No Beard": ("Mustache", -1),
}
CANVAS = 500  # drawn at 2x, then downsampled to 250 for smooth edges
SIZE = 250
JPEG_QUALITY = 92
PARALLEL_FROM = 64  # fewer faces than this render in the calling process (a pool costs more)
FACES_PER_TASK = 16  # faces a worker renders per task


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`write_synthetic_lfw` wrote."""

    people: int
    images: int
    labelled: int
    root: Path


def _strength(value: float) -> float:
    """Map a raw attribute value (about -3..3) to a drawing strength in (0, 1)."""
    return float(1 / (1 + np.exp(-1.2 * value)))


def _mix(a: tuple[float, ...], b: tuple[float, ...], t: float) -> tuple[int, int, int]:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


def sample_attributes(rng: np.random.Generator, people: int, max_images: int) -> pd.DataFrame:
    """Per-image attribute rows for ``people`` synthetic people (1..max_images photos each)."""
    names = list(LFW_ATTRIBUTE_NAMES)
    rows = []
    for p in range(people):
        person = f"Synthetic_Person_{p + 1:04d}"
        trait = rng.normal(0.0, 1.0, len(names))
        trait[names.index("Bald")] -= 1.0  # baldness is rare
        trait[names.index("Mustache")] -= 0.5
        trait[names.index("Eyeglasses")] -= 0.7
        male = trait[names.index("Male")]
        trait[names.index("Wearing Lipstick")] = -1.2 * male + 0.5 * rng.normal()
        trait[names.index("Bald")] += 0.6 * male
        count = int(min(max_images, 1 + rng.geometric(0.45) - 1 + rng.integers(0, 2)))
        for imagenum in range(1, max(1, count) + 1):
            values = trait + 0.15 * rng.normal(0.0, 1.0, len(names))
            for name in PER_IMAGE:
                i = names.index(name)
                values[i] = 0.4 * trait[i] + rng.normal(0.0, 1.0)
            for name, (source, sign) in MIRRORED.items():
                values[names.index(name)] = sign * values[names.index(source)] + 0.3 * rng.normal()
            rows.append([person, imagenum, *values])
    return pd.DataFrame(rows, columns=["person", "imagenum", *names])


def render_face(attributes: dict[str, float], rng: np.random.Generator) -> Image.Image:
    """Draw one 250x250 face-like photo whose look follows :data:`RENDERED` attributes."""
    return render_face_and_landmarks(attributes, rng)[0]


def render_face_and_landmarks(attributes: dict[str, float], rng: np.random.Generator) -> tuple[Image.Image, np.ndarray]:
    """:func:`render_face`'s photo and where its 5 landmarks landed (``[5, 2]`` x, y in pixels of
    the 250x250 photo; the eyes' pupils, the nose's tip, the mouth's corners, in the aligner's
    order), after the pose jitter: the truth a landmark file of these photos holds."""
    a = {name: _strength(attributes[name]) for name in RENDERED}
    img = Image.new("RGB", (CANVAS, CANVAS), _mix((40, 60, 90), (200, 190, 170), rng.random()))
    draw = ImageDraw.Draw(img)
    cx, cy = 250 + rng.normal(0, 4), 255 + rng.normal(0, 4)
    face_w = 74 + 14 * a["Male"] + rng.normal(0, 3)  # half-widths, at 2x
    face_h = 100 + rng.normal(0, 3)
    skin = _mix((150, 100, 70), (250, 228, 212), a["Pale Skin"])
    hair = _hair_colour(a)
    shirt = tuple(int(c) for c in rng.integers(20, 230, 3))
    # shoulders, neck, long hair behind the head (longer for women)
    draw.ellipse([cx - 190, cy + 150, cx + 190, cy + 420], fill=shirt)
    draw.rectangle([cx - 34, cy + 60, cx + 34, cy + 170], fill=_mix(skin, (0, 0, 0), 0.15))
    hair_cover = 1 - a["Bald"]
    if hair_cover > 0.2:
        length = 40 + 150 * (1 - a["Male"]) * hair_cover
        draw.ellipse([cx - face_w - 22, cy - face_h - 20, cx + face_w + 22, cy + length], fill=hair)
    # face, ears
    draw.ellipse([cx - face_w - 12, cy - 25, cx - face_w + 10, cy + 25], fill=skin)
    draw.ellipse([cx + face_w - 10, cy - 25, cx + face_w + 12, cy + 25], fill=skin)
    draw.ellipse([cx - face_w, cy - face_h, cx + face_w, cy + face_h], fill=skin)
    # hair on top: a cap whose height shrinks with baldness
    if hair_cover > 0.05:
        top = cy - face_h - 18
        draw.chord([cx - face_w - 8, top, cx + face_w + 8, top + 2 * (30 + 70 * hair_cover)], 180, 360, fill=hair)
    # eyes and brows
    eye_y, eye_dx = cy - 12, 34 + rng.normal(0, 1.5)
    brow = _mix(hair, (30, 20, 15), 0.5)
    for side in (-1, 1):
        ex = cx + side * eye_dx
        draw.ellipse([ex - 15, eye_y - 8, ex + 15, eye_y + 8], fill=(245, 245, 240))
        draw.ellipse([ex - 7, eye_y - 7, ex + 7, eye_y + 7], fill=(60, 40, 30))
        draw.ellipse([ex - 3, eye_y - 3, ex + 3, eye_y + 3], fill=(10, 10, 10))
        draw.line([ex - 18, eye_y - 20, ex + 18, eye_y - 22 - 3 * side * 0], fill=brow, width=int(4 + 5 * a["Male"]))
    # nose
    shade = _mix(skin, (0, 0, 0), 0.3)
    draw.line([cx, eye_y + 5, cx - 7, cy + 35], fill=shade, width=4)
    draw.line([cx - 9, cy + 37, cx + 9, cy + 37], fill=shade, width=4)
    # mouth: smile bends the corners up, opening shows a dark gap, lipstick reddens the lips
    mouth_y, half = cy + 62, 26 + 10 * a["Smiling"]
    bend = 32 * (a["Smiling"] - 0.35)
    opening = 2 + 26 * a["Mouth Wide Open"]
    lips = _mix(_mix(skin, (120, 50, 50), 0.45), (200, 20, 50), a["Wearing Lipstick"])
    upper = [(cx - half, mouth_y - bend), (cx, mouth_y - 3), (cx + half, mouth_y - bend)]
    lower = [(cx + half, mouth_y - bend), (cx, mouth_y + opening + bend * 0.6), (cx - half, mouth_y - bend)]
    draw.polygon(upper + lower, fill=(50, 15, 20))
    draw.line(upper, fill=lips, width=6, joint="curve")
    draw.line(lower, fill=lips, width=6, joint="curve")
    if a["Mustache"] > 0.15:
        tone = _mix(skin, _mix(hair, (20, 15, 10), 0.5), a["Mustache"])
        draw.polygon([(cx - 30, mouth_y - 6), (cx, mouth_y - 20), (cx + 30, mouth_y - 6),
                      (cx, mouth_y - 12)], fill=tone)
        draw.line([(cx - 32, mouth_y - 8), (cx, mouth_y - 16), (cx + 32, mouth_y - 8)], fill=tone,
                  width=int(4 + 6 * a["Mustache"]))
    if a["Eyeglasses"] > 0.3:
        frame = _mix(skin, (15, 15, 20), a["Eyeglasses"])
        width = int(2 + 6 * a["Eyeglasses"])
        for side in (-1, 1):
            ex = cx + side * eye_dx
            draw.rounded_rectangle([ex - 25, eye_y - 17, ex + 25, eye_y + 17], radius=8, outline=frame, width=width)
        draw.line([cx - eye_dx + 25, eye_y - 4, cx + eye_dx - 25, eye_y - 4], fill=frame, width=width)
    drawn = np.array([[cx - eye_dx, eye_y], [cx + eye_dx, eye_y], [cx - 3, cy + 35],
                      [cx - half, mouth_y - bend], [cx + half, mouth_y - bend]])
    # pose jitter (roll, scale, shift), then 2x downsample, a little blur and noise
    angle, zoom = rng.normal(0, 6), 1 + abs(rng.normal(0, 0.06))  # zoom in only: the crop box stays inside
    shift = tuple(rng.normal(0, 8, 2))
    img = img.rotate(angle, resample=Image.BILINEAR, center=(cx, cy), translate=shift)
    img = img.resize((SIZE, SIZE), Image.LANCZOS, box=_zoom_box(zoom))
    img = img.filter(ImageFilter.GaussianBlur(0.6))
    pixels = np.asarray(img, dtype=np.float32) + rng.normal(0, 4, (SIZE, SIZE, 3))
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8)), _jittered(drawn, (cx, cy), angle, shift, zoom)


def render_jpegs(attribute_rows: list[dict[str, float]], seed: int,
                 crop: tuple[int, int, int, int] | None = None) -> Iterator[tuple[bytes, np.ndarray]]:
    """Each row's face, in order, as JPEG bytes (cut to ``crop``, a PIL box, if given) and its
    landmarks in the 250x250 photo, rendered on every core this process may use and yielded as they
    come (a few tasks' faces held at a time). Face ``i`` draws from its own generator, spawned from
    ``seed`` as child ``i``, so the bytes do not depend on the number of workers."""
    seeds = np.random.SeedSequence(seed).spawn(len(attribute_rows))
    jobs = [(row, child, crop) for row, child in zip(attribute_rows, seeds)]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = min(cores, 8)
    if workers < 2 or len(jobs) < PARALLEL_FROM:
        yield from map(_render_jpeg, jobs)
        return
    # fork starts the workers at once; they run PIL and numpy only, never torch
    context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        pending: deque[Future] = deque()
        for start in range(0, len(jobs), FACES_PER_TASK):
            pending.append(pool.submit(_render_jpegs_of, jobs[start:start + FACES_PER_TASK]))
            if len(pending) > 2 * workers:  # bounded: a few tasks' faces wait in memory, not all of them
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


def _render_jpegs_of(jobs: list[tuple]) -> list[tuple[bytes, np.ndarray]]:
    return [_render_jpeg(job) for job in jobs]


def _render_jpeg(job: tuple[dict[str, float], np.random.SeedSequence, tuple[int, int, int, int] | None]
                 ) -> tuple[bytes, np.ndarray]:
    attributes, seed, crop = job
    photo, points = render_face_and_landmarks(attributes, np.random.default_rng(seed))
    buffer = io.BytesIO()
    (photo.crop(crop) if crop else photo).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), points


def _jittered(points: np.ndarray, centre: tuple[float, float], angle: float, shift: tuple[float, float],
              zoom: float) -> np.ndarray:
    """``points`` (pixel centres of the 2x canvas) moved as render_face moves the drawing: PIL's
    rotation by ``angle`` degrees about ``centre`` (counter-clockwise on screen) and ``shift``, then
    the zoom box resized to SIZE."""
    theta = np.radians(angle)
    d = points - np.asarray(centre)
    rotated = np.stack([d[:, 0] * np.cos(theta) + d[:, 1] * np.sin(theta),
                        -d[:, 0] * np.sin(theta) + d[:, 1] * np.cos(theta)], 1) + np.asarray(centre) + np.asarray(shift)
    left, top, right, _ = _zoom_box(zoom)
    return (rotated + 0.5 - np.array([left, top])) * SIZE / (right - left) - 0.5


def _zoom_box(zoom: float) -> tuple[float, float, float, float]:
    half = CANVAS / 2 / zoom
    return (CANVAS / 2 - half, CANVAS / 2 - half, CANVAS / 2 + half, CANVAS / 2 + half)


def _hair_colour(a: dict[str, float]) -> tuple[int, int, int]:
    weights = np.array([a["Black Hair"], a["Blond Hair"], 0.25]) ** 2
    colours = np.array([(25, 20, 18), (232, 200, 120), (115, 75, 45)], dtype=np.float64)
    return tuple(int(c) for c in (weights[:, None] * colours).sum(0) / weights.sum())  # type: ignore[return-value]


def write_synthetic_lfw(
    out: str | Path, people: int = 120, max_images: int = 6, seed: int = 0, unlabelled_fraction: float = 0.03,
    force: bool = False,
) -> SynthSummary:
    """Write a synthetic LFW (images + ``lfw_attributes.txt``) as the folder ``out``, atomically:
    an existing ``out`` is replaced only with ``force``, and only once the new one is complete.

    A ``unlabelled_fraction`` of the images get no attribute row, as 90 real LFW images have none.
    """
    out = Path(out)
    guard_output(out, [], force)
    require("--people", people, 1)
    require("--max-images", max_images, 1, 9999)  # LFW's 4-digit image numbers
    require("--unlabelled-fraction", unlabelled_fraction, 0, 1)
    check_memory(people * max_images * SYNTH_BYTES_PER_IMAGE, f"{people * max_images:,} synthetic photos' attributes")
    rng = np.random.default_rng(seed)
    frame = sample_attributes(rng, people, max_images)
    rows = [dict(zip(LFW_ATTRIBUTE_NAMES, row[2:])) for row in frame.itertuples(index=False)]
    faces_seed = int(rng.integers(2**63))
    with atomic_directory(out, force=force) as tmp:
        faces = render_jpegs(rows, seed=faces_seed)
        for (person, imagenum), (jpeg, _) in zip(zip(frame["person"], frame["imagenum"]), faces):
            folder = tmp / "lfw" / person
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{person}_{imagenum:04d}.jpg").write_bytes(jpeg)
        labelled = rng.random(len(frame)) >= unlabelled_fraction
        table = AttributeTable(names=list(LFW_ATTRIBUTE_NAMES), frame=frame[labelled].reset_index(drop=True))
        write_attribute_file(tmp / "lfw_attributes.txt", table,
                             comment=f"synthetic LFW attributes written by attrgan synth-lfw (seed {seed})")
    return SynthSummary(people=people, images=len(frame), labelled=int(labelled.sum()), root=out)
