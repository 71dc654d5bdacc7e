"""Visual attribute vectors and editing (the paper's latent arithmetic), interpolation,
and user photos: aligned with the same aligner as prep-lfw."""
from __future__ import annotations

import difflib
import math
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from attrgan.checkpoint import save_torch_file
from attrgan.data.dataset import Dataset, ImageRows, binary_midpoint
from attrgan.nets.loaded import ConditionalModel
from attrgan.runtime.errors import UserError
from attrgan.runtime.files import atomic_file
from attrgan.runtime.limits import require
from data_prep.align import FaceAligner
from data_prep.decode import ImageTooLargeError, decode_image


class ImageInputError(UserError):
    """An input photo that cannot be read or holds no face."""


def read_photo(path: str | Path) -> np.ndarray:
    """A photo (jpg/png, any size) as uint8 RGB ``[H, W, 3]``; a clear error if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ImageInputError(f"{path}: no such image file")
    try:
        return decode_photo(path.read_bytes(), str(path))
    except ImageTooLargeError as exc:  # among several photos: listed and skipped like any unreadable one
        raise ImageInputError(f"{path}: not a readable image (ImageTooLargeError: {exc})") from None


def decode_photo(data: bytes, name: str) -> np.ndarray:
    """Photo bytes as uint8 RGB ``[H, W, 3]``; ImageInputError naming ``name`` if they cannot be
    decoded (ImageTooLargeError, a ValueError, passes through for callers that answer it apart)."""
    try:
        return decode_image(data)
    except ImageTooLargeError:
        raise
    except Exception as exc:  # any decoder failure: one clear message
        detail = "not a format Pillow reads" if isinstance(exc, UnidentifiedImageError) else exc
        raise ImageInputError(f"{name}: not a readable image ({type(exc).__name__}: {detail})") from None


def photo_aligner(size: int, device: str = "auto") -> FaceAligner:
    """prep-lfw's aligner for users' photos, which may show a smaller face (from 10% of the image)."""
    return FaceAligner(size, device=device, min_face_fraction=0.1)


def align_face(aligner: FaceAligner, pixels: np.ndarray) -> tuple[torch.Tensor, bool]:
    """The uint8 crop ``[3, S, S]`` of the face in ``pixels`` and whether one was found (else the fallback crop)."""
    result = aligner.align_images([pixels])
    return torch.from_numpy(np.ascontiguousarray(result.crops[0])), bool(result.aligned[0])


def align_photos(paths: list[Path], size: int, device: str = "auto", require_face: bool = True):
    """Aligned uint8 crops ``[N, 3, size, size]`` of the photos that hold a face, and the
    list of (path, message) for those skipped."""
    aligner = photo_aligner(size, device)
    crops, kept, skipped = [], [], []
    for path in paths:
        try:
            crop, found = align_face(aligner, read_photo(path))
        except ImageInputError as exc:
            skipped.append((path, str(exc)))
            continue
        if require_face and not found:
            skipped.append((path, f"{path}: no face found; skipped"))
            continue
        crops.append(crop)
        kept.append(path)
    stacked = torch.stack(crops) if crops else torch.zeros(0, 3, size, size, dtype=torch.uint8)
    return stacked, kept, skipped


def attribute_row(model: ConditionalModel, settings: dict[str, float] | None = None,
                  base: np.ndarray | None = None) -> np.ndarray:
    """One raw attribute vector: ``base`` (default: the training mean) with ``settings``
    (attribute name -> value in standard deviations from the training mean) applied."""
    row = (model.scaler.mean if base is None else base).astype(np.float64)
    for name, value in (settings or {}).items():
        i = attribute_index(model, name)
        row[i] = float(model.scaler.mean[i]) + value * float(model.scaler.std[i])
        if not abs(row[i]) <= np.finfo(np.float32).max:
            raise UserError(f"{name}={value:g} standard deviations overflows the attribute's value; use a smaller one")
    return row.astype(np.float32)


PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def parse_attribute_settings(items: list[str], option: str = "--set") -> dict[str, float]:
    """``Name=value`` items (value: standard deviations from the training mean) -> {name: value};
    a malformed, non-finite or repeated item is refused with one message naming ``option``."""
    settings: dict[str, float] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        value = float(text) if PLAIN_NUMBER.fullmatch(text.strip()) else math.nan  # not float(): it reads 1_0 as 10
        if not sep or not name or not math.isfinite(value):
            raise UserError(f"{option} {item!r}: expected Name=value with a finite number of standard deviations, "
                             f"e.g. {option} Smiling=2")
        if name in settings:
            raise UserError(f"{option} {name!r} given twice")
        settings[name] = value
    return settings


def photos_with_attributes(model: ConditionalModel, paths: list[Path], regressor=None):
    """Aligned crops of the photos that hold a face, their raw attribute rows (regressed by
    ``regressor``, a LoadedRegressor, else the training mean), the kept paths and the
    (path, message) pairs skipped. No face in any photo is an error."""
    crops, kept, skipped = align_photos(list(paths), model.image_size, device=str(model.device))
    if not kept:
        raise ImageInputError("none of the given images holds a face that could be aligned"
                              + "".join(f"\n  {message}" for _, message in skipped))
    if regressor is not None and model.attribute_names:  # an unconditional model has no y to estimate
        regressor.check_fits(model.attribute_names, model.image_size, "the model")
    raw, _ = estimate_attributes(model, crops, regressor)
    return crops, raw, kept, skipped


def estimate_attributes(model: ConditionalModel, crops: torch.Tensor, regressor=None) -> tuple[np.ndarray, str]:
    """Raw attribute rows of aligned uint8 crops for ``model``, and where they came from: the
    regressor's estimate, the training mean (no regressor) or none (an unconditional model)."""
    if not model.attribute_names:
        return np.zeros((len(crops), 0), np.float32), "none (an unconditional model)"
    if regressor is None:
        return np.repeat(model.scaler.mean[None], len(crops), 0).astype(np.float32), "training mean"
    raw, _ = regressor.predict_raw(crops, model.device)
    return raw.astype(np.float32), "regressor"


