"""Stage data_prep, the one writer (prep-lfw): dataset layout by the contract, identity-disjoint splits,
unreadable images listed, the atomic rename."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from attrgan.runtime.files import atomic_file
from cli.main import app
from data_prep.attributes import LFW_ATTRIBUTE_NAMES, read_attribute_file
from data_prep.prep import PrepConfig, prepare_dataset
from data_prep.split import split_by_identity

runner = CliRunner()
INDEX_COLUMNS = ["person", "imagenum", "source", "split", "aligned", "labelled", *LFW_ATTRIBUTE_NAMES]


def check_contract(out: Path, size: int = 64) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Assert the dataset directory contract of the design; return its three parts."""
    assert sorted(p.name for p in out.iterdir()) == ["images.npy", "index.csv", "manifest.json"]
    images = np.load(out / "images.npy", mmap_mode="r")
    index = pd.read_csv(out / "index.csv")
    manifest = json.loads((out / "manifest.json").read_text())
    assert images.dtype == np.uint8 and images.shape == (len(index), 3, size, size)
    assert list(index.columns) == INDEX_COLUMNS
    assert set(index["split"]) <= {"train", "val", "test"}
    people_per_split = index.groupby("person")["split"].nunique()
    assert (people_per_split == 1).all(), "a person appears in two splits"
    assert index["labelled"].equals(index[list(LFW_ATTRIBUTE_NAMES)].notna().all(axis=1))
    assert index.loc[~index["labelled"], list(LFW_ATTRIBUTE_NAMES)].isna().all().all()
    counts = manifest["counts"]
    assert counts["images"] == len(index) and counts["aligned"] == int(index["aligned"].sum())
    assert counts["labelled"] == int(index["labelled"].sum())
    assert sum(s["images"] for s in counts["per_split"].values()) == len(index)
    assert manifest["attribute_names"] == list(LFW_ATTRIBUTE_NAMES) and manifest["size"] == size
    assert len(manifest["inputs"]["images"]["sha256"]) == 64
    return images, index, manifest


