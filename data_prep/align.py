"""Face alignment: MTCNN's 5 landmarks -> least-squares similarity warp to a fixed template.

The template is where the landmarks fall, on average, inside Larsen et al.'s crop (the
centre 150x150 of a 250x250 LFW image): measured with MTCNN over 300 LFW images and made
left-right symmetric. Aligned crops therefore keep the paper's framing (face, hair, a little
background) while every face has its eyes, nose and mouth at the same place.
Coordinates are normalised to the crop: (0, 0) is the top-left corner, (1, 1) the bottom-right.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from attrgan.runtime.device import resolve_device

# left eye, right eye, nose tip, left mouth corner, right mouth corner (as seen in the image)
TEMPLATE = np.array(
    [[0.3633, 0.4244], [0.6367, 0.4244], [0.5000, 0.5889], [0.3806, 0.7253], [0.6194, 0.7253]],
    dtype=np.float64,
)
FALLBACK_CROP_FRACTION = 150 / 250  # Larsen et al.: the centre 150x150 of a 250x250 LFW image
DEFAULT_MIN_FACE_FRACTION = 0.24  # smallest face searched, as a fraction of the shorter side (60 px on LFW)


def template_pixels(size: int, template: np.ndarray = TEMPLATE) -> np.ndarray:
    """The template in pixel-centre coordinates of a ``size`` x ``size`` crop."""
    return template * size - 0.5


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, translation) mapping ``src`` onto ``dst``
    in the least-squares sense (Umeyama, 1991)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_src, mu_dst = src.mean(0), dst.mean(0)
    src_c, dst_c = src - mu_src, dst - mu_dst
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:  # avoid a reflection
        sign[-1] = -1
    rotation = u @ np.diag(sign) @ vt
    scale = (singular * sign).sum() / (src_c**2).sum(1).mean()
    translation = mu_dst - scale * rotation @ mu_src
    return np.hstack([scale * rotation, translation[:, None]])


def box_transform(x0: float, y0: float, side: float, size: int) -> np.ndarray:
    """The 2x3 transform that maps the square box (left ``x0``, top ``y0``, ``side`` px) of an
    image onto a ``size`` x ``size`` crop."""
    scale = size / side
    return np.array([[scale, 0, (0.5 - x0) * scale - 0.5], [0, scale, (0.5 - y0) * scale - 0.5]])


def centre_crop_transform(height: int, width: int, size: int, fraction: float = FALLBACK_CROP_FRACTION) -> np.ndarray:
    """The 2x3 transform of Larsen et al.'s fallback crop: the centre square of side
    0.6 x the shorter side (150 px of a 250 px LFW image), resized to ``size``."""
    side = fraction * min(height, width)
    return box_transform((width - side) / 2, (height - side) / 2, side, size)


# The authors' CelebA crop (andersbll/autoencoding_beyond_pixels, dataset/celeba.py: bbox rows
# 40..188, columns 15..163 of the 178x218 aligned images): a 148 px square, resized.
CELEBA_BOX = (15, 40, 148)  # left, top, side in px of img_align_celeba's 178x218 images
CELEBA_SIZE = (178, 218)  # img_align_celeba's width, height


def celeba_crop_transform(height: int, width: int, size: int) -> np.ndarray:
    """The authors' CelebA box, scaled to the image if it is not 178x218."""
    x0, y0, side = CELEBA_BOX
    sx, sy = width / CELEBA_SIZE[0], height / CELEBA_SIZE[1]
    return box_transform(x0 * sx, y0 * sy, side * min(sx, sy), size)