def attribute_index(model: ConditionalModel, name: str) -> int:
    if not model.attribute_names:
        raise UserError(f"an unconditional model has no attribute {name!r} to set; edit it with attribute vectors "
                       "(attribute-vectors, then --mode latent)")
    if name not in model.attribute_names:
        raise UserError(f"unknown attribute {name!r}{did_you_mean(name, model.attribute_names)}; this model knows: "
                       f"{', '.join(model.attribute_names[:8])}, ...")
    return model.attribute_names.index(name)


def did_you_mean(name: str, known: list[str]) -> str:
    """`` (did you mean 'Smiling'?)`` for a name close to a known one (a typo, or CelebA's
    ``Blond_Hair`` for LFW's ``Blond Hair``), else an empty string."""
    folded = {k.lower().replace("_", " "): k for k in known}
    close = difflib.get_close_matches(name.lower().replace("_", " "), list(folded), n=1, cutoff=0.75)
    return f" (did you mean {folded[close[0]]!r}?)" if close else ""


def check_edit(model: ConditionalModel, attribute: str, mode: str, vectors: dict[str, torch.Tensor] | None) -> None:
    """Refuse an edit that cannot be made, before any photo is aligned or encoded: an unknown
    mode, an attribute the model is not conditioned on (``condition``), or no vector for it (``latent``)."""
    if mode not in ("latent", "condition"):
        raise UserError(f"--mode must be latent or condition, got {mode!r}")
    if mode == "latent" and vectors is None:
        raise UserError("--mode latent adds an attribute vector to the code: give --vectors FILE (written by "
                         "`attrgan attribute-vectors`), or edit the condition with --mode condition")
    check_attribute(model, attribute, latent=mode == "latent", vectors=vectors)


def check_attribute(model: ConditionalModel, name: str, latent: bool, vectors: dict[str, torch.Tensor] | None) -> None:
    """Refuse (KeyError, one message) an attribute an edit cannot move: in the latent mode one
    without a vector, in the condition mode one the model is not conditioned on."""
    if latent:
        if vectors and name in vectors:
            return
        if name in model.attribute_names:
            raise UserError(f"no attribute vector for {name!r}; compute them with `attrgan attribute-vectors`, "
                           "or edit it as a condition")
        known = list(vectors or {})
        raise UserError(f"no attribute vector for {name!r}{did_you_mean(name, known)} in the vectors file; it has: "
                       f"{', '.join(known[:8])}{', ...' if len(known) > 8 else ''}")
    if name not in model.attribute_names and vectors and name in vectors:
        raise UserError(f"{name!r} is not a condition of this model; edit it with its attribute vector (latent mode)")
    attribute_index(model, name)


