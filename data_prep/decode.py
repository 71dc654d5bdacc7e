"""Decoding a photo for alignment: upright, bounded in memory, refused when too large or too small."""
from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps

from attrgan.runtime.errors import UserError

MIN_IMAGE_SIDE = 24  # px: MTCNN's 12-px P-Net finds nothing in smaller images (and crashes on them)
MAX_IMAGE_SIDE = 2048  # px: larger photos are downscaled on decoding, which bounds memory
MAX_FULL_DECODE_PIXELS = 50_000_000  # formats other than JPEG cannot be reduced while decoding: refused above this


class ImageTooLargeError(UserError):
    """A non-JPEG image too large to decode within the memory bound."""


class ImageTooSmallError(UserError):
    """An image too small to hold a detectable face."""


def decode_image(data: bytes) -> np.ndarray:
    """Decode JPEG/PNG bytes to uint8 RGB ``[H, W, 3]``, turned upright by its EXIF orientation
    tag and downscaled to at most MAX_IMAGE_SIDE px (a JPEG at a reduced scale while decoding;
    other formats over MAX_FULL_DECODE_PIXELS are refused); raise on corrupt, truncated, huge
    or tiny files."""
    with _open_bounded(data) as img:
        if max(img.size) > MAX_IMAGE_SIDE:
            img.draft("RGB", (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))  # JPEG: decode at a reduced scale
        if img.size[0] * img.size[1] > MAX_FULL_DECODE_PIXELS:  # not reduced by draft (a PNG, say)
            raise ImageTooLargeError(f"{img.size[0]}x{img.size[1]} px is too large to decode "
                                     f"(over {MAX_FULL_DECODE_PIXELS // 10**6} megapixels and not a JPEG); "
                                     "downscale it first")
        img.load()
        upright = ImageOps.exif_transpose(img)
        if max(upright.size) > MAX_IMAGE_SIDE:
            upright.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), Image.Resampling.LANCZOS)
        if min(upright.size) < MIN_IMAGE_SIDE:
            raise ImageTooSmallError(f"{upright.size[0]}x{upright.size[1]} px is too small to align "
                                     f"(under {MIN_IMAGE_SIDE} px)")
        return np.asarray(upright.convert("RGB"))


def _open_bounded(data: bytes) -> Image.Image:
    """``Image.open`` without Pillow's decompression-bomb warning: decode_image applies its own bound."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(f"too large to decode ({exc.args[0].split(',')[0]}); downscale it first") from None
