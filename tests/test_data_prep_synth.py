"""Stage data_prep, the synthetic LFW: the exact LFW layout and attribute format, byte-identical for a seed."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from helpers import ROOT, TINY_MODEL

from data_prep.attributes import LFW_ATTRIBUTE_NAMES, read_attribute_file
from data_prep.synth import RENDERED, render_face, write_synthetic_lfw


def tree_digest(root) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_layout_format_and_determinism(tmp_path):
    a = write_synthetic_lfw(tmp_path / "a", people=6, max_images=3, seed=7)
    write_synthetic_lfw(tmp_path / "b", people=6, max_images=3, seed=7)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    files = sorted((tmp_path / "a" / "lfw").rglob("*.jpg"))
    assert len(files) == a.images
    for f in files:
        assert f.name.startswith(f.parent.name + "_") and len(f.stem.rsplit("_", 1)[1]) == 4
    table = read_attribute_file(tmp_path / "a" / "lfw_attributes.txt")
    assert table.names == list(LFW_ATTRIBUTE_NAMES)
    assert len(table.frame) == a.labelled
    assert (tmp_path / "a" / "lfw_attributes.txt").read_text().startswith("# synthetic")


def test_rendered_attributes_drive_the_pixels_and_others_do_not():
    base = {name: 0.0 for name in LFW_ATTRIBUTE_NAMES}

    def render(**changes):
        values = dict(base)
        values.update({k.replace("_", " "): v for k, v in changes.items()})
        return np.asarray(render_face(values, np.random.default_rng(0)), dtype=np.float32)

    reference = render()
    for name in RENDERED:
        changed = render(**{name.replace(" ", "_"): 3.0})
        changed_pixels = (np.abs(changed - reference).max(-1) > 30).sum()
        assert changed_pixels > 150, (name, changed_pixels)
    # an attribute that is not rendered leaves the image unchanged
    np.testing.assert_array_equal(render(Outdoor=3.0), reference)
    # continuous: a middle value lies between the extremes
    low, mid, high = (render(Smiling=v) for v in (-3.0, 0.0, 3.0))
    assert np.abs(high - low).mean() > np.abs(mid - low).mean() > 0


@pytest.mark.slow
def test_seeded_commands_are_byte_identical_across_hash_seeds(tmp_path):
    """synth-lfw, synth-celeba, prep-lfw and a short train-conditional, each run in processes
    with different PYTHONHASHSEED values, write the same bytes (the checkpoint: the same
    tensors): no set or other hash-ordered collection feeds a random draw (one once did)."""
    import os
    import subprocess
    import sys

    import torch

    config = tmp_path / "tiny.yaml"
    config.write_text("model: {" + ", ".join(f"{k}: {v}" for k, v in TINY_MODEL.items()) + "}\n"
                      "train: {batch_size: 8, device: cpu, sample_every_epoch: false, precision: fp32}\n")
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"hash{hash_seed}"

        def run(*argv: str) -> None:
            subprocess.run([sys.executable, "-m", "cli.main", *argv], check=True, capture_output=True, cwd=ROOT,
                           env={**os.environ, "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": "1"})

        run("synth-lfw", str(out / "lfw-root"), "--people", "12", "--max-images", "3")
        run("synth-celeba", str(out / "celeba"), "--images", "20", "--layout", "torchvision")  # folder and zip
        run("prep-lfw", "--images", str(out / "lfw-root" / "lfw"), "--attributes",
            str(out / "lfw-root" / "lfw_attributes.txt"),
            "--out", str(out / "data"), "--size", "32", "--device", "cpu", "--no-progress")
        run("train-conditional", "--data", str(out / "data"), "--config", str(config), "--out", str(out / "run"),
            "--max-steps", "3", "--no-progress")
        checkpoint = torch.load(out / "run" / "checkpoint.pt", weights_only=True)
        outputs.append((tree_digest(out / "lfw-root"), tree_digest(out / "celeba"),
                        [(out / "data" / name).read_bytes() for name in ("images.npy", "index.csv")],
                        checkpoint["nets"], checkpoint["rng"]))
    (lfw_a, celeba_a, data_a, nets_a, rng_a), (lfw_b, celeba_b, data_b, nets_b, rng_b) = outputs
    assert lfw_a == lfw_b and celeba_a == celeba_b and data_a == data_b
    for net in nets_a:
        for key, value in nets_a[net].items():
            assert torch.equal(value, nets_b[net][key]), (net, key)
    assert all(torch.equal(a, b) for a, b in zip(rng_a["noise"], rng_b["noise"]))


def test_faces_do_not_depend_on_the_number_of_workers(monkeypatch):
    """render_jpegs gives every face its own generator: a pool of processes writes the bytes that
    one process writes."""
    import data_prep.synth as synth

    rows = [{name: float(v) for name, v in zip(LFW_ATTRIBUTE_NAMES, np.random.default_rng(i).normal(0, 1.5, 73))}
            for i in range(synth.PARALLEL_FROM + 6)]
    pooled = list(synth.render_jpegs(rows, seed=3))
    monkeypatch.setattr(synth, "PARALLEL_FROM", len(rows) + 1)  # all in this process
    alone = list(synth.render_jpegs(rows, seed=3))
    assert [jpeg for jpeg, _ in pooled] == [jpeg for jpeg, _ in alone]
    assert len({jpeg for jpeg, _ in alone}) == len(rows)  # no two faces share a generator
    np.testing.assert_array_equal(np.stack([p for _, p in pooled]), np.stack([p for _, p in alone]))
