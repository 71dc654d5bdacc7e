"""How `prep-celeba --align landmarks` frames faces against `--align mtcnn` (prep-lfw's and
`attrgan align`'s framing) and the authors' `--align celeba` box, on a synthetic CelebA whose
landmark file holds where each drawn face's pupils, nose tip and mouth corners really fell.

Figures: (1) the mean absolute pixel difference of each method's crops from the mtcnn crops
(images MTCNN aligned); (2) MTCNN run again on each method's crops: the median distance of
the detected landmarks from the template, in crop pixels (0 = framed exactly as prep-lfw).

Run: .venv/bin/python benchmarks/landmark_alignment.py [--images 300] [--size 64]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from common import reported_cpu_flags

from data_prep.align import FaceAligner, template_pixels
from data_prep.celeba import celeba_source
from data_prep.prep import PrepConfig, prepare_dataset
from data_prep.synth_celeba import write_synthetic_celeba

METHODS = ("mtcnn", "landmarks", "celeba")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    print(f"torch {torch.__version__}; cpu flags: {', '.join(reported_cpu_flags())}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synthetic"
        write_synthetic_celeba(root, args.images, seed=0)
        crops, aligned = {}, None
        for method in METHODS:
            source = celeba_source(root, landmarks=method == "landmarks")
            out = Path(tmp) / f"{method}-crops"
            prepare_dataset(PrepConfig(images=None, out=out, source=source, crop=method,
                                       size=args.size), progress=False)
            crops[method] = np.load(out / "images.npy")
            if method == "mtcnn":
                import pandas as pd

                aligned = pd.read_csv(out / "index.csv")["aligned"].to_numpy(bool)
    detector = FaceAligner(args.size, device="cpu", min_face_fraction=0.2)
    template = template_pixels(args.size)
    print(f"{args.images} synthetic CelebA images ({aligned.sum()} aligned by MTCNN), {args.size}x{args.size} crops")
    print(f"{'method':<10}{'mean |crop - mtcnn crop| /255':>32}{'landmarks found':>18}"
          f"{'median landmark error (px)':>30}")
    for method in METHODS:
        difference = np.abs(crops[method][aligned].astype(int) - crops["mtcnn"][aligned].astype(int)).mean()
        found = detector.detect(torch.as_tensor(crops[method].transpose(0, 2, 3, 1).copy()))
        ok = ~np.isnan(found).any(axis=(1, 2))
        error = np.linalg.norm(found[ok] - template, axis=2).mean(1)
        print(f"{method:<10}{difference:>32.2f}{ok.mean():>17.0%} {np.median(error):>29.2f}")


if __name__ == "__main__":
    main()
