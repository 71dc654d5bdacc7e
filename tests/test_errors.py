"""The error taxonomy (attrgan.runtime.errors, cli.common.user_errors): a user's mistake or a
named OS condition is one `error:` line and exit 1; anything else is a bug, printed with its
traceback and exit 70. And the cases that need their own inputs: a save that fails, CelebA
zips and trees as users have them, names in another Unicode form, what the OS refuses to read."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import typer
from helpers import ROOT, TINY_MODEL, invoke, one_error
from typer.testing import CliRunner

from attrgan.runtime.errors import EXIT_BUG, UserError
from cli.common import user_errors

runner = CliRunner()






def run_wrapped(raise_it) -> "typer.testing.Result":
    """Run a one-command app whose command calls ``raise_it``, through the CLI's error wrapper."""
    single = typer.Typer(pretty_exceptions_enable=False)

    @single.command()
    def command() -> None:
        raise_it()

    single.registered_commands[0].callback = user_errors(command)
    return runner.invoke(single, [])


def test_a_bug_prints_its_traceback_a_summary_and_how_to_report_it():
    result = run_wrapped(lambda: {}["no such key"])
    assert result.exit_code == EXIT_BUG == 70, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "Traceback (most recent call last):" and "KeyError: 'no such key'" in result.output
    assert lines[-2] == "internal error: KeyError: 'no such key'"
    assert lines[-1].startswith("This is a bug in attrgan") and not any(line.startswith("error:") for line in lines)


def test_user_errors_and_named_os_conditions_are_one_line():
    def full_disk():
        raise OSError(28, "No space left on device", "/data/run/checkpoint.pt")

    def missing():
        open("/no/such/file.yaml")

    for raise_it, line in ((lambda: (_ for _ in ()).throw(UserError("--seeds must be >= 1")), "--seeds must be >= 1"),
                           (full_disk, "/data/run/checkpoint.pt: No space left on device"),
                           (missing, "/no/such/file.yaml: No such file or directory")):
        result = run_wrapped(raise_it)
        assert (result.exit_code, result.output) == (1, f"error: {line}\n")


def test_out_of_memory_reads_as_itself_with_the_batch_size_to_lower():
    def oom():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore advice")

    result = run_wrapped(oom)
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output.startswith("error: out of memory (CUDA out of memory. Tried to allocate 2.00 GiB); lower "
                                    "the batch size")
    host = run_wrapped(lambda: bytearray(1 << 62))  # this machine's memory: Python's MemoryError
    assert host.exit_code == 1 and host.output.startswith("error: out of memory (MemoryError); lower the batch size")


def test_no_assert_checks_inputs_in_the_library():
    import ast

    found = [f"{path.relative_to(ROOT)}:{node.lineno}" for package in ("attrgan", "cli", "data_prep")
             for path in (ROOT / package).rglob("*.py") for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Assert)]
    assert not found, found


def _limited_file_size(limit: int):
    def apply() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, like a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    return apply


