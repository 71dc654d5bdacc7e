"""No command's --out (with or without --force) may replace or delete what the command reads."""
from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from cli.main import app


def test_force_never_deletes_inputs(synthetic_lfw, learnable_dataset, trained_regressor, conditional_run, tmp_path):
    runner = CliRunner()
    photos = tmp_path / "lfw"
    shutil.copytree(synthetic_lfw / "lfw", photos)
    before = sorted(p.name for p in photos.rglob("*.jpg"))
    for out in (photos, photos / "George", tmp_path):  # is, lies inside, contains the input
        result = runner.invoke(app, ["prep-lfw", "--images", str(photos), "--out", str(out), "--force", "--no-progress"])
        assert result.exit_code == 1 and "overlaps the input" in result.output, result.output
    assert sorted(p.name for p in photos.rglob("*.jpg")) == before

    run = tmp_path / "run"
    shutil.copytree(conditional_run, run)
    checkpoint_bytes = (run / "checkpoint.pt").read_bytes()
    base = ["eval-attributes", "--data", str(learnable_dataset), "--regressor", str(trained_regressor),
            "--checkpoint", str(run), "--seeds", "1", "--device", "cpu", "--force"]
    for out in (run, run / "checkpoint.pt", learnable_dataset, trained_regressor):
        result = runner.invoke(app, base + ["--out", str(out)])
        assert result.exit_code == 1 and "overlaps the input" in result.output, (out, result.output)
    assert (run / "checkpoint.pt").read_bytes() == checkpoint_bytes
    assert (learnable_dataset / "images.npy").is_file() and (trained_regressor / "regressor.pt").is_file()
    # a report beside the checkpoint, inside the run folder, is fine
    ok = runner.invoke(app, base + ["--out", str(run / "report"), "--no-control"])
    assert ok.exit_code == 0, ok.output


