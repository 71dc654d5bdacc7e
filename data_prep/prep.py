"""`prep-lfw`: LFW (tgz or folder) + attribute file -> aligned dataset directory.

Writes ``images.npy`` (uint8 [N, 3, S, S]), ``index.csv`` and ``manifest.json`` as in
the design's dataset contract, atomically.
"""
from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from attrgan.runtime.errors import UserError
from attrgan.runtime.files import atomic_directory, guard_output, write_json
from attrgan.runtime.limits import check_disk, check_memory, release_freed_memory, require
from attrgan.runtime.lock import sole_writer
from attrgan.runtime.progress import progress_bar
from data_prep.align import (
    CELEBA_BOX,
    DEFAULT_MIN_FACE_FRACTION,
    FALLBACK_CROP_FRACTION,
    TEMPLATE,
    AlignedBatch,
    BoxCropper,
    FaceAligner,
    LandmarkAligner,
)
from data_prep.attributes import LFW_ATTRIBUTE_NAMES, AttributeTable, folder_name
from data_prep.decode import decode_image
from data_prep.sources import Source, SourceImage, lfw_source, sha256_of
from data_prep.split import SPLITS, check_fractions, split_by_identity

FORMAT_VERSION = 1
LANDMARK_ORDER = ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"]  # as seen in the image


@dataclass
class PrepConfig:
    """Options of :func:`prepare_dataset` (the `prep-lfw` flags)."""

    images: Path | None
    out: Path
    attributes: Path | None = None
    source: Source | None = None  # any reader's Source (CelebA, a folder); None: LFW from images and attributes
    crop: str | None = None  # mtcnn | celeba | landmarks | none (None: the source's default)
    test_people_file: Path | None = None  # read by the caller into test_people; an input the output may not overlap
    size: int = 64
    device: str = "cpu"
    batch_size: int = 64
    seed: int = 0
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    test_people: list[str] = field(default_factory=list)
    limit: int | None = None
    labelled_only: bool = False
    force: bool = False
    min_face_fraction: float = DEFAULT_MIN_FACE_FRACTION


@dataclass
class _Decoded:
    image: SourceImage
    pixels: np.ndarray | None  # uint8 [H, W, 3], None when unreadable
    error: str | None = None


