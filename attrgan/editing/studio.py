"""The editing service behind ``attrgan serve``: one loaded model shared by every request.

Framework-free (the web layer is :mod:`attrgan.editing.webapp`): photos in (uploads aligned with the
prep-lfw aligner, or test-split faces of the model's dataset), edits, samples and
interpolations out, each as float images in [-1, 1]. All network work runs under one lock,
so concurrent requests never load or run the model twice at once; a bounded number may wait."""
from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import attrgan
from attrgan.bundle import catalogue
from attrgan.data.dataset import load_images, open_dataset, to_model_range
from attrgan.editing.edits import (
    ImageInputError,
    align_face,
    attribute_row,
    check_attribute,
    decode_photo,
    estimate_attributes,
    interpolate,
    load_attribute_vectors,
    photo_aligner,
    shift_codes,
)
from attrgan.evaluation.regressor import load_regressor
from attrgan.nets.loaded import ConditionalModel
from attrgan.runtime.errors import UserError
from attrgan.runtime.limits import release_freed_memory, require
from data_prep.decode import ImageTooLargeError

VALUE_LIMIT = 5.0  # |slider value|: standard deviations of y (condition) or multiples of a vector (latent)
MAX_SAMPLES = 64
MAX_STEPS = 16
MAX_UPLOAD_BYTES = 20 * 2**20
KEPT_PHOTOS = 64  # uploaded photos held in memory (least recently used dropped first)
KEPT_TEST_FACES = 256  # encoded test faces held apart from the uploads (read again from the dataset when dropped)
TEST_FACE_PREFIX = "test-"
FAMILIAR_QUANTILE = 0.99  # a photo reconstructed worse than this share of the test faces is flagged
FAMILIARITY_FACES = 256  # test faces (evenly spaced) that set the flag's threshold
CANONICAL_ROW = re.compile(r"0|[1-9][0-9]{0,11}", re.ASCII)  # test-5, never test-05, test-٥, test-² or 4,300 digits