@pytest.mark.slow
def test_a_checkpoint_save_that_fails_leaves_the_run_folder_as_it_was(synthetic_dataset, tmp_path):
    """A disk that fills during a save: the error names the checkpoint; config.yaml, run.json,
    metrics.csv and checkpoint.pt are as the last kept checkpoint left them."""
    config = tmp_path / "tiny.yaml"
    config.write_text("model: {" + ", ".join(f"{k}: {v}" for k, v in TINY_MODEL.items()) + "}\n"
                      "train: {batch_size: 16, device: cpu, sample_every_epoch: false, checkpoint_every: 2, "
                      "precision: fp32}\n")
    run = tmp_path / "run"
    train = [sys.executable, "-m", "cli.main", "train-conditional", "--data", synthetic_dataset, "--config", config,
             "--out", run, "--no-progress"]
    first = subprocess.run([*map(str, train), "--max-steps", "2"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    kept = {name: (run / name).read_bytes() for name in ("checkpoint.pt", "config.yaml", "run.json", "metrics.csv")}
    limit = len(kept["checkpoint.pt"]) // 2  # metrics.csv, config.yaml and run.json fit; a checkpoint does not
    resumed = subprocess.run([*map(str, train), "--resume", "--max-steps", "6", "--allow-changes", "--set",
                              "optim.lr=1e-4"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                             preexec_fn=_limited_file_size(limit))
    assert resumed.returncode == 1, resumed.stderr
    assert resumed.stderr.strip().splitlines()[-1] == (
        f"error: {run / 'checkpoint.pt'}: File too large while writing it (nothing was replaced); free some space or "
        "write elsewhere")
    assert {name: (run / name).read_bytes() for name in kept} == kept
    fresh = subprocess.run([*map(str, train), "--out", tmp_path / "fresh", "--max-steps", "2"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300, preexec_fn=_limited_file_size(limit))
    assert fresh.returncode == 1 and "File too large" in fresh.stderr, fresh.stderr
    assert sorted(p.name for p in (tmp_path / "fresh").iterdir()) == []  # no record of a run that never saved


@pytest.fixture(scope="module")
def celeba(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("celeba") / "CelebA"
    assert invoke(["synth-celeba", root, "--images", "12", "--seed", "2"]).exit_code == 0
    return root


def test_a_zip_written_on_windows_is_read(celeba, tmp_path):
    copy = tmp_path / "windows"
    shutil.copytree(celeba, copy, ignore=shutil.ignore_patterns("img_align_celeba"))
    with zipfile.ZipFile(copy / "img_align_celeba.zip", "w") as archive:
        for image in sorted((celeba / "img_align_celeba").iterdir()):
            archive.write(image, f"img_align_celeba\\{image.name}")  # backslashes, as Windows tools write them
    result = invoke(["prep-celeba", "--root", copy, "--out", tmp_path / "ds", "--size", "32", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "ds" / "index.csv")) == 12


def test_images_under_other_names_or_a_folder_too_deep_are_named(celeba, tmp_path):
    renamed = tmp_path / "renamed"
    shutil.copytree(celeba, renamed)
    for image in (renamed / "img_align_celeba").iterdir():
        image.rename(image.with_name(f"img_{image.name}"))
    one_error(invoke(["prep-celeba", "--root", renamed, "--out", tmp_path / "never", "--subset", "--no-progress"]),
              "has a name list_attr_celeba.txt lists (it lists e.g. '000001.jpg'; here is e.g. 'img_000001.jpg')")
    nested = tmp_path / "nested"
    assert invoke(["synth-celeba", nested, "--images", "6", "--layout", "drive"]).exit_code == 0
    images = nested / "Img" / "img_align_celeba"
    (images / "img_align_celeba").mkdir()
    for image in images.glob("*.jpg"):
        image.rename(images / "img_align_celeba" / image.name)
    result = invoke(["prep-celeba", "--root", nested, "--out", tmp_path / "never", "--no-progress"])
    one_error(result, f"the images are one folder further in, in {images / 'img_align_celeba'}")
    assert "--subset" not in result.output


def test_a_person_folder_named_in_decomposed_unicode_keeps_its_labels(synthetic_lfw, tmp_path):
    root = tmp_path / "lfw-root"
    shutil.copytree(synthetic_lfw, root)
    table = (root / "lfw_attributes.txt").read_text(encoding="utf-8")
    person = sorted(p.name for p in (root / "lfw").iterdir())[0]
    composed = unicodedata.normalize("NFC", f"José_{person}")
    (root / "lfw_attributes.txt").write_text(table.replace(person.replace("_", " ") + "\t",
                                                           composed.replace("_", " ") + "\t"), encoding="utf-8")
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    folder = root / "lfw" / person
    for image in folder.iterdir():
        image.rename(folder / image.name.replace(person, decomposed))
    folder.rename(root / "lfw" / decomposed)
    result = invoke(["prep-lfw", "--images", root / "lfw", "--attributes", root / "lfw_attributes.txt", "--out",
                     tmp_path / "ds", "--size", "32", "--device", "cpu", "--no-progress"])
    assert result.exit_code == 0, result.output
    index = pd.read_csv(tmp_path / "ds" / "index.csv")
    rows = index[index["person"] == composed]
    assert len(rows) == len(list((root / "lfw" / decomposed).iterdir())) and rows["labelled"].all()


def as_unprivileged() -> dict:
    """subprocess arguments under which file permissions hold: root reads and writes every file
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so a root run drops both before it starts."""
    if os.geteuid() != 0:
        return {}

    def drop_file_capabilities() -> None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH: gone from the bounding set at exec
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")
    return {"preexec_fn": drop_file_capabilities}


@pytest.mark.slow
def test_what_the_os_refuses_to_read_is_listed_and_a_read_only_output_is_named(synthetic_lfw, tmp_path):
    root = tmp_path / "lfw-root"
    shutil.copytree(synthetic_lfw, root)
    people = sorted(p for p in (root / "lfw").iterdir())
    locked_folder, locked_image = people[0], sorted(people[1].iterdir())[0]
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    locked_folder.chmod(0o000)
    locked_image.chmod(0o000)
    prep = [sys.executable, "-m", "cli.main", "prep-lfw", "--images", root / "lfw", "--attributes",
            root / "lfw_attributes.txt", "--size", "32", "--device", "cpu", "--no-progress", "--out"]
    result = subprocess.run([*map(str, prep), tmp_path / "ds"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, **as_unprivileged())
    locked_folder.chmod(0o755)
    assert result.returncode == 0, result.stderr
    manifest = __import__("json").loads((tmp_path / "ds" / "manifest.json").read_text())
    unreadable = {entry["source"]: entry["error"] for entry in manifest["unreadable"]}
    assert unreadable == {f"{locked_folder.name}/": "PermissionError: Permission denied (the folder could not be "
                                                    "listed)",
                          f"{people[1].name}/{locked_image.name}": "PermissionError: Permission denied"}
    assert manifest["counts"]["unreadable"] == 2
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o555)
    read_only.chmod(0o555)
    refused = subprocess.run([*map(str, prep), read_only / "ds"], cwd=ROOT, capture_output=True, text=True,
                             timeout=300, **as_unprivileged())
    assert refused.returncode == 1 and refused.stderr.count("error:") == 1, refused.stderr
    assert f"error: {read_only / 'ds'}: cannot write in {read_only} (Permission denied)" in refused.stderr
    assert ".ds.lock" not in refused.stderr


def test_a_wrongly_shaped_images_npy_is_not_called_a_row_mismatch(synthetic_dataset, tmp_path):
    from attrgan.data.dataset import DatasetError, open_dataset

    copy = tmp_path / "ds"
    shutil.copytree(synthetic_dataset, copy)
    images = np.load(copy / "images.npy")
    np.save(copy / "images.npy", images[:-1])
    with pytest.raises(DatasetError, match=f"images.npy holds {len(images) - 1} images, index.csv {len(images)} rows"):
        open_dataset(copy)