def read_test_people(path: str | Path) -> list[str]:
    """Folder names (spaces become underscores) from a file with one person per line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: --test-people file not found")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [folder_name(line) for line in lines if line.strip() and not line.startswith("#")]


def _decode(image: SourceImage) -> _Decoded:
    """The image's pixels, or why it is unreadable: a file the OS refused, or any decoder failure
    (one unreadable file, never a fatal error)."""
    if image.error is not None:
        return _Decoded(image, None, image.error)
    try:
        return _Decoded(image, decode_image(image.data))
    except Exception as exc:  # noqa: BLE001 - whatever the decoder raises, the file is listed as unreadable
        return _Decoded(image, None, f"{type(exc).__name__}: {exc}")


def _decoded_batches(images: Source, config: PrepConfig,
                     keep: Callable[[SourceImage], bool]) -> Iterator[list[_Decoded]]:
    """Batches of decoded images; decoding of the next batch overlaps alignment of this one."""
    source = iter(images.images())
    taken = 0

    def next_batch() -> list[_Decoded]:
        nonlocal taken
        batch: list[_Decoded] = []
        for image in source:
            if config.limit is not None and taken >= config.limit:
                break
            if not keep(image):
                continue
            taken += 1
            batch.append(_decode(image))
            if len(batch) == config.batch_size:
                break
        return batch

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(next_batch)
        while batch := pending.result():
            pending = pool.submit(next_batch)
            yield batch


def prepare_dataset(config: PrepConfig, progress: bool = True) -> dict:
    """Run the alignment stage on ``config.source`` (LFW by default); return the manifest that was written.

    The one writer of every source: decode, align or crop, split, ``images.npy``, ``index.csv``,
    ``manifest.json``, the atomic rename and the output guard."""
    started = time.perf_counter()
    source = config.source or lfw_source(config.images, config.attributes)
    guard_output(config.out, [*source.inputs.values(), *source.roots, config.test_people_file], config.force)
    check_prep_options(config)
    check_fractions(config.fractions)  # before the long alignment pass, not after it
    with sole_writer(config.out):
        return _prepare(config, source, progress, started)


def _prepare(config: PrepConfig, source: Source, progress: bool, started: float) -> dict:
    """The work of :func:`prepare_dataset`, its output guarded, its options checked, and locked."""
    if source.splits is not None and config.test_people:
        raise UserError(f"{source.kind} fixes its own split; --test-people applies to seeded splits only")
    table = source.table
    names = table.names if table else list(LFW_ATTRIBUTE_NAMES)
    labels = _label_lookup(table)
    if config.labelled_only and table is None:
        raise UserError("--labelled-only needs --attributes")
    keep = (lambda im: (im.person, im.imagenum) in labels) if config.labelled_only else (lambda im: True)
    crop = config.crop or source.crop
    align = _crop_function(crop, config, source)
    # one listing pass up front (seconds; an archive is read to its end, so a truncated one fails
    # here, not after the alignment pass): the progress total and the disk check
    total = source.count()
    if config.limit is not None:
        total = min(total, config.limit)
    check_disk(2 * total * 3 * config.size**2, Path(config.out).parent, f"{total} crops at --size {config.size}")

    with atomic_directory(config.out, force=config.force) as tmp:
        rows: list[dict] = []
        unreadable: list[dict] = []
        raw_path = tmp / "images.raw"
        with raw_path.open("wb") as raw, _progress(total, progress, f"prep-{source.kind}") as bar:
            for batch in _decoded_batches(source, config, keep):
                good = [d for d in batch if d.pixels is not None]
                unreadable += [{"source": d.image.source, "error": d.error} for d in batch if d.pixels is None]
                if good:
                    aligned = align(good)
                    raw.write(np.ascontiguousarray(aligned.crops).tobytes())
                    rows += [_index_row(d.image, ok) for d, ok in zip(good, aligned.aligned)]
                release_freed_memory()
                bar.update(len(batch))
                bar.set_postfix(aligned=sum(r["aligned"] for r in rows), unreadable=len(unreadable))
        if not rows:
            raise UserError(f"{source.inputs['images']}: no readable images found")
        index = _join_attributes(pd.DataFrame(rows), names, table)
        if source.splits is not None:
            index["split"] = [source.splits[(p, int(n))] for p, n in zip(index["person"], index["imagenum"])]
        else:
            index["split"] = split_by_identity(
                index["person"], index["labelled"], config.fractions, config.seed, config.test_people
            )
        index = index[["person", "imagenum", "source", "split", "aligned", "labelled", *names]]
        _write_images(tmp / "images.npy", raw_path, len(index), config.size)
        index.to_csv(tmp / "index.csv", index=False)
        wall = time.perf_counter() - started
        manifest = _manifest(config, source, crop, index, names, labels, unreadable, wall)
        write_json(tmp / "manifest.json", manifest)
    return manifest


def _crop_function(crop: str, config: PrepConfig, source: Source) -> Callable[[list[_Decoded]], AlignedBatch]:
    """The crop of decoded images: MTCNN's landmarks, the source's own landmarks, or a fixed box."""
    if crop == "landmarks":
        if source.landmarks is None:
            raise UserError(f"--align landmarks needs landmarks, which a {source.kind} source does not give")
        aligner = LandmarkAligner(config.size)
        return lambda good: aligner.align_images([d.pixels for d in good],
                                                 [source.landmarks[(d.image.person, d.image.imagenum)] for d in good])
    boxed = FaceAligner(config.size, device=config.device, min_face_fraction=config.min_face_fraction) \
        if crop == "mtcnn" else BoxCropper(config.size, crop)
    return lambda good: boxed.align_images([d.pixels for d in good])


ALIGN_BYTES_PER_CROP_VALUE = 64  # an estimate for the float32 supersampled warp and its sampling grid, per crop value


def check_prep_options(config: PrepConfig) -> None:
    """Refuse sizes and counts no run could use, or a batch this machine cannot hold."""
    require("--size", config.size, 8)
    require("--batch-size", config.batch_size, 1)
    require("--limit", config.limit, 1)
    require("--min-face", config.min_face_fraction, 0, 1, open_low=True)
    check_memory(config.batch_size * 3 * config.size**2 * ALIGN_BYTES_PER_CROP_VALUE,
                 f"aligning batches of {config.batch_size} crops at --size {config.size}")


def _label_lookup(table: AttributeTable | None) -> dict[tuple[str, int], int]:
    if table is None:
        return {}
    return {(p, int(n)): i for i, (p, n) in enumerate(zip(table.frame["person"], table.frame["imagenum"]))}


def _index_row(image: SourceImage, aligned: bool) -> dict:
    return {"person": image.person, "imagenum": image.imagenum, "source": image.source, "aligned": bool(aligned)}


def _join_attributes(index: pd.DataFrame, names: list[str], table: AttributeTable | None) -> pd.DataFrame:
    """Left-join attribute rows onto images by (person, imagenum); no row -> NaN, labelled=False."""
    if table is None:
        labelled = pd.DataFrame(np.nan, index=index.index, columns=names)
        return pd.concat([index.assign(labelled=False), labelled], axis=1)
    joined = index.merge(table.frame, on=["person", "imagenum"], how="left", validate="many_to_one")
    joined["labelled"] = joined[names].notna().all(axis=1)
    return joined


def _write_images(path: Path, raw_path: Path, count: int, size: int) -> None:
    """Turn the raw crop stream into an ``.npy`` file by streaming copy (no memory map, so
    the written pages never count against this process's memory)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
              "shape": (count, 3, size, size)}
    if raw_path.stat().st_size != count * 3 * size * size:
        raise RuntimeError(f"{raw_path}: crop stream has {raw_path.stat().st_size} bytes, expected {count} crops")
    with path.open("wb") as out, raw_path.open("rb") as raw:
        np.lib.format.write_array_header_1_0(out, header)
        shutil.copyfileobj(raw, out, length=1 << 22)
    raw_path.unlink()