def warp_images(images: torch.Tensor, transforms: np.ndarray, size: int) -> torch.Tensor:
    """Warp uint8 images ``[B, H, W, 3]`` by 2x3 input->output transforms into uint8 crops
    ``[B, 3, size, size]``, antialiased by supersampling then box-filtering."""
    batch, height, width, _ = images.shape
    matrices = torch.as_tensor(np.asarray(transforms), dtype=torch.float64).reshape(batch, 2, 3)
    full = torch.cat([matrices, torch.tensor([[[0.0, 0.0, 1.0]]], dtype=torch.float64).expand(batch, 1, 3)], 1)
    inverse = torch.linalg.inv(full)[:, :2]  # output pixel -> input pixel
    input_per_output = float(torch.linalg.matrix_norm(inverse[:, :, :2], ord=2).max())
    factor = int(min(8, max(1, math.ceil(input_per_output))))  # samples per output pixel, per axis
    coords = (torch.arange(size * factor, dtype=torch.float64) + 0.5) / factor - 0.5
    grid_y, grid_x = torch.meshgrid(coords, coords, indexing="ij")
    points = torch.stack([grid_x, grid_y, torch.ones_like(grid_x)], -1).reshape(-1, 3)
    source = torch.einsum("bij,pj->bpi", inverse, points)  # [B, P, 2] input pixel coords
    scale = torch.tensor([width, height], dtype=torch.float64)
    grid = ((source + 0.5) / scale * 2 - 1).reshape(batch, size * factor, size * factor, 2)
    pixels = images.permute(0, 3, 1, 2).float()
    sampled = F.grid_sample(
        pixels, grid.to(pixels.dtype), mode="bilinear", padding_mode="reflection", align_corners=False
    )
    crops = F.avg_pool2d(sampled, factor) if factor > 1 else sampled
    return crops.round().clamp(0, 255).to(torch.uint8)


@dataclass
class AlignedBatch:
    """Aligned crops and what the detector found for each input image."""

    crops: np.ndarray  # uint8 [B, 3, S, S]
    aligned: np.ndarray  # bool [B]: landmarks found (False = fallback centre crop)
    landmarks: np.ndarray  # float [B, 5, 2] in input pixels, NaN where no face


class FaceAligner:
    """Batched MTCNN detection + similarity alignment to :data:`TEMPLATE`.

    The MTCNN networks run channels-last (1.5x faster on CPU than facenet-pytorch's
    default layout); the smallest face searched is ``min_face_fraction`` of the shorter
    image side, which prunes the costliest pyramid levels for portrait-like photos.
    """

    def __init__(
        self,
        size: int = 64,
        device: str | torch.device = "cpu",
        min_face_fraction: float = DEFAULT_MIN_FACE_FRACTION,
        template: np.ndarray = TEMPLATE,
    ) -> None:
        from facenet_pytorch import MTCNN  # heavy import, only when aligning


        self.size = size
        self.device = resolve_device(str(device))
        self.min_face_fraction = min_face_fraction
        self.template = template
        self.mtcnn = MTCNN(keep_all=True, select_largest=False, device=self.device).eval()
        for net in (self.mtcnn.pnet, self.mtcnn.rnet, self.mtcnn.onet):
            net.to(memory_format=torch.channels_last)

    def detect(self, images: torch.Tensor) -> np.ndarray:
        """Landmarks ``[B, 5, 2]`` of the face nearest each image's centre (NaN: no face).
        ``images`` is uint8 ``[B, H, W, 3]``, all one size."""
        batch, height, width, _ = images.shape
        self.mtcnn.min_face_size = max(12, int(self.min_face_fraction * min(height, width)))
        with torch.inference_mode():
            boxes, _, points = self.mtcnn.detect(images.to(self.device), landmarks=True)
        landmarks = np.full((batch, 5, 2), np.nan)
        centre = np.array([(width - 1) / 2, (height - 1) / 2])
        for i in range(batch):
            if boxes[i] is None:
                continue
            box = np.asarray(boxes[i], dtype=np.float64).reshape(-1, 4)
            box_centres = (box[:, :2] + box[:, 2:]) / 2
            nearest = int(np.argmin(((box_centres - centre) ** 2).sum(1)))
            landmarks[i] = np.asarray(points[i], dtype=np.float64).reshape(-1, 5, 2)[nearest]
        return landmarks

    def align(self, images: torch.Tensor) -> AlignedBatch:
        """Align a batch of same-size uint8 images ``[B, H, W, 3]``; no face -> centre crop."""
        _, height, width, _ = images.shape
        landmarks = self.detect(images)
        found = ~np.isnan(landmarks).any(axis=(1, 2))
        destination = template_pixels(self.size, self.template)
        fallback = centre_crop_transform(height, width, self.size)
        transforms = np.stack(
            [similarity_transform(lm, destination) if ok else fallback for lm, ok in zip(landmarks, found)]
        )
        crops = warp_images(images, transforms, self.size)
        return AlignedBatch(crops=crops.numpy(), aligned=found, landmarks=landmarks)

    def align_images(self, images: list[np.ndarray]) -> AlignedBatch:
        """Align a list of uint8 ``[H, W, 3]`` images of any sizes (grouped by size)."""
        return by_shape(images, self.align, self.size)


