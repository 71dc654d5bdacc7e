"""Stage data_prep, the other readers: CelebA in its official layout (folder or zip) and any labelled image
folder, through the one shared writer; synth-celeba as the test data."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import invoke, one_error

from attrgan.data.dataset import open_dataset


@pytest.fixture(scope="module")
def celeba(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("celeba") / "CelebA"
    result = invoke(["synth-celeba", root, "--images", "80", "--seed", "4"])
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def celeba_dataset(celeba, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("celeba-ds") / "ds"
    result = invoke(["prep-celeba", "--root", celeba, "--out", out, "--size", "32", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "crop        celeba" in result.output
    return out


@pytest.mark.slow
def test_synth_celeba_writes_the_official_layout(celeba, tmp_path):
    files = sorted((celeba / "img_align_celeba").iterdir())
    assert [f.name for f in files[:2]] == ["000001.jpg", "000002.jpg"] and len(files) == 80
    from PIL import Image

    assert Image.open(files[0]).size == (178, 218)
    lines = (celeba / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[0] == "80" and len(lines[1].split()) == 40 and lines[2].split()[0] == "000001.jpg"
    assert set(" ".join(lines[2:]).split()) - {f.name for f in files} == {"-1", "1"}
    landmarks = (celeba / "list_landmarks_align_celeba.txt").read_text().splitlines()
    assert landmarks[1].split()[0] == "lefteye_x" and len(landmarks[2].split()) == 11
    again = invoke(["synth-celeba", tmp_path / "again", "--images", "80", "--seed", "4", "--zip"])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "again" / "img_align_celeba.zip").is_file()
    assert not (tmp_path / "again" / "img_align_celeba").exists()
    assert (tmp_path / "again" / "list_attr_celeba.txt").read_text() == (celeba / "list_attr_celeba.txt").read_text()


def test_synth_celeba_writes_the_release_bytes(celeba):
    attr = (celeba / "list_attr_celeba.txt").read_bytes()
    assert attr.count(b"\r\n") == attr.count(b"\n") == 82  # CRLF, as released
    header = attr.split(b"\r\n")[1]
    assert header.endswith(b"Wearing_Necktie Young ")  # the release's trailing space
    assert re.fullmatch(rb"000001\.jpg( (-1| 1)){40}", attr.split(b"\r\n")[2])
    from data_prep.celeba import read_attribute_list

    names, rows, count = read_attribute_list(celeba / "list_attr_celeba.txt")
    assert len(names) == 40 and names[-1] == "Young" and count == len(rows) == 80  # not torchvision's 41
    landmarks = (celeba / "list_landmarks_align_celeba.txt").read_bytes().split(b"\r\n")
    assert re.fullmatch(rb"000001\.jpg [ 0-9]{2}( {2}[ 0-9]{3}){9}", landmarks[2]), landmarks[2]
    bbox = (celeba / "list_bbox_celeba.txt").read_bytes().split(b"\r\n")
    assert bbox[1] == b"image_id x_1 y_1 width height" and re.fullmatch(rb"000001\.jpg {4}35  10 178 218", bbox[2])
    for name in ("list_eval_partition.txt", "identity_CelebA.txt"):
        assert (celeba / name).read_bytes().startswith(b"000001.jpg ") and b"\r\n" in (celeba / name).read_bytes()


def test_every_layout_gives_the_flat_layouts_dataset(celeba, celeba_dataset, tmp_path):
    """synth-celeba's four layouts (the Drive tree zipped, torchvision's root with the folder and the
    zip, Kaggle's nested folder and CSVs without identities) through prep-celeba: the flat layout's
    images.npy and index.csv byte for byte (Kaggle's: every image its own person)."""
    flat_index = pd.read_csv(celeba_dataset / "index.csv")
    for layout, extra, found in (("drive", ["--zip"], "Img/img_align_celeba.zip"),
                                 ("torchvision", [], "celeba/img_align_celeba/"),
                                 ("kaggle", [], "img_align_celeba/img_align_celeba/")):
        root = tmp_path / layout
        made = invoke(["synth-celeba", root, "--images", "80", "--seed", "4", "--layout", layout, *extra])
        assert made.exit_code == 0, made.output
        result = invoke(["prep-celeba", "--root", root, "--out", tmp_path / f"{layout}-ds", "--size", "32",
                         "--no-progress"])
        assert result.exit_code == 0, result.output
        assert f"CelebA layout: {layout} ({root})" in result.output and f"images      {found}" in result.output
        ds = tmp_path / f"{layout}-ds"
        assert np.array_equal(np.load(ds / "images.npy"), np.load(celeba_dataset / "images.npy")), layout
        if layout == "kaggle":  # no identity file: the same rows, each image its own person
            index = pd.read_csv(ds / "index.csv")
            assert index.drop(columns="person").equals(flat_index.drop(columns="person"))
            assert index["person"].nunique() == len(index)
        else:
            assert (ds / "index.csv").read_bytes() == (celeba_dataset / "index.csv").read_bytes(), layout
        manifest = json.loads((ds / "manifest.json").read_text())
        assert manifest["source_details"]["layout"] == layout


def test_a_partial_copy_needs_subset_and_is_counted(celeba, celeba_dataset, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(celeba, partial)
    for number in range(61, 81):  # the last 20 images were never copied; the lists still name all 80
        (partial / "img_align_celeba" / f"{number:06d}.jpg").unlink()
    refused = invoke(["prep-celeba", "--root", partial, "--out", tmp_path / "never", "--no-progress"])
    one_error(refused, "000061.jpg has no image")
    assert "60 of 80 listed images present" in refused.output and "--subset" in refused.output
    result = invoke(["prep-celeba", "--root", partial, "--out", tmp_path / "ds", "--size", "32", "--subset",
                     "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "subset      60 of 80 listed images present (--subset)" in result.output
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["source_details"]["subset"] == {"listed": 80, "present": 60}
    assert np.array_equal(np.load(tmp_path / "ds" / "images.npy"), np.load(celeba_dataset / "images.npy")[:60])
    # a public copy of the list with fewer rows whose line 1 still counts the full release
    short = tmp_path / "short"
    shutil.copytree(partial, short)
    lines = (short / "list_attr_celeba.txt").read_bytes().split(b"\r\n")
    (short / "list_attr_celeba.txt").write_bytes(b"\r\n".join([b"202599", *lines[1:62], b""]))
    one_error(invoke(["prep-celeba", "--root", short, "--out", tmp_path / "never", "--no-progress"]),
              "says 202599 images, the file has 60 rows; for a partial copy of the list, pass --subset")
    result = invoke(["prep-celeba", "--root", short, "--out", tmp_path / "short-ds", "--size", "32", "--subset",
                     "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "short-ds" / "images.npy").read_bytes() == (tmp_path / "ds" / "images.npy").read_bytes()


def test_no_layout_fits_names_the_layouts_and_the_nearest(celeba, tmp_path):
    drive = tmp_path / "drive"
    assert invoke(["synth-celeba", drive, "--images", "8", "--layout", "drive", "--zip"]).exit_code == 0
    (drive / "Eval" / "list_eval_partition.txt").unlink()
    result = invoke(["prep-celeba", "--root", drive, "--out", tmp_path / "never", "--no-progress"])
    one_error(result, "no CelebA layout fits")
    assert all(name in result.output for name in ("flat:", "torchvision:", "drive:", "kaggle:"))
    assert "nearest: drive, which lacks Eval/list_eval_partition.txt" in result.output
    whole = tmp_path / "whole"
    assert invoke(["synth-celeba", whole, "--images", "8", "--layout", "drive", "--zip"]).exit_code == 0
    one_error(invoke(["prep-celeba", "--root", whole / "Img", "--out", tmp_path / "never", "--no-progress"]),
              f"its parent {whole.resolve()} fits the drive layout: pass --root {whole.resolve()}")


@pytest.mark.slow
def test_align_landmarks_puts_the_files_landmarks_on_prep_lfws_template(celeba, tmp_path):
    from data_prep.align import TEMPLATE, LandmarkAligner, template_pixels

    turn = np.radians(8)  # a CelebA-sized face: the template turned, scaled and moved
    points = TEMPLATE @ (140 * np.array([[np.cos(turn), np.sin(turn)], [-np.sin(turn), np.cos(turn)]])) + (25, 45)
    ys, xs = np.mgrid[0:218, 0:178]
    ramps = np.stack([xs, ys, np.zeros_like(xs)], -1).astype(np.uint8)  # each pixel holds its own (x, y)
    crop = LandmarkAligner(64).align_images([ramps], [points]).crops[0].astype(float)
    v, u = np.mgrid[8:56, 8:56]  # the crop's interior: which source pixel each crop pixel shows, fitted
    grid = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], 1)
    shown, *_ = np.linalg.lstsq(grid,
                                np.stack([crop[0][8:56, 8:56].ravel(), crop[1][8:56, 8:56].ravel()], 1), rcond=None)
    at_template = np.hstack([template_pixels(64), np.ones((5, 1))]) @ shown
    assert np.abs(at_template - points).max() < 0.3  # each template point shows its landmark
    kaggle = tmp_path / "kaggle"
    assert invoke(["synth-celeba", kaggle, "--images", "80", "--seed", "4", "--layout", "kaggle"]).exit_code == 0
    for root, out in ((celeba, tmp_path / "txt"), (kaggle, tmp_path / "csv")):  # the release's .txt, Kaggle's .csv
        result = invoke(["prep-celeba", "--root", root, "--out", out, "--align", "landmarks", "--size", "32",
                         "--no-progress"])
        assert result.exit_code == 0, result.output
        assert "crop        landmarks" in result.output
    manifest = json.loads((tmp_path / "txt" / "manifest.json").read_text())
    assert manifest["alignment"]["method"] == "landmarks" and "landmarks" in manifest["inputs"]
    assert open_dataset(tmp_path / "txt").index["aligned"].all()
    assert (tmp_path / "txt" / "images.npy").read_bytes() == (tmp_path / "csv" / "images.npy").read_bytes()
    (kaggle / "list_landmarks_align_celeba.csv").unlink()
    one_error(invoke(["prep-celeba", "--root", kaggle, "--out", tmp_path / "never", "--align", "landmarks"]),
              "--align landmarks needs list_landmarks_align_celeba.txt")


def test_prep_celeba_keeps_the_official_split_and_the_values(celeba, celeba_dataset):
    dataset = open_dataset(celeba_dataset)
    manifest = dataset.manifest
    assert manifest["source"] == "celeba" and manifest["split"]["from"] == "source"
    assert set(manifest["attribute_kinds"].values()) == {"binary"} and len(manifest["attribute_names"]) == 40
    assert manifest["alignment"]["method"] == "celeba" and manifest["alignment"]["box"] == {"left": 15, "top": 40,
                                                                                             "side": 148}
    index = dataset.index
    partition = dict(line.split() for line in (celeba / "list_eval_partition.txt").read_text().splitlines())
    expected = [{"0": "train", "1": "val", "2": "test"}[partition[Path(s).name]] for s in index["source"]]
    assert index["split"].tolist() == expected
    identity = dict(line.split() for line in (celeba / "identity_CelebA.txt").read_text().splitlines())
    assert index["person"].astype(str).tolist() == [identity[Path(s).name] for s in index["source"]]
    listed = (celeba / "list_attr_celeba.txt").read_text().splitlines()[2:]
    rows = {line.split()[0]: line.split()[1:] for line in listed}
    first = Path(index["source"][0]).name
    np.testing.assert_array_equal(index.loc[0, manifest["attribute_names"]].to_numpy(float),
                                  np.asarray(rows[first], float))  # values kept as given (-1/1)
    assert dataset.images.shape == (80, 3, 32, 32) and index["labelled"].all()


def test_the_zip_and_the_folder_give_the_same_dataset(celeba, celeba_dataset, tmp_path):
    zipped = tmp_path / "zipped"
    shutil.copytree(celeba, zipped, ignore=shutil.ignore_patterns("img_align_celeba"))
    shutil.make_archive(str(zipped / "img_align_celeba"), "zip", celeba, "img_align_celeba")
    result = invoke(["prep-celeba", "--root", zipped, "--out", tmp_path / "ds", "--size", "32", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.load(tmp_path / "ds" / "images.npy"), np.load(celeba_dataset / "images.npy"))
    assert (tmp_path / "ds" / "index.csv").read_text() == (celeba_dataset / "index.csv").read_text()
    assert not (zipped / "img_align_celeba").exists()  # read from the zip, never extracted


def test_malformed_celeba_files_are_named_with_file_and_line(celeba, tmp_path):
    def broken(name: str, edit) -> Path:
        root = tmp_path / f"broken-{name}-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(celeba, root)
        edit(root)
        return root

    def rewrite(file: str, change):
        def edit(root: Path) -> None:
            lines = (root / file).read_text().splitlines()
            (root / file).write_text("\n".join(change(lines)) + "\n")
        return edit

    attr = "list_attr_celeba.txt"
    cases = [
        (rewrite(attr, lambda rows: rows[:4] + [rows[4].rsplit(" ", 1)[0]] + rows[5:]),
         f"{attr}:5: expected a file name and 40 values"),
        (rewrite(attr, lambda rows: rows[:3] + [rows[3].replace(" -1", "  0", 1)] + rows[4:]),
         f"{attr}:4: attribute value '0' is not -1 or 1"),
        (rewrite(attr, lambda rows: ["81"] + rows[1:]), f"{attr}:1: says 81 images, the file has 80 rows"),
        (rewrite(attr, lambda rows: ["81"] + rows[1:] + [rows[-1].replace(rows[-1].split()[0], "000099.jpg")]),
         f"{attr}:83: 000099.jpg has no image"),
        (lambda root: (root / "img_align_celeba" / "000080.jpg").unlink(), f"{attr}:82: 000080.jpg has no image"),
        (lambda root: shutil.copy(root / "img_align_celeba" / "000001.jpg", root / "img_align_celeba" / "000200.jpg"),
         "000200.jpg: no row in list_attr_celeba.txt"),
        (rewrite("list_eval_partition.txt", lambda rows: rows[:1] + [rows[1].split()[0] + " 3"] + rows[2:]),
         "list_eval_partition.txt:2: partition '3' is not one of 0, 1, 2"),
        (lambda root: (root / "list_eval_partition.txt").unlink(),
         "nearest: flat, which lacks list_eval_partition.txt"),
    ]
    for edit, fragment in cases:
        root = broken("case", edit)
        result = invoke(["prep-celeba", "--root", root, "--out", tmp_path / "never", "--no-progress"])
        one_error(result, fragment)
    assert not (tmp_path / "never").exists()
    unreadable = broken("corrupt", lambda root: (root / "img_align_celeba" / "000003.jpg").write_bytes(b"not a jpeg"))
    result = invoke(["prep-celeba", "--root", unreadable, "--out", tmp_path / "ok", "--size", "32", "--no-progress"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "ok" / "manifest.json").read_text())
    assert manifest["counts"]["unreadable"] == 1
    assert manifest["unreadable"][0]["source"] == "img_align_celeba/000003.jpg"


def test_prep_folder_from_a_csv_of_the_synthetic_celeba(celeba, celeba_dataset, tmp_path):
    """The CelebA images as a user's folder with a CSV (0/1 labels, identities, no split column)."""
    lines = (celeba / "list_attr_celeba.txt").read_text().splitlines()
    names = lines[1].split()
    identity = dict(line.split() for line in (celeba / "identity_CelebA.txt").read_text().splitlines())
    rows = [line.split() for line in lines[2:]]
    labels = pd.DataFrame([[r[0], identity[r[0]], *((int(v) + 1) // 2 for v in r[1:])] for r in rows],
                          columns=["file", "identity", *names])
    csv = tmp_path / "labels.csv"
    labels.to_csv(csv, index=False)
    out = tmp_path / "ds"
    result = invoke(["prep-folder", "--images", celeba / "img_align_celeba", "--attributes", csv, "--out", out,
                     "--align", "none", "--size", "32", "--no-progress"])
    assert result.exit_code == 0, result.output
    dataset = open_dataset(out)
    assert dataset.manifest["source"] == "folder" and dataset.manifest["split"]["from"] == "seed"
    assert set(dataset.manifest["attribute_kinds"].values()) == {"binary"}
    index = dataset.index
    assert len(index) == 80 and set(index[names].stack().unique()) == {0.0, 1.0}  # kept as given
    for person, splits in index.groupby("person")["split"]:
        assert splits.nunique() == 1, person  # identity-disjoint
    assert "its own person" not in result.output
    labels.drop(columns="identity").to_csv(tmp_path / "anonymous.csv", index=False)
    anonymous = invoke(["prep-folder", "--images", celeba / "img_align_celeba", "--attributes",
                        tmp_path / "anonymous.csv",
                        "--out", tmp_path / "anonymous", "--align", "none", "--size", "32", "--no-progress"])
    assert anonymous.exit_code == 0 and "every image counts as its own person" in anonymous.output, anonymous.output
    with_split = labels.assign(split=["test" if i % 5 == 0 else "train" for i in range(len(labels))])
    with_split.to_csv(tmp_path / "split.tsv", sep="\t", index=False)
    kept = invoke(["prep-folder", "--images", celeba / "img_align_celeba", "--attributes", tmp_path / "split.tsv",
                   "--out", tmp_path / "kept", "--align", "none", "--size", "32", "--no-progress"])
    assert kept.exit_code == 0, kept.output
    index = open_dataset(tmp_path / "kept").index
    assert index.set_index("source")["split"].to_dict() == dict(zip(with_split["file"], with_split["split"]))


@pytest.mark.slow
def test_prep_folder_reads_kaggles_csv_and_keeps_a_split_file(celeba, tmp_path):
    kaggle = tmp_path / "kaggle"
    assert invoke(["synth-celeba", kaggle, "--images", "80", "--seed", "4", "--layout", "kaggle"]).exit_code == 0
    argv = ["prep-folder", "--images", kaggle / "img_align_celeba" / "img_align_celeba", "--attributes",
            kaggle / "list_attr_celeba.csv", "--align", "none", "--size", "32", "--no-progress"]
    seeded = invoke([*argv, "--out", tmp_path / "seeded"])  # image_id is a file-name column
    assert seeded.exit_code == 0, seeded.output
    assert "split       seeded (--seed 0, fractions 0.8/0.1/0.1, by identity): the source gives none" in seeded.output
    for split_file in (kaggle / "list_eval_partition.csv", celeba / "list_eval_partition.txt"):
        kept = invoke([*argv, "--split-file", split_file, "--out", tmp_path / split_file.suffix[1:], "--force"])
        assert kept.exit_code == 0, kept.output
        assert "split       the source's own, kept as given" in kept.output
        index = open_dataset(tmp_path / split_file.suffix[1:]).index
        partition = dict(line.split() for line in (celeba / "list_eval_partition.txt").read_text().splitlines())
        assert index["split"].tolist() == [("train", "val", "test")[int(partition[s])] for s in index["source"]]
    words = tmp_path / "words.txt"  # train/val/test words, and entries for images that are not here
    words.write_text("".join(f"{n:06d}.jpg {('train', 'val', 'test')[n % 3]}\n" for n in range(1, 201)))
    assert invoke([*argv, "--split-file", words, "--out", tmp_path / "words"]).exit_code == 0
    assert open_dataset(tmp_path / "words").index["split"].tolist()[:3] == ["val", "test", "train"]
    words.write_text("".join(f"{n:06d}.jpg 1\n" for n in range(2, 81)))
    one_error(invoke([*argv, "--split-file", words, "--out", tmp_path / "never"]), "000001.jpg: no entry in")
    words.write_text("000001.jpg holdout\n")
    one_error(invoke([*argv, "--split-file", words, "--out", tmp_path / "never"]),
              "words.txt:1: split 'holdout' is not one of")


def test_prep_folder_errors_name_the_file_and_line(celeba, tmp_path):
    images = celeba / "img_align_celeba"
    files = sorted(p.name for p in images.iterdir())
    good = pd.DataFrame({"file": files, "Smiling": [1.5] * len(files), "Male": [-1] * len(files)})
    cases = [
        (good.iloc[1:], "000001.jpg: no row in"),
        (pd.concat([good, good.iloc[[3]]]), ":82: a second row for 000004.jpg (first on line 5)"),
        (pd.concat([good, pd.DataFrame({"file": ["missing.jpg"], "Smiling": [0], "Male": [1]})]),
         ":82: missing.jpg has no image"),
        (good.assign(Smiling=["1.5"] * 5 + ["yes"] + ["1.5"] * (len(files) - 6)),
         ":7: Smiling value 'yes' is not a finite"),
        (good.rename(columns={"file": "name"}), "no file-name column"),
    ]
    for frame, fragment in cases:
        csv = tmp_path / "labels.csv"
        frame.to_csv(csv, index=False)
        result = invoke(["prep-folder", "--images", images, "--attributes", csv, "--out", tmp_path / "never",
                         "--no-progress"])
        one_error(result, fragment)
    assert not (tmp_path / "never").exists()


@pytest.mark.slow
def test_reproduce_runs_the_pipeline_on_celeba(celeba, tmp_path):
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "exp"
    result = invoke(["reproduce", "--dataset", "celeba", "--images", celeba, "--config", root / "configs" / "demo.yaml",
                     "--out", out, "--models", "vae", "--size", "32", "--condition-on", "Male,Smiling,Eyeglasses",
                     "--regressor-channels", "8,16,32", "--regressor-fc", "32", "--regressor-epochs", "1",
                     "--seeds", "1", "--eval-every", "0", "--device", "cpu", "--no-progress",
                     "--set", "train.max_steps=2", "--set", "train.sample_every_epoch=false"])
    assert result.exit_code == 0, result.output
    assert "[1/4] prep-celeba" in result.output
    assert open_dataset(out / "dataset").manifest["source"] == "celeba"
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert metrics["attribute_names"] == ["Male", "Smiling", "Eyeglasses"] and metrics["models"][0]["kind"] == "vae"
    one_error(invoke(["reproduce", "--dataset", "celeba", "--images", celeba, "--attributes",
                      celeba / "list_attr_celeba.txt",
                      "--config", root / "configs" / "demo.yaml", "--out", tmp_path / "other"]),
              "--dataset celeba reads its attributes from the root")


def test_reproduce_passes_subset_and_align_to_prep_celeba(celeba, tmp_path):
    """A partial copy through reproduce: refused with the flag to pass, then prepared with the
    release's landmarks as prep-celeba --subset --align landmarks does; --align is checked per source."""
    root = Path(__file__).resolve().parents[1]
    partial = tmp_path / "partial"
    shutil.copytree(celeba, partial)
    for number in range(61, 81):
        (partial / "img_align_celeba" / f"{number:06d}.jpg").unlink()
    base = ["reproduce", "--dataset", "celeba", "--images", partial, "--config", root / "configs" / "demo.yaml",
            "--models", "vae", "--size", "32", "--condition-on", "Male,Smiling", "--regressor-channels", "8,16,32",
            "--regressor-fc", "32", "--regressor-epochs", "1", "--seeds", "1", "--eval-every", "0", "--device", "cpu",
            "--no-progress", "--set", "train.max_steps=1", "--set", "train.sample_every_epoch=false"]
    one_error(invoke([*base, "--out", tmp_path / "refused"]), "pass --subset")
    assert not (tmp_path / "refused" / "dataset").exists()
    result = invoke([*base, "--out", tmp_path / "exp", "--subset", "--align", "landmarks"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "exp" / "dataset" / "manifest.json").read_text())
    assert manifest["source_details"]["subset"] == {"listed": 80, "present": 60}
    assert manifest["alignment"]["method"] == "landmarks"
    prepped = invoke(["prep-celeba", "--root", partial, "--out", tmp_path / "ds", "--size", "32", "--subset",
                      "--align", "landmarks", "--no-progress"])
    assert prepped.exit_code == 0, prepped.output
    assert (tmp_path / "ds" / "images.npy").read_bytes() == (tmp_path / "exp" / "dataset" / "images.npy").read_bytes()
    one_error(invoke([*base, "--out", tmp_path / "exp", "--subset", "--align", "celeba"]), "align changed")
    one_error(invoke(["reproduce", "--images", partial, "--attributes", partial / "list_attr_celeba.txt", "--config",
                      root / "configs" / "demo.yaml", "--out", tmp_path / "lfw", "--align", "landmarks"]),
              "--align for lfw must be mtcnn, got 'landmarks'")
    one_error(invoke(["reproduce", "--dataset", "folder", "--images", partial, "--attributes", partial / "x.csv",
                      "--config", root / "configs" / "demo.yaml", "--out", tmp_path / "f", "--subset"]),
              "--subset is for --dataset celeba")


def test_unconditional_model_edits_with_binary_attribute_vectors(celeba_dataset, photos, tmp_path):
    """--condition-on none: no attributes in any layer, trained on every train image; attribute
    vectors from CelebA's -1/1 labels (split at 0), applied by edit --mode latent and the studio."""
    import torch

    import attrgan
    from attrgan.data.dataset import load_images
    from attrgan.editing.edits import load_attribute_vectors
    from attrgan.editing.studio import load_studio

    root, run = Path(__file__).resolve().parents[1], tmp_path / "run"
    result = invoke(["train-conditional", "--data", celeba_dataset, "--config", root / "configs" / "demo.yaml",
                     "--condition-on", "none", "--max-steps", "4", "--batch-size", "16", "--device", "cpu",
                     "--no-progress", "--out", run, "--set", "train.sample_every_epoch=false"])
    assert result.exit_code == 0, result.output
    model, dataset = attrgan.load(run), open_dataset(celeba_dataset)
    assert model.attribute_names == [] and model.nets["decoder"].condition.width == 0
    assert json.loads((run / "run.json").read_text())["train_images"] == len(dataset.rows("train", labelled_only=False))

    result = invoke(["attribute-vectors", "--checkpoint", run, "--data", celeba_dataset, "--out", tmp_path / "v.pt"])
    assert result.exit_code == 0, result.output
    vectors = load_attribute_vectors(tmp_path / "v.pt")
    assert dataset.manifest["attribute_kinds"]["Eyeglasses"] == "binary" and "Eyeglasses" in vectors
    rows = dataset.rows("train")
    labels = dataset.attributes(rows, ["Eyeglasses"])[:, 0]
    codes = model.encode(load_images(dataset, rows, 32), np.zeros((len(rows), 0), np.float32))
    expected = codes[torch.from_numpy(labels > 0)].mean(0) - codes[torch.from_numpy(labels < 0)].mean(0)
    torch.testing.assert_close(vectors["Eyeglasses"], expected, rtol=1e-4, atol=1e-5)

    base = ["edit", "--checkpoint", run, photos / "astronaut.png", "--attribute", "Eyeglasses", "--device", "cpu"]
    result = invoke(base + ["--mode", "latent", "--vectors", tmp_path / "v.pt", "--strength", "-2,0,2",
                            "--out", tmp_path / "edit.png"])
    assert result.exit_code == 0, result.output
    one_error(invoke(base + ["--mode", "condition", "--out", tmp_path / "no.png"]),
              "an unconditional model has no attribute 'Eyeglasses'")

    # the Figure-5 measure: at strength 0 nothing moves; at 2 every figure is finite
    result = invoke(["train-regressor", "--data", celeba_dataset, "--out", tmp_path / "reg", "--image-size", "32",
                     "--channels", "8,16,32", "--fc", "32", "--epochs", "1", "--device", "cpu", "--no-progress"])
    assert result.exit_code == 0, result.output
    scores = {}
    for strength in ("0", "2"):
        result = invoke(["eval-vectors", "--checkpoint", run, "--vectors", tmp_path / "v.pt", "--regressor",
                         tmp_path / "reg", "--data", celeba_dataset, "--split", "train", "--strength", strength,
                         "--device", "cpu", "--out", tmp_path / f"scores{strength}.json"])
        assert result.exit_code == 0, result.output
        written = json.loads((tmp_path / f"scores{strength}.json").read_text())
        scores[strength] = {r["attribute"]: r for r in written["scores"]}
    assert set(scores["0"]) == set(vectors)
    assert all(r["moved"] == 0 and r["others"] == 0 and r["present_before"] == r["present_after"]
               for r in scores["0"].values())
    assert all(np.isfinite([r["moved"], r["others"]]).all() for r in scores["2"].values())

    studio = load_studio(run, vectors=tmp_path / "v.pt", device="cpu")
    described = studio.describe()
    assert described["modes"] == ["latent"] and {a["name"] for a in described["attributes"]} == set(vectors)
    face = studio.test_faces(0, 1)[0]
    moved = studio.edit(face, {"Eyeglasses": 2.0}, "latent")
    assert not torch.equal(moved, studio.edit(face, {}, "latent"))


def test_reproduce_condition_on_none_scores_attribute_vectors(celeba, tmp_path):
    root = Path(__file__).resolve().parents[1]
    base = ["reproduce", "--dataset", "celeba", "--images", celeba, "--config", root / "configs" / "demo.yaml",
            "--size", "32", "--condition-on", "none", "--regressor-channels", "8,16,32", "--regressor-fc", "32",
            "--regressor-epochs", "1", "--eval-every", "0", "--device", "cpu", "--no-progress",
            "--set", "train.max_steps=2", "--set", "train.sample_every_epoch=false"]
    result = invoke(base + ["--models", "vae", "--out", tmp_path / "exp"])
    assert result.exit_code == 0, result.output
    assert "[4/4] attribute-vectors + eval-vectors" in result.output
    assert "vae: vector edits at strength 2" in result.output
    assert any(" serve " in line and "--vectors" in line for line in result.output.splitlines())  # its studio
    report = tmp_path / "exp" / "report"
    scores = json.loads((report / "metrics.json").read_text())["vector_scores"]["vae"]
    assert {"Eyeglasses", "Smiling"} <= {r["attribute"] for r in scores}
    assert (report / "edits_vae.png").is_file() and (report / "vectors_vae.pt").is_file()
    assert "edits_vae.png" in (report / "report.md").read_text()
    one_error(invoke(base + ["--models", "vae,gan", "--out", tmp_path / "gan"]), "a GAN has no encoder")


def test_the_regressor_has_a_logistic_head_for_binary_attributes(celeba_dataset, tmp_path):
    """CelebA's -1/1 attributes: BCE on logits, predictions as expected values in [-1, 1],
    per-attribute accuracy on the real test images."""
    import torch

    from attrgan.data.dataset import load_images
    from attrgan.evaluation.regressor import load_regressor

    result = invoke(["train-regressor", "--data", celeba_dataset, "--out", tmp_path / "reg", "--image-size", "32",
                     "--channels", "8,16,32", "--fc", "32", "--epochs", "2", "--device", "cpu", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "binary attributes: mean accuracy" in result.output
    metrics = json.loads((tmp_path / "reg" / "metrics.json").read_text())
    dataset = open_dataset(celeba_dataset)
    assert set(metrics["test"]["accuracy"]) == set(dataset.attribute_names)
    regressor = load_regressor(tmp_path / "reg")
    assert regressor.outputs.binary.all()
    rows = dataset.rows("test")
    raw, _ = regressor.predict_raw(load_images(dataset, rows, 32), torch.device("cpu"))
    assert raw.min() > -1 and raw.max() < 1  # expected values of -1/1 labels, never beyond them
    truth = dataset.attributes(rows)
    accuracy = ((raw > 0) == (truth > 0)).mean(0)
    assert np.allclose([metrics["test"]["accuracy"][n] for n in dataset.attribute_names], accuracy, atol=1e-4)


def test_prep_out_inside_the_celeba_root_is_refused(celeba):
    before = sorted(p.relative_to(celeba).as_posix() for p in celeba.rglob("*"))
    for force in ([], ["--force"]):
        one_error(invoke(["prep-celeba", "--root", celeba, "--out", celeba / "prepared", "--no-progress", *force]),
                  "overlaps the input")
    assert sorted(p.relative_to(celeba).as_posix() for p in celeba.rglob("*")) == before


def test_symlinked_person_folders_are_read_and_a_link_loop_is_walked_once(synthetic_lfw, tmp_path):
    from data_prep.sources import count_images, iter_images

    linked = tmp_path / "lfw"
    shutil.copytree(synthetic_lfw / "lfw", linked)
    people = sorted(p.name for p in linked.iterdir())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in people[:2]:  # two person folders kept elsewhere, linked into the tree
        shutil.move(linked / name, elsewhere / name)
        (linked / name).symlink_to(elsewhere / name, target_is_directory=True)
    (linked / people[2] / "loop").symlink_to(linked, target_is_directory=True)  # a link back up the tree
    original = [(i.person, i.imagenum, i.source, i.data) for i in iter_images(synthetic_lfw / "lfw")]
    assert [(i.person, i.imagenum, i.source, i.data) for i in iter_images(linked)] == original
    assert count_images(linked) == len(original) > 0