def _manifest(
    config: PrepConfig,
    source: Source,
    crop: str,
    index: pd.DataFrame,
    names: list[str],
    labels: dict[tuple[str, int], int],
    unreadable: list[dict],
    wall: float,
) -> dict:
    found = set(zip(index["person"], index["imagenum"].astype(int)))
    read = len(index) + len(unreadable)
    per_split = {
        split: {
            "images": int((index["split"] == split).sum()),
            "labelled": int(((index["split"] == split) & index["labelled"]).sum()),
            "people": int(index.loc[index["split"] == split, "person"].nunique()),
        }
        for split in SPLITS
    }
    return {
        "format_version": FORMAT_VERSION,
        "package_version": package_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": source.kind,
        **({"source_details": source.details} if source.details else {}),
        "inputs": {name: None if path is None else {"path": str(Path(path).resolve()), "sha256": sha256_of(path)}
                   for name, path in source.inputs.items()},
        "size": config.size,
        "alignment": _crop_record(crop, config),
        "split": {"from": "source", "kinds": SPLITS} if source.splits is not None else {
            "from": "seed",
            "seed": config.seed,
            "fractions": dict(zip(SPLITS, config.fractions)),
            "test_people": list(config.test_people),
        },
        "attribute_names": names,
        "attribute_kinds": source.attribute_kinds or {name: "continuous" for name in names},
        "options": {"limit": config.limit, "labelled_only": config.labelled_only, "device": config.device},
        "counts": {
            "read": read,
            "images": len(index),
            "aligned": int(index["aligned"].sum()),
            "fallback": int((~index["aligned"]).sum()),
            "unreadable": len(unreadable),
            "labelled": int(index["labelled"].sum()),
            "unlabelled": int((~index["labelled"]).sum()),
            "attribute_rows": len(labels),
            "attribute_rows_without_image": sum(1 for key in labels if key not in found),
            "people": int(index["person"].nunique()),
            "per_split": per_split,
        },
        "unreadable": unreadable,
        "wall_time_s": round(wall, 3),
        "images_per_s": round(read / wall, 2) if wall > 0 else None,
    }