def shift_codes(codes: torch.Tensor, vectors: dict[str, torch.Tensor], strengths: dict[str, float]) -> torch.Tensor:
    """The paper's latent edit: ``codes + sum of strength * vector`` over ``strengths`` (attribute -> multiple)."""
    shifted = codes.clone()
    for name, strength in strengths.items():
        shifted += strength * vectors[name].to(shifted.device)
    return shifted


def compute_attribute_vectors(model: ConditionalModel, dataset: Dataset, present: float = 1.0, absent: float = -1.0,
                              split: str = "train", minimum: int = 3) -> dict[str, torch.Tensor]:
    """Per attribute: the mean encoder code of images where it is clearly present (raw value
    > ``present``) minus where it is clearly absent (< ``absent``), as in the paper. Binary
    attributes (-1/1 or 0/1, as the dataset's manifest records them) split at their midpoint.
    A conditional model gets vectors of the attributes it conditions on; an unconditional one,
    of every attribute of the dataset (the paper's CelebA experiment)."""
    if not present >= absent:
        raise UserError(f"--present ({present:g}) must not be below --absent ({absent:g}): a face cannot count "
                         "as both clearly present and clearly absent")
    rows = dataset.rows(split)
    names = model.attribute_names or dataset.attribute_names
    labels = dataset.attributes(rows, names)
    raw = labels if model.attribute_names else labels[:, :0]  # the condition: the model's own attributes
    images = ImageRows(dataset, rows, model.image_size)
    codes = model.encode(images, raw).cpu()
    kinds = dataset.manifest.get("attribute_kinds", {})
    vectors = {}
    for j, name in enumerate(names):
        if kinds.get(name) == "binary":
            middle = binary_midpoint(labels[:, j])
            on, off = labels[:, j] > middle, labels[:, j] < middle
        else:
            on, off = labels[:, j] > present, labels[:, j] < absent
        if on.sum() >= minimum and off.sum() >= minimum:
            vectors[name] = codes[torch.from_numpy(on)].mean(0) - codes[torch.from_numpy(off)].mean(0)
    return vectors


def save_attribute_vectors(vectors: dict[str, torch.Tensor], path: str | Path, source: str) -> None:
    """Write attribute vectors (name -> latent vector) atomically, with the checkpoint they came from."""
    save_torch_file(path, {"attribute_names": list(vectors), "vectors": {k: v.cpu() for k, v in vectors.items()},
                           "checkpoint": source})