class BoxCropper:
    """Crops without a detector: the same box of every image (``celeba``: the authors' CelebA
    box; ``none``: the centred square of already aligned crops), through the aligner's
    antialiased warp. Every crop is flagged ``aligned=False`` (no landmarks were found)."""

    def __init__(self, size: int, crop: str) -> None:
        if crop not in ("celeba", "none"):
            raise ValueError(f"crop must be celeba or none, got {crop!r}")
        self.size = size
        self.transform = celeba_crop_transform if crop == "celeba" else (
            lambda h, w, size: centre_crop_transform(h, w, size, fraction=1.0))

    def align(self, images: torch.Tensor) -> AlignedBatch:
        batch, height, width, _ = images.shape
        transforms = np.stack([self.transform(height, width, self.size)] * batch)
        return AlignedBatch(crops=warp_images(images, transforms, self.size).numpy(),
                            aligned=np.zeros(batch, dtype=bool), landmarks=np.full((batch, 5, 2), np.nan))

    def align_images(self, images: list[np.ndarray]) -> AlignedBatch:
        return by_shape(images, self.align, self.size)


class LandmarkAligner:
    """Alignment from given landmarks (CelebA's ``list_landmarks_align_celeba``): FaceAligner's
    similarity warp onto the same template, without a detector, so the crops frame faces as
    ``prep-lfw`` and ``attrgan align`` do. Every crop is flagged ``aligned=True``."""

    def __init__(self, size: int, template: np.ndarray = TEMPLATE) -> None:
        self.size = size
        self.destination = template_pixels(size, template)

    def align_images(self, images: list[np.ndarray], landmarks: list[np.ndarray]) -> AlignedBatch:
        """Crops of ``images`` (uint8 ``[H, W, 3]``) warped so that ``landmarks`` (``[5, 2]`` each,
        in the aligner's order) land on the template."""
        transforms = [similarity_transform(points, self.destination) for points in landmarks]
        crops = np.zeros((len(images), 3, self.size, self.size), dtype=np.uint8)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            groups.setdefault(image.shape, []).append(i)
        for indices in groups.values():
            batch = torch.as_tensor(np.stack([images[i] for i in indices]))
            crops[indices] = warp_images(batch, np.stack([transforms[i] for i in indices]), self.size).numpy()
        return AlignedBatch(crops=crops, aligned=np.ones(len(images), dtype=bool),
                            landmarks=np.stack(landmarks) if landmarks else np.zeros((0, 5, 2)))


def by_shape(images: list[np.ndarray], align, size: int) -> AlignedBatch:
    """Run ``align`` on each group of same-size images and put the results back in order."""
    crops = np.zeros((len(images), 3, size, size), dtype=np.uint8)
    aligned = np.zeros(len(images), dtype=bool)
    landmarks = np.full((len(images), 5, 2), np.nan)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        groups.setdefault(image.shape, []).append(i)
    for indices in groups.values():
        result = align(torch.as_tensor(np.stack([images[i] for i in indices])))
        crops[indices], aligned[indices], landmarks[indices] = result.crops, result.aligned, result.landmarks
    return AlignedBatch(crops=crops, aligned=aligned, landmarks=landmarks)