class StudioError(UserError):
    """A request the service refuses; ``status`` is the HTTP status the web layer answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Photo:
    """An aligned face and what the model needs to edit it."""

    id: str
    crop: torch.Tensor  # uint8 [3, S, S]
    raw: np.ndarray  # raw attribute values [A] the model conditions on
    code: torch.Tensor  # encoder mean [z_dim]
    attributes_from: str  # labels, regressor or training mean
    reconstruction_error: float  # mean squared pixel error of its reconstruction, in [-1, 1] units

    def standardized(self, model: ConditionalModel) -> dict[str, float]:
        values = model.scaler.transform(self.raw[None])[0]
        return {name: round(float(v), 3) for name, v in zip(model.attribute_names, values)}


class Studio:
    """Photos, edits, samples and interpolations of one model (thread-safe)."""

    def __init__(self, model: ConditionalModel, regressor=None, vectors: dict[str, torch.Tensor] | None = None,
                 dataset=None, max_waiting: int = 8) -> None:
        if regressor is not None:
            regressor.check_fits(model.attribute_names or None, model.image_size, "the served model")
        self.model, self.regressor, self.vectors, self.dataset = model, regressor, vectors or {}, dataset
        self._lock = threading.Lock()
        self._decode_lock = threading.Lock()
        self._error_quantile: float | None = None
        self._slots = threading.BoundedSemaphore(max_waiting)
        self._photos: OrderedDict[str, Photo] = OrderedDict()  # uploads: browsing test faces never pushes one out
        self._test_faces: OrderedDict[str, Photo] = OrderedDict()
        self._aligner = None
        if dataset is not None:
            missing = [n for n in model.attribute_names if n not in dataset.attribute_names]
            if missing:
                raise UserError(f"{dataset.root}: lacks the model's attributes {', '.join(missing[:5])}")
        self._test_rows = dataset.rows("test", labelled_only=False) if dataset is not None else np.zeros(0, int)
        self._test_row_set = frozenset(self._test_rows.tolist())

    # ---------------------------------------------------------------- what the page shows
    @property
    def modes(self) -> list[str]:
        """Edit modes this model supports: condition (needs y in the decoder), latent (needs vectors)."""
        modes = ["condition"] if self.model.attribute_names else []
        return modes + (["latent"] if self.vectors else [])

    def describe(self) -> dict:
        """The model's kind, size, attributes and what the page can offer."""
        m = self.model
        conditioned = [{"name": n, "mean": round(float(mu), 4), "std": round(float(sd), 4), "vector": n in self.vectors}
                       for n, mu, sd in zip(m.attribute_names, m.scaler.mean, m.scaler.std)]
        vector_only = [{"name": n, "mean": None, "std": None, "vector": True}  # e.g. an unconditional model's
                       for n in self.vectors if n not in m.attribute_names]
        return {"kind": m.kind, "image_size": m.image_size, "has_encoder": m.has_encoder, "modes": self.modes,
                "attributes": conditioned + vector_only,
                "regressor": self.regressor is not None, "test_faces": self.test_face_count,
                "value_limit": VALUE_LIMIT, "max_samples": MAX_SAMPLES, "max_steps": MAX_STEPS,
                "max_upload_bytes": MAX_UPLOAD_BYTES}

    @property
    def test_face_count(self) -> int:
        """How many test-split faces :meth:`test_faces` pages through."""
        return len(self._test_rows)

    def test_faces(self, offset: int, count: int) -> list[str]:
        """Ids of test-split faces of the model's dataset, ``count`` from ``offset``."""
        check_int("offset", offset, 0, 10**9)
        check_int("count", count, 1, 256)
        return [f"{TEST_FACE_PREFIX}{row}" for row in self._test_rows[offset : offset + count]]

    # ---------------------------------------------------------------- photos
    def add_photo(self, data: bytes) -> Photo:
        """Decode, align and encode an uploaded photo; keep it in memory under a content id.

        Decoding waits in the same bounded queue as network work and runs one upload at a time
        (a 50-megapixel PNG briefly takes ~0.6 GB), so parallel uploads cannot add up."""
        if not data:
            raise StudioError("no photo in the request: send the image file as the 'photo' form field or the body")
        if len(data) > MAX_UPLOAD_BYTES:
            raise StudioError(f"the upload is over {MAX_UPLOAD_BYTES // 2**20} MB", 413)
        self._require_encoder()
        with self._queued(self._decode_lock):
            pixels = self._decode(data)
        with self._compute():
            if self._aligner is None:
                self._aligner = photo_aligner(self.model.image_size, str(self.model.device))
            try:
                crop, found = align_face(self._aligner, pixels)
            finally:
                del pixels
                release_freed_memory()  # a large photo's buffers go back to the OS, not into the heap's keep
            if not found:
                raise StudioError("no face found in the photo (the aligner needs one frontal face)", 422)
            photo_id = "u" + hashlib.sha256(crop.numpy().tobytes()).hexdigest()[:16]
            if photo_id in self._photos:
                return self._keep(self._photos[photo_id])
            raw, source = self._estimate(crop[None])
            return self._keep(self._encode(photo_id, crop, raw[0], source))

    @staticmethod
    def _decode(data: bytes) -> np.ndarray:
        try:
            return decode_photo(data, "the upload")  # the pixel count is read from the header first
        except ImageTooLargeError as exc:
            raise StudioError(f"image too large: {exc}", 413) from None
        except ImageInputError as exc:
            raise StudioError(str(exc)) from None

    def photo(self, photo_id: str) -> Photo:
        """A photo by id: an upload still held, or a test-split face of the dataset."""
        with self._lock:
            held = self._test_faces if photo_id.startswith(TEST_FACE_PREFIX) else self._photos
            if photo_id in held:
                return self._keep(held[photo_id])
        if photo_id.startswith(TEST_FACE_PREFIX):
            return self._test_face(photo_id)
        raise StudioError(f"no photo {photo_id!r} here (uploads are kept while the server runs, the last "
                          f"{KEPT_PHOTOS}); upload it again", 404)

    def _test_face(self, photo_id: str) -> Photo:
        row_text = photo_id[len(TEST_FACE_PREFIX):]
        if not CANONICAL_ROW.fullmatch(row_text) or int(row_text) not in self._test_row_set:
            raise StudioError(f"no test-split face {photo_id!r} in this model's dataset", 404)
        self._require_encoder()
        rows = np.array([int(row_text)])
        with self._compute():
            crops = load_images(self.dataset, rows, self.model.image_size)
            raw, sources = self._test_attributes(rows, crops)
            return self._keep(self._encode(photo_id, crops[0], raw[0], sources[0]))

    def _keep(self, photo: Photo) -> Photo:
        """Hold ``photo`` as the most recently used of its kind, uploads and test faces apart; drop
        the oldest beyond KEPT_PHOTOS uploads or KEPT_TEST_FACES test faces (lock held)."""
        test_face = photo.id.startswith(TEST_FACE_PREFIX)
        held, limit = (self._test_faces, KEPT_TEST_FACES) if test_face else (self._photos, KEPT_PHOTOS)
        held[photo.id] = photo
        held.move_to_end(photo.id)
        while len(held) > limit:
            held.popitem(last=False)
        return photo

    # ---------------------------------------------------------------- images
    def edit(self, photo_id: str, settings: dict[str, float], mode: str) -> torch.Tensor:
        """The photo's face with ``settings`` applied: condition mode sets y (std devs from the
        training mean; unset attributes keep the photo's values), latent mode adds
        ``strength * vector`` to its code. ``[1, 3, S, S]``."""
        photo = self.photo(photo_id)
        if mode not in self.modes:
            raise StudioError(f"mode must be one of {', '.join(self.modes)} for this server; got {mode!r}")
        self._check_settings(settings, latent=mode == "latent")
        with self._compute():
            if mode == "latent":
                return self.model.decode(shift_codes(photo.code[None], self.vectors, settings), photo.raw[None])
            return self.model.decode(photo.code[None], attribute_row(self.model, settings, photo.raw)[None])

    def reconstruction(self, photo_id: str) -> torch.Tensor:
        photo = self.photo(photo_id)
        with self._compute():
            return self.model.decode(photo.code[None], photo.raw[None])

    def samples(self, settings: dict[str, float], seed: int, n: int, photo_id: str | None = None) -> torch.Tensor:
        """``n`` faces drawn from the prior with y set by ``settings`` (unset: the photo's
        values, or the training mean); ``[n, 3, S, S]``."""
        check_int("seed", seed, 0, 2**31 - 1)
        check_int("n", n, 1, MAX_SAMPLES)
        self._check_settings(settings, latent=False)
        base = self.photo(photo_id).raw if photo_id else self.model.scaler.mean
        with self._compute():
            return self.model.sample(np.repeat(attribute_row(self.model, settings, base)[None], n, 0), seed=seed)

    def interpolation(self, first: str, second: str, steps: int) -> torch.Tensor:
        """Faces along the line between two photos' codes and attributes, ends included."""
        check_int("steps", steps, 2, MAX_STEPS)
        a, b = self.photo(first), self.photo(second)
        with self._compute():
            return interpolate(self.model, torch.stack([a.crop, b.crop]), np.stack([a.raw, b.raw]), steps)

    # ---------------------------------------------------------------- helpers
    def _compute(self):
        """Run network work one request at a time; refuse (503) when too many already wait."""
        return self._queued(self._lock)

    @contextmanager
    def _queued(self, lock: threading.Lock):
        """Hold ``lock`` after taking one of the bounded waiting places; refuse (503) when none is free."""
        if not self._slots.acquire(blocking=False):
            raise StudioError("the server is busy; try again in a moment", 503)
        try:
            with lock:
                yield
        finally:
            self._slots.release()

    def _require_encoder(self) -> None:
        if not self.model.has_encoder:
            raise StudioError(f"a {self.model.kind!r} model has no encoder, so it cannot edit photos; "
                              "serve a vaegan or vae run to edit, or draw samples", 400)

    def _estimate(self, crops: torch.Tensor) -> tuple[np.ndarray, str]:
        return estimate_attributes(self.model, crops, self.regressor)

    def _test_attributes(self, rows: np.ndarray, crops: torch.Tensor) -> tuple[np.ndarray, list[str]]:
        """Raw attribute rows of test faces and where each came from: its labels, else the
        estimate of its crop (the regressor's or the training mean), made for those faces only."""
        labelled = self.dataset.index["labelled"].to_numpy()[rows]
        raw = np.zeros((len(rows), len(self.model.attribute_names)), np.float32)
        sources = ["labels"] * len(rows)
        if labelled.any():
            raw[labelled] = self.dataset.attributes(rows[labelled], self.model.attribute_names)
        if not labelled.all():
            raw[~labelled], source = self._estimate(crops[torch.from_numpy(~labelled)])
            sources = [s if known else source for s, known in zip(sources, labelled)]
        return raw, sources

    def _encode(self, photo_id: str, crop: torch.Tensor, raw: np.ndarray, source: str) -> Photo:
        """Encode a photo and measure its reconstruction error (compute lock held)."""
        code = self.model.encode(crop[None], raw[None])
        error = reconstruction_errors(self.model, crop[None], code, raw[None])[0]
        if self._error_quantile is None:
            self._error_quantile = self._test_error_quantile()
        return Photo(photo_id, crop, raw.astype(np.float32), code[0], source, float(error))

    def familiarity(self, photo: Photo) -> dict:
        """How the photo's reconstruction error compares with the test faces': ``unfamiliar`` is
        True beyond their 99th percentile (the model has seen few faces like it, so its edits
        may come out generic), None where the server has no test faces to compare with."""
        limit = self._error_quantile  # set by the first photo encoded
        return {"reconstruction_error": round(photo.reconstruction_error, 5),
                "typical_error_limit": None if limit is None else round(limit, 5),
                "unfamiliar": None if limit is None else photo.reconstruction_error > limit}

    def _test_error_quantile(self) -> float | None:
        """The 99th percentile of the test faces' reconstruction errors (FAMILIARITY_FACES of them,
        evenly spaced), or None without test faces (compute lock held)."""
        if not len(self._test_rows):
            return None
        rows = self._test_rows[np.unique(np.linspace(0, len(self._test_rows) - 1, FAMILIARITY_FACES).astype(int))]
        crops = load_images(self.dataset, rows, self.model.image_size)
        raw, _ = self._test_attributes(rows, crops)
        errors = reconstruction_errors(self.model, crops, self.model.encode(crops, raw), raw)
        return float(np.quantile(errors, FAMILIAR_QUANTILE))

    def _check_settings(self, settings: dict[str, float], latent: bool) -> None:
        for name, value in settings.items():
            try:
                check_attribute(self.model, name, latent, self.vectors)
            except UserError as exc:
                raise StudioError(str(exc)) from None
            if not np.isfinite(value) or abs(value) > VALUE_LIMIT:
                raise StudioError(f"{name}={value}: values must lie in [-{VALUE_LIMIT:g}, {VALUE_LIMIT:g}]")