def load_attribute_vectors(path: str | Path, model: ConditionalModel | None = None) -> dict[str, torch.Tensor]:
    """Read a file written by :func:`save_attribute_vectors`; with ``model``, refuse vectors
    that do not fit its latent code (another model's) or are not finite."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: attribute vectors file not found")
    try:
        saved = torch.load(path, weights_only=True)
        vectors = saved["vectors"]
    except Exception as error:  # torch's own advice runs to many lines: one clear line instead
        raise UserError(f"{path}: not an attribute-vectors file (it cannot be loaded as one: {type(error).__name__}); "
                         "write one with `attrgan attribute-vectors`") from None
    if model is not None:
        for name, vector in vectors.items():
            if tuple(vector.shape) != (model.z_dim,):
                raise UserError(f"{path}: the vectors are for a {vector.numel()}-dim latent code (from "
                                 f"{saved.get('checkpoint', 'another model')}), this model's code has {model.z_dim}; "
                                 "compute them for this model with `attrgan attribute-vectors --checkpoint RUN`")
            if not torch.isfinite(vector).all():
                raise UserError(f"{path}: the vector for {name!r} holds NaN or Inf values")
    return vectors


# float copies of the faces alive at once: decoded batches and their concatenation, the grid and its bytes
GRID_COPIES = 5
GRID_BASE_BYTES = 2**30  # the process itself (torch, the model); benchmarks/sample_memory.py measures both


def grid_memory(count: int, image_size: int) -> int:
    """Bytes a command that decodes ``count`` faces into one grid may need at its peak: an
    estimate at or above what benchmarks/sample_memory.py measures."""
    return GRID_BASE_BYTES + GRID_COPIES * count * 3 * image_size**2 * 4


def crop_files(photos: list[Path], out: str | Path) -> list[Path]:
    """``out/<stem>.png`` for each photo; two photos with the same file stem would share one crop file."""
    stems = [Path(photo).stem for photo in photos]
    twice = sorted({stem for stem in stems if stems.count(stem) > 1})
    if twice:
        raise UserError(f"photos with the same file name would share a crop file: {', '.join(twice)}; rename them "
                         "or align them into separate --out folders")
    return [Path(out) / f"{stem}.png" for stem in stems]


def save_crops(crops: torch.Tensor, files: list[Path]) -> None:
    """Save uint8 crops ``[N, 3, S, S]`` as PNG files, each written atomically."""
    for crop, file in zip(crops, files):
        with atomic_file(file) as tmp:
            Image.fromarray(crop.permute(1, 2, 0).numpy()).save(tmp)


def edit_images(model: ConditionalModel, images: torch.Tensor, raw: np.ndarray, attribute: str,
                strengths: list[float], mode: str, vectors: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """Edited faces ``[N * len(strengths), 3, S, S]`` (row-major: one row per image).

    ``latent``: z = Enc(x, y) + s * v_attribute (needs attribute vectors);
    ``condition``: the attribute's entry of y moved by s standard deviations.
    """
    for s in strengths:
        require("--strength", s)
    check_edit(model, attribute, mode, vectors)
    j = attribute_index(model, attribute) if mode == "condition" else None
    if j is not None:
        reach = np.abs(raw[:,
                           j].astype(np.float64)).max(initial=0) + max(map(abs, strengths)) * float(model.scaler.std[j])
        if not reach <= np.finfo(np.float32).max:
            raise UserError(f"--strength {max(strengths, key=abs):g}: moves {attribute} past the largest value an "
                            "attribute can hold; use strengths of a few standard deviations (e.g. -2,0,2)")
    codes = model.encode(images, raw)
    out = []
    for i in range(len(images)):
        for s in strengths:
            if mode == "latent":
                out.append(model.decode(shift_codes(codes[i : i + 1], vectors, {attribute: s}), raw[i : i + 1]))
            else:
                row = raw[i : i + 1].astype(np.float64)
                row[0, j] += s * float(model.scaler.std[j])
                out.append(model.decode(codes[i : i + 1], row.astype(np.float32)))
    return torch.cat(out)


def interpolate(model: ConditionalModel, images: torch.Tensor, raw: np.ndarray, steps: int) -> torch.Tensor:
    """Faces along the straight line between two images' codes and attribute vectors (ends included)."""
    require("--steps", steps, 2)
    codes = model.encode(images[:2], raw[:2])
    t = torch.linspace(0, 1, steps, device=codes.device)[:, None]
    z = (1 - t) * codes[0] + t * codes[1]
    y = (1 - t.cpu().numpy()) * raw[0] + t.cpu().numpy() * raw[1]
    return model.decode(z, y.astype(np.float32))


def edit_slopes(regressor, model: ConditionalModel, edited: torch.Tensor, n_images: int, strengths: list[float],
                attribute: str, device) -> dict:
    """Regressed attribute vs strength: the edited attribute's slope (mean over images) and
    the mean absolute slope of the other attributes, per unit of strength."""
    raw, _ = regressor.predict_raw(edited, device)
    raw = raw.reshape(n_images, len(strengths), -1)
    s = np.asarray(strengths, np.float64)
    slopes = np.polyfit(s, raw.transpose(1, 0, 2).reshape(len(s), -1), 1)[0].reshape(n_images, -1).mean(0)
    names = regressor.scaler.names
    j = names.index(attribute)
    others = np.abs(np.delete(slopes, j))
    monotonic = bool(np.all(np.diff(raw[:, :, j].mean(0)) > 0))
    return {"attribute": attribute, "slope": float(slopes[j]), "other_mean_abs_slope": float(others.mean()),
            "monotonic_on_average": monotonic, "per_attribute_slope": dict(zip(names, slopes.round(4).tolist())),
            "mean_regressed_by_strength": raw[:, :, j].mean(0).round(4).tolist(), "strengths": strengths}