def test_synthetic_round_trip(synthetic_lfw, tmp_path):
    out = tmp_path / "ds"
    result = runner.invoke(
        app,
        ["prep-lfw", "--images", str(synthetic_lfw / "lfw"), "--attributes", str(synthetic_lfw / "lfw_attributes.txt"),
         "--out", str(out), "--device", "cpu", "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    assert "dataset written to" in result.output and "img/s" in result.output
    images, index, manifest = check_contract(out)
    table = read_attribute_file(synthetic_lfw / "lfw_attributes.txt")
    # values joined by (person, imagenum) equal the attribute file's
    merged = index[index["labelled"]].merge(table.frame, on=["person", "imagenum"], suffixes=("", "_file"))
    assert len(merged) == len(table.frame)
    np.testing.assert_allclose(merged["Smiling"], merged["Smiling_file"], rtol=1e-12)
    assert (~index["labelled"]).sum() == manifest["counts"]["unlabelled"] > 0
    assert index["aligned"].mean() > 0.7  # MTCNN finds most synthetic faces too
    assert images.std() > 20  # real pixels, not a blank array
    assert not list(tmp_path.glob(".ds.tmp-*"))


def test_refuses_to_overwrite_without_force(synthetic_lfw, tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["prep-lfw", "--images", str(synthetic_lfw / "lfw"), "--out", str(out), "--no-progress", "--limit", "8"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "already exists; pass --force" in result.output
    assert (out / "keep.txt").read_text() == "mine"
    result = runner.invoke(app, args + ["--force"])
    assert result.exit_code == 0, result.output
    assert not (out / "keep.txt").exists()
    _, index, _ = check_contract(out)
    assert len(index) == 8 and not index["labelled"].any()  # no attribute file: all unlabelled


def test_malformed_attribute_file_writes_nothing(synthetic_lfw, tmp_path):
    bad = tmp_path / "bad.txt"
    lines = (synthetic_lfw / "lfw_attributes.txt").read_text().splitlines()
    lines[5] = lines[5].rsplit("\t", 1)[0]  # drop one value
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "ds"
    result = runner.invoke(app,
                           ["prep-lfw", "--images", str(synthetic_lfw / "lfw"), "--attributes",
                            str(bad), "--out", str(out)])
    assert result.exit_code == 1
    assert f"{bad}:6: expected 75 tab-separated fields" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_split_is_identity_disjoint_seeded_and_honours_test_people():
    persons = pd.Series([f"p{i // 3}" for i in range(300)])
    labelled = pd.Series([i % 7 != 0 for i in range(300)])
    a = split_by_identity(persons, labelled, seed=1, test_people=["p5", "p17"])
    b = split_by_identity(persons, labelled, seed=1, test_people=["p5", "p17"])
    c = split_by_identity(persons, labelled, seed=2)
    assert (a == b).all() and not (a == c).all()
    frame = pd.DataFrame({"person": persons, "split": a})
    assert (frame.groupby("person")["split"].nunique() == 1).all()
    assert set(frame.loc[frame.person.isin(["p5", "p17"]), "split"]) == {"test"}
    shares = frame["split"].value_counts(normalize=True)
    assert abs(shares["train"] - 0.8) < 0.05 and abs(shares["test"] - 0.1) < 0.05


def test_split_keeps_an_identity_larger_than_a_small_split_out_of_it():
    # one person with 40% of the images (like George W Bush in the partial real attribute file)
    persons = pd.Series(["giant"] * 400 + [f"p{i // 4}" for i in range(600)])
    labelled = pd.Series([True] * 1000)
    for seed in range(10):
        split = pd.Series(split_by_identity(persons, labelled, seed=seed))
        assert set(split[:400]) == {"train"}, seed
        shares = split.value_counts(normalize=True)
        # a giant visited late overshoots train a little; the small splits keep most of their share
        assert abs(shares["test"] - 0.1) < 0.04 and abs(shares["val"] - 0.1) < 0.04, (seed, shares.to_dict())


@pytest.fixture(scope="module")
def real_subset(real_lfw, tmp_path_factory) -> Path:
    """~250 real LFW images in the LFW folder layout, plus one corrupt and one truncated JPEG."""
    from data_prep.sources import iter_images

    root = tmp_path_factory.mktemp("real") / "lfw"
    for n, item in enumerate(iter_images(real_lfw)):
        if n == 250:
            break
        path = root / item.source.split("/", 1)[1]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item.data)
    (root / "Zz_Corrupt").mkdir()
    (root / "Zz_Corrupt" / "Zz_Corrupt_0001.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    donor = next(root.rglob("*.jpg")).read_bytes()
    (root / "Zz_Truncated").mkdir()
    (root / "Zz_Truncated" / "Zz_Truncated_0001.jpg").write_bytes(donor[: len(donor) // 3])
    return root


def test_real_lfw_folder_with_corrupt_files(real_subset, real_attributes, tmp_path):
    out = tmp_path / "ds"
    people = tmp_path / "test-people.txt"
    people.write_text("Aaron Eckhart\n")
    manifest = prepare_dataset(
        PrepConfig(images=real_subset, out=out, attributes=real_attributes, test_people=["Aaron_Eckhart"]),
        progress=False,
    )
    _, index, _ = check_contract(out)
    counts = manifest["counts"]
    assert counts["read"] == 252 and counts["images"] == 250
    assert counts["unreadable"] == 2
    assert {u["source"] for u in manifest["unreadable"]} == {
        "Zz_Corrupt/Zz_Corrupt_0001.jpg", "Zz_Truncated/Zz_Truncated_0001.jpg"}
    assert counts["aligned"] / counts["images"] >= 0.95
    assert index.loc[index.person == "Aaron_Eckhart", "split"].tolist() == ["test"]
    assert counts["labelled"] > 0 and counts["attribute_rows_without_image"] == 2302 - counts["labelled"]


@pytest.mark.slow
def test_real_lfw_tgz_streaming_labelled_only(real_lfw, real_attributes, tmp_path):
    out = tmp_path / "ds"
    manifest = prepare_dataset(
        PrepConfig(images=real_lfw, out=out, attributes=real_attributes, limit=120, labelled_only=True, size=32),
        progress=False,
    )
    _, index, _ = check_contract(out, size=32)
    assert len(index) == 120 and index["labelled"].all()
    assert index["source"].str.startswith("lfw/").all()
    assert manifest["counts"]["aligned"] >= 114


def _many_copies(lfw: Path, out: Path, copies: int) -> Path:
    """An LFW-layout folder holding ``copies`` renamed symlinked copies of every person in ``lfw``."""
    for k in range(copies):
        for person in lfw.iterdir():
            name = f"{person.name}_Copy{k}"
            (out / name).mkdir(parents=True)
            for image in person.iterdir():
                (out / name / image.name.replace(person.name, name)).symlink_to(image)
    return out


@pytest.mark.slow
def test_interrupted_run_leaves_no_output(synthetic_lfw, tmp_path):
    out = tmp_path / "ds"
    images = _many_copies(synthetic_lfw / "lfw", tmp_path / "lfw", copies=4)  # 320 images: seconds of work
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Restore Ctrl-C handling in the child: under a non-interactive shell's background job
    # (POSIX: SIGINT ignored, inherited by every descendant) the signal would never arrive.
    restore_sigint = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                      "from cli.main import app; sys.argv[0] = 'attrgan'; app()")
    proc = subprocess.Popen(
        [sys.executable, "-c", restore_sigint, "prep-lfw", "--images", str(images), "--out", str(out),
         "--batch-size", "4", "--no-progress"],
        cwd=Path(__file__).resolve().parents[1], env=env, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 120
    while not list(tmp_path.glob(".ds.tmp-*")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)  # let it write a few batches
    assert proc.poll() is None, "prep finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "interrupted" in stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".ds.tmp-*"))


def test_atomic_file_keeps_the_old_file_when_a_write_fails(tmp_path):
    target = tmp_path / "grid.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]
    with atomic_file(target) as tmp:
        assert tmp.suffix == ".png"  # writers that infer the format from the name still work
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and list(tmp_path.iterdir()) == [target]


def test_prep_lists_a_tiny_image_and_goes_on(synthetic_lfw, tmp_path):
    import json

    import numpy as np
    from PIL import Image

    photos = tmp_path / "lfw"
    shutil.copytree(synthetic_lfw / "lfw", photos)
    (photos / "Tiny_Person").mkdir()
    Image.fromarray(np.full((10, 9, 3), 120, np.uint8)).save(photos / "Tiny_Person" / "Tiny_Person_0001.jpg")
    out = tmp_path / "ds"
    result = CliRunner().invoke(app, ["prep-lfw", "--images", str(photos), "--out", str(out), "--size", "32",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["unreadable"] == 1
    assert manifest["unreadable"][0]["source"] == "Tiny_Person/Tiny_Person_0001.jpg"
    assert "too small" in manifest["unreadable"][0]["error"]
    assert manifest["counts"]["images"] == manifest["counts"]["read"] - 1 > 0
