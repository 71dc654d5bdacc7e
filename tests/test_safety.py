"""No command's --out (with or without --force) may replace or delete what the command reads."""
from __future__ import annotations

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