def reconstruction_errors(model: ConditionalModel, crops: torch.Tensor, codes: torch.Tensor,
                          raw: np.ndarray) -> np.ndarray:
    """Mean squared pixel error (in [-1, 1] units) of each uint8 crop's decoding from its code."""
    decoded = model.decode(codes, raw).cpu()
    return (decoded - to_model_range(crops)).pow(2).flatten(1).mean(1).numpy()


def check_int(name: str, value: int, low: int, high: int) -> None:
    """Refuse an integer request parameter outside [low, high] (a 400, in require's words)."""
    try:
        require(name, value, low, high)
    except ValueError as error:
        raise StudioError(str(error)) from None


def load_studio(checkpoint: str | Path, regressor: str | Path | None = None, vectors: str | Path | None = None,
                data: str | Path | None = None, device: str = "cpu") -> Studio:
    """A :class:`Studio` from a run (and optional regressor, attribute vectors, dataset; the
    dataset defaults to the one the model was trained on, when it is still at hand)."""
    model = attrgan.load(checkpoint, device)
    data = data if data is not None else training_data_of(model)
    dataset = open_dataset(data) if data is not None and Path(data).is_dir() else None
    return Studio(model, load_regressor(regressor) if regressor is not None else None,
                  load_attribute_vectors(vectors, model) if vectors is not None else None, dataset)


def default_model(regressor: str | Path | None) -> tuple[str, str | Path | None]:
    """With no --checkpoint: the bundled model (the first the catalogue lists) and, unless
    ``regressor`` names one, its own regressor."""
    bundled = catalogue()
    if not bundled:
        raise UserError("--checkpoint is needed: no trained model is bundled with this install (train one, "
                        "README.md 'Real LFW in five commands', and pass its run folder)")
    name = next(iter(bundled))
    return name, regressor if regressor is not None else (name if "regressor" in bundled[name] else None)


def training_data_of(model: ConditionalModel) -> Path | None:
    """The dataset the model was trained on: its path as training saw it, which may be relative
    to the folder training ran in, so also looked up from each folder above the checkpoint."""
    if model.training_data is None:
        return None
    recorded = Path(model.training_data)
    places = [recorded] if recorded.is_absolute() else [recorded,
                                                        *(base / recorded for base in model.path.resolve().parents)]
    return next((place for place in places if (place / "manifest.json").is_file()), None)