def _crop_record(crop: str, config: PrepConfig) -> dict:
    """How the crops were made, for the manifest."""
    if crop == "celeba":
        return {"method": "celeba", "box": dict(zip(("left", "top", "side"), CELEBA_BOX)),
                "reference": "andersbll/autoencoding_beyond_pixels, dataset/celeba.py (bbox 40:188, 15:163 of 218x178)"}
    if crop == "none":
        return {"method": "none", "box": "the centred square of each image, resized"}
    if crop == "landmarks":
        return {"method": "landmarks", "landmarks": "the source's 5 points (list_landmarks_align_celeba)",
                "template": TEMPLATE.tolist(), "template_order": LANDMARK_ORDER,
                "template_units": "fraction of the crop side, (x, y), origin top-left"}
    return {
        "method": "mtcnn",
        "detector": "facenet-pytorch MTCNN, 5 landmarks",
        "min_face_fraction": config.min_face_fraction,
        "template": TEMPLATE.tolist(),
        "template_order": LANDMARK_ORDER,
        "template_units": "fraction of the crop side, (x, y), origin top-left",
        "fallback": f"centre crop of {FALLBACK_CROP_FRACTION:.2f} x the shorter side (150 of 250 px)",
    }


def package_version() -> str:
    """The installed attrgan version (``unknown`` when run from a source tree)."""
    try:
        return version("attrgan")
    except PackageNotFoundError:
        return "unknown"


def _progress(total: int | None, enabled: bool, desc: str):
    return progress_bar(enabled, total=total, unit="img", desc=desc)


def format_prep_summary(out: Path, manifest: dict) -> str:
    """The one-screen summary printed at the end of prep-lfw, prep-celeba and prep-folder."""
    c = manifest["counts"]
    lines = [
        f"dataset written to {out}",
        f"  images      {c['images']} of {c['read']} read ({c['people']} people), "
        f"{manifest['size']}x{manifest['size']}",
        f"  aligned     {c['aligned']} ({c['aligned'] / max(1, c['images']):.1%}); fallback centre crop {c['fallback']}"
        if manifest["alignment"].get("method", "mtcnn") == "mtcnn" else
        "  crop        landmarks (the source's 5 points warped onto prep-lfw's template, no detector)"
        if manifest["alignment"]["method"] == "landmarks" else
        f"  crop        {manifest['alignment']['method']} (the same box for every image, no detector)",
        f"  unreadable  {c['unreadable']}" + (" (listed in manifest.json)" if c["unreadable"] else ""),
        f"  labelled    {c['labelled']}; attribute rows without an image: {c['attribute_rows_without_image']}",
    ]
    subset = manifest.get("source_details", {}).get("subset")
    if subset:
        lines.append(f"  subset      {subset['present']:,} of {subset['listed']:,} listed images present (--subset)")
    split = manifest["split"]
    lines.append("  split       the source's own, kept as given" if split["from"] == "source" else
                 f"  split       seeded (--seed {split['seed']}, fractions "
                 f"{'/'.join(f'{v:g}' for v in split['fractions'].values())}, by identity): the source gives none")
    for name, s in c["per_split"].items():
        lines.append(f"  {name:<5}       {s['images']} images, {s['labelled']} labelled, {s['people']} people")
    lines.append(f"  time        {manifest['wall_time_s']:.1f} s ({manifest['images_per_s']} img/s)")
    if manifest["split"]["from"] == "seed" and c["people"] == c["images"] > 1:
        lines.append("  note        every image counts as its own person, so photos of one person can land in "
                     "train and test;\n              name them in an identity column (prep-folder) or "
                     "identity_CelebA.txt (prep-celeba)")
    return "\n".join(lines)