def test_progress_without_a_terminal_is_plain_lines(synthetic_dataset, tmp_path):
    """Under nohup or CI (stderr not a TTY) the progress bar writes whole lines, no carriage returns."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "cli.main", "train-conditional", "--data", str(synthetic_dataset), "--out",
           str(tmp_path / "run"), "--config", str(root / "configs" / "demo.yaml"), "--max-steps", "8",
           "--batch-size", "16", "--device", "cpu", "--set", "train.sample_every_epoch=false"]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\r" not in proc.stderr
    assert any("train vaegan" in line and "8/8" in line for line in proc.stderr.splitlines()), proc.stderr
    regressor = [sys.executable, "-m", "cli.main", "train-regressor", "--data", str(synthetic_dataset), "--out",
                 str(tmp_path / "regressor"), "--image-size", "32", "--epochs", "3", "--channels", "8,16,16",
                 "--fc", "32", "--device", "cpu"]
    proc = subprocess.run(regressor, cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with_figures = [line for line in proc.stderr.splitlines() if "train-regressor" in line and "val=" in line]
    assert with_figures and all("3/3" in line for line in with_figures), proc.stderr  # no stale "0/3" counter


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


def test_exif_rotated_photo_is_turned_upright_before_alignment(tmp_path):
    """A phone photo stored sideways with an EXIF orientation tag still has its face found."""
    import pytest

    skdata = pytest.importorskip("skimage.data")
    import numpy as np
    from PIL import Image

    from attrgan.editing.edits import align_photos

    sideways = np.ascontiguousarray(np.rot90(skdata.astronaut(), k=1))  # stored rotated 90° counter-clockwise
    image = Image.fromarray(sideways)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    image.save(tmp_path / "phone.jpg", exif=exif)
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "tiny.jpg")  # one tiny photo among several
    crops, kept, skipped = align_photos([tmp_path / "phone.jpg", tmp_path / "tiny.jpg"], size=64, device="cpu")
    assert kept == [tmp_path / "phone.jpg"] and len(crops) == 1
    assert len(skipped) == 1 and "too small" in skipped[0][1]


def test_sigterm_during_training_checkpoints_and_resumes_exactly(synthetic_dataset, tmp_path):
    """SIGTERM mid-run: the step finishes, a checkpoint is written, exit 143; --resume then
    ends with the same weights as a run that was never interrupted."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import torch

    from attrgan.checkpoint import load_checkpoint

    root = Path(__file__).resolve().parents[1]

    def command(out: Path, *extra: str) -> list[str]:
        return [sys.executable, "-m", "cli.main", "train-conditional", "--data", str(synthetic_dataset), "--out",
                str(out), "--config", str(root / "configs" / "demo.yaml"), "--max-steps", "150", "--batch-size", "16",
                "--device", "cpu", "--precision", "fp32", "--no-progress", "--set", "train.sample_every_epoch=false",
                "--set", "train.checkpoint_every=0", "--set", "train.threads=1", *extra]

    interrupted = tmp_path / "interrupted"
    proc = subprocess.Popen(command(interrupted), cwd=root, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (interrupted / "metrics.csv").is_file():
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-2000:]
    assert "interrupted by SIGTERM" in stderr and "--resume" in stderr
    stopped_at = load_checkpoint(interrupted)["step"]
    assert 0 < stopped_at < 150
    resumed = subprocess.run(command(interrupted, "--resume"), cwd=root, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = subprocess.run(command(tmp_path / "straight"), cwd=root, capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr[-2000:]
    a, b = load_checkpoint(interrupted), load_checkpoint(tmp_path / "straight")
    assert a["step"] == b["step"] == 150
    for net in a["nets"]:
        for key, value in a["nets"][net].items():
            assert torch.equal(value, b["nets"][net][key]), (net, key)


def test_bad_values_fail_at_once_with_one_line(synthetic_dataset, synthetic_lfw, tmp_path):
    runner = CliRunner()
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("train: {epochs: [1, 2\n")
    base = ["train-conditional", "--data", str(synthetic_dataset), "--out", str(tmp_path / "run")]
    cases = {
        "not valid YAML": base + ["--config", str(bad_yaml)],
        "the value is not valid YAML": base + ["--set", "data.attributes=[a, b"],
        "train.log_every must be >= 1": base + ["--set", "train.log_every=0"],
        "train.max_steps must be >= 1": base + ["--max-steps", "0"],
        "optim.lr_decay must be positive": base + ["--set", "optim.lr_decay=-0.5"],
        "optim.weight_decay must be >= 0": base + ["--set", "optim.weight_decay=-1"],
        "split fractions must be 3 shares": ["prep-lfw", "--images", str(synthetic_lfw / "lfw"), "--out",
                                             str(tmp_path / "ds"), "--val-fraction", "1.5", "--no-progress"],
    }
    for message, args in cases.items():
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and message in result.output, (message, result.output)
        assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not (tmp_path / "run").exists() and not (tmp_path / "ds").exists()


def test_nan_label_is_reported_when_the_dataset_opens(synthetic_dataset, tmp_path):
    import pandas as pd

    broken = tmp_path / "ds"
    shutil.copytree(synthetic_dataset, broken)
    index = pd.read_csv(broken / "index.csv")
    first = index.index[index["labelled"]][0]
    index.loc[first, "Smiling"] = float("nan")
    index.to_csv(broken / "index.csv", index=False)
    result = CliRunner().invoke(app, ["train-conditional", "--data", str(broken), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1 and "non-finite value in 'Smiling'" in result.output and f"row {first + 2}" in result.output


def test_reproduce_refuses_to_reuse_results_made_from_other_inputs(synthetic_lfw, tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    runner = CliRunner()
    out = tmp_path / "exp"
    base = ["reproduce", "--images", str(synthetic_lfw / "lfw"), "--attributes", str(synthetic_lfw / "lfw_attributes.txt"),
            "--config", str(root / "configs" / "demo.yaml"), "--out", str(out), "--models", "vae", "--size", "32",
            "--regressor-channels", "8,16,32", "--regressor-fc", "32", "--regressor-epochs", "1", "--seeds", "1",
            "--eval-every", "0", "--device", "cpu", "--no-progress", "--set", "train.max_steps=2",
            "--set", "model.z_dim=8", "--set", "train.sample_every_epoch=false"]
    first = runner.invoke(app, base)
    assert first.exit_code == 0, first.output
    record = json.loads((out / "reproduce.json").read_text())
    assert record.pop("train_seeds") == 1
    (out / "reproduce.json").write_text(json.dumps(record))  # a record from before --train-seeds existed
    again = runner.invoke(app, base)
    assert again.exit_code == 0 and "reusing" in again.output
    changed = runner.invoke(app, base[:-2] + ["--set", "train.max_steps=3"])
    assert changed.exit_code == 1 and "made from other inputs (overrides changed)" in changed.output
    assert (out / "runs" / "vae" / "checkpoint.pt").is_file()  # nothing was touched
    forced = runner.invoke(app, base[:-2] + ["--set", "train.max_steps=3", "--force"])
    assert forced.exit_code == 0, forced.output
    from attrgan.checkpoint import load_checkpoint

    assert load_checkpoint(out / "runs" / "vae")["step"] == 3
    seeds = base[:-2] + ["--set", "train.max_steps=3", "--train-seeds", "2", "--set", "train.seed=4"]
    assert runner.invoke(app, seeds).exit_code == 1  # another option: refused without --force
    result = runner.invoke(app, seeds + ["--force"])
    assert result.exit_code == 0, result.output
    assert [load_checkpoint(out / "runs" / run)["config"]["train"]["seed"] for run in ("vae", "vae-seed5")] == [4, 5]
    group = json.loads((out / "report" / "metrics.json").read_text())["across_training_seeds"]["groups"]["VAE"]
    assert group["train_seeds"] == [4, 5] and group["updates"] == [3, 3]
    assert "VAE over training seeds 4, 5: cosine" in result.output
    assert "## Across training seeds" in (out / "report" / "report.md").read_text()


def test_damaged_inputs_get_one_line(synthetic_dataset, synthetic_lfw, tmp_path):
    """An empty images.npy, a truncated .tgz and garbage FID weights: one clear line, exit 1."""
    import tarfile

    runner = CliRunner()
    broken = tmp_path / "ds"
    shutil.copytree(synthetic_dataset, broken)
    (broken / "images.npy").write_bytes(b"")
    result = runner.invoke(app, ["train-conditional", "--data", str(broken), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1 and "damaged dataset file" in result.output, result.output

    archive = tmp_path / "lfw.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(synthetic_lfw / "lfw", arcname="lfw")
    (tmp_path / "cut.tgz").write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    result = runner.invoke(app, ["prep-lfw", "--images", str(tmp_path / "cut.tgz"), "--out", str(tmp_path / "cut"),
                                 "--no-progress"])
    assert result.exit_code == 1 and "truncated" in result.output and result.output.count("\n") == 1, result.output
    assert not (tmp_path / "cut").exists()


def test_garbage_fid_weights_and_stale_temporaries(learnable_dataset, trained_regressor, conditional_run, tmp_path):
    import os
    import subprocess

    from attrgan.runtime.files import atomic_file

    (tmp_path / "weights.pt").write_bytes(b"garbage")
    result = CliRunner().invoke(app, ["eval-attributes", "--data", str(learnable_dataset), "--regressor",
                                      str(trained_regressor), "--checkpoint", str(conditional_run), "--out",
                                      str(tmp_path / "report"), "--inception-weights", str(tmp_path / "weights.pt")])
    assert result.exit_code == 1 and "not Inception-v3 weights" in result.output and not (tmp_path / "report").exists()

    dead = subprocess.Popen(["true"])
    dead.wait()
    torn = tmp_path / f".checkpoint.tmp-{dead.pid}.pt"
    torn.write_bytes(b"half a checkpoint")
    live = tmp_path / f".checkpoint.tmp-{os.getppid()}.pt"  # a live process's temporary is never touched
    live.write_bytes(b"in progress")
    with atomic_file(tmp_path / "checkpoint.pt") as tmp:
        tmp.write_bytes(b"new")
    assert not torn.exists() and live.exists() and (tmp_path / "checkpoint.pt").read_bytes() == b"new"


def test_resume_refuses_other_training_data(synthetic_dataset, tmp_path):
    import pytest
    from conftest import tiny_config

    from attrgan.checkpoint import CheckpointError
    from attrgan.training.loop import train

    run = tmp_path / "run"
    train(tiny_config(synthetic_dataset, "vae", max_steps=1), run)
    other_attributes = tiny_config(synthetic_dataset, "vae", max_steps=2)
    other_attributes.data.attributes = ["Male", "Smiling"]
    with pytest.raises(CheckpointError, match=r"other training data .*data.attributes changed"):
        train(other_attributes, run, resume=True)
    skip = tiny_config(synthetic_dataset, "vae", max_steps=2)
    skip.data.unlabelled = "skip"
    skip.model.labelled_input = True  # same network shapes, other data
    with pytest.raises(CheckpointError, match="data.unlabelled changed"):
        train(skip, run, resume=True)
    moved = tmp_path / "moved"
    shutil.copytree(synthetic_dataset, moved)  # the same dataset elsewhere resumes fine
    train(tiny_config(moved, "vae", max_steps=2), run, resume=True)
    (moved / "manifest.json").write_text((moved / "manifest.json").read_text().replace('"size"', '"size" ', 1))
    with pytest.raises(CheckpointError, match="the dataset files"):
        train(tiny_config(moved, "vae", max_steps=3), run, resume=True)


def test_reproduce_may_hold_its_inputs_but_never_replace_them(synthetic_lfw, tmp_path):
    """Like `make demo`: the images live inside OUT; reproduce's stage folders never overlap them."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "demo"
    shutil.copytree(synthetic_lfw, out / "synthetic-lfw")
    base = ["reproduce", "--attributes", str(out / "synthetic-lfw" / "lfw_attributes.txt"),
            "--config", str(root / "configs" / "demo.yaml"), "--models", "vae", "--size", "32",
            "--regressor-channels", "8,16,32", "--regressor-fc", "32", "--regressor-epochs", "1", "--seeds", "1",
            "--eval-every", "0", "--device", "cpu", "--no-progress", "--set", "train.max_steps=1"]
    ok = CliRunner().invoke(app, base + ["--images", str(out / "synthetic-lfw" / "lfw"), "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    clash = tmp_path / "clash"
    shutil.copytree(synthetic_lfw / "lfw", clash / "dataset")
    refused = CliRunner().invoke(app, base + ["--images", str(clash / "dataset"), "--out", str(clash)])
    assert refused.exit_code == 1 and "overlaps the input" in refused.output
    assert len(list((clash / "dataset").rglob("*.jpg"))) == len(list((synthetic_lfw / "lfw").rglob("*.jpg")))
