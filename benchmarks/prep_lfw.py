"""Benchmark of `prep-lfw` on the full LFW (../shared/data/lfw.tgz), printing:

- images/s and peak RSS of the full prep (13,233 images);
- on the same subset, in the same process: our batched aligner vs a naive loop
  (one default `MTCNN.detect` per image, PIL affine warp), and their ratio;
- alignment quality: the spread (std, px at 64x64) of eye positions re-detected by MTCNN on
  3x upsampled outputs, for aligned crops vs the plain centre crop.

Run: .venv/bin/python benchmarks/prep_lfw.py [--subset 300] [--out /tmp/lfw64]
"""
from __future__ import annotations

import argparse
import io
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from data_prep.align import FaceAligner, centre_crop_transform, similarity_transform, template_pixels, warp_images
from data_prep.prep import PrepConfig, prepare_dataset
from data_prep.sources import iter_images

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def naive_align(images: list[np.ndarray], size: int = 64) -> float:
    """Images/s of the naive loop: default MTCNN, one image at a time, PIL warp."""
    from facenet_pytorch import MTCNN

    mtcnn = MTCNN(keep_all=True)
    destination = template_pixels(size)
    started = time.perf_counter()
    for pixels in images:
        img = Image.fromarray(pixels)
        boxes, _, points = mtcnn.detect(img, landmarks=True)
        if boxes is None:
            matrix = centre_crop_transform(*pixels.shape[:2], size)
        else:
            matrix = similarity_transform(points[0], destination)
        inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
        img.transform((size, size), Image.AFFINE, inverse.flatten().tolist(), Image.BICUBIC)
    return len(images) / (time.perf_counter() - started)


def ours_align(images: list[np.ndarray], batch: int = 64) -> float:
    aligner = FaceAligner(64)
    started = time.perf_counter()
    for i in range(0, len(images), batch):
        aligner.align_images(images[i : i + batch])
    return len(images) / (time.perf_counter() - started)


def eye_spread(aligner: FaceAligner, crops: np.ndarray) -> tuple[float, float, float]:
    """(std of re-detected eye positions in px, mean distance to the template, fraction re-detected)."""
    eyes = []
    for i in range(0, len(crops), 64):
        up = torch.nn.functional.interpolate(torch.as_tensor(crops[i : i + 64]).float(), scale_factor=3, mode="bicubic")
        up = up.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        eyes.append(aligner.detect(up)[:, :2] / 3 - 1 / 3)
    eyes = np.concatenate(eyes)
    found = ~np.isnan(eyes).any(axis=(1, 2))
    spread = float(eyes[found].std(axis=0).mean())
    error = float(np.linalg.norm(eyes[found] - template_pixels(64)[:2], axis=2).mean())
    return spread, error, float(found.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DATA / "lfw.tgz")
    parser.add_argument("--attributes", type=Path, default=DATA / "lfw_attributes.txt")
    parser.add_argument("--subset", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None, help="keep the prepared dataset here")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    work = Path(tempfile.mkdtemp())
    out = args.out or work / "lfw64"
    manifest = prepare_dataset(PrepConfig(images=args.images, attributes=args.attributes, out=out,
                                          force=True), progress=True)
    c = manifest["counts"]
    print(f"full prep: {c['read']} images in {manifest['wall_time_s']:.1f} s = {manifest['images_per_s']:.1f} img/s, "
          f"aligned {c['aligned'] / c['images']:.2%}, unreadable {c['unreadable']}, peak RSS {peak_rss_mib():.0f} MiB")

    subset = []
    for item in iter_images(args.images):
        subset.append(np.asarray(Image.open(io.BytesIO(item.data)).convert("RGB")))
        if len(subset) == args.subset:
            break
    naive = naive_align(subset)
    ours = ours_align(subset)
    print(f"same {len(subset)} images: naive loop {naive:.1f} img/s, ours {ours:.1f} img/s, ratio {ours / naive:.2f}x")

    checker = FaceAligner(64, min_face_fraction=0.15)
    aligned = np.load(out / "images.npy", mmap_mode="r")[: args.subset]
    centre = warp_images(torch.as_tensor(np.stack(subset)),
                         np.stack([centre_crop_transform(250, 250, 64)] * len(subset)), 64)
    a_spread, a_err, a_found = eye_spread(checker, np.asarray(aligned))
    c_spread, c_err, c_found = eye_spread(checker, centre.numpy())
    print(f"eye spread at 64x64 over {args.subset} images: aligned {a_spread:.2f} px (mean distance to template "
          f"{a_err:.2f} px, re-detected {a_found:.0%}); centre crop {c_spread:.2f} px ({c_found:.0%}); "
          f"ratio {a_spread / c_spread:.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
