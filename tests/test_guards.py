"""Issue 17: every command that writes goes through one output guard; every input, option and
result is checked, so nothing finishes "successfully" with wrong results or lost files."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY_MODEL
from PIL import Image
from typer.testing import CliRunner, Result

from cli.main import app

runner = CliRunner()


def invoke(argv: list) -> "Result":
    return runner.invoke(app, [str(a) for a in argv])


def one_error(result, fragment: str) -> None:
    """Exit 1 with exactly one `error:` line that contains ``fragment``, and no traceback."""
    assert result.exit_code == 1, (result.exit_code, result.output)
    assert result.output.count("error:") == 1 and "Traceback" not in result.output, result.output
    assert fragment in result.output, result.output


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory, synthetic_lfw, learnable_dataset, trained_regressor, conditional_run) -> Path:
    """One folder with a copy of every kind of input a command reads: photos, a raw LFW, a
    dataset, a generator run, a regressor, attribute vectors, a config and a people file."""
    skdata = pytest.importorskip("skimage.data")
    root = tmp_path_factory.mktemp("world")
    (root / "photos").mkdir()
    face = skdata.astronaut()
    Image.fromarray(face).save(root / "photos" / "astronaut.png")
    Image.fromarray(face[:, ::-1].copy()).save(root / "photos" / "mirrored.jpg")
    shutil.copytree(synthetic_lfw, root / "lfw-root")
    shutil.copytree(learnable_dataset, root / "data")
    shutil.copytree(trained_regressor, root / "regressor")
    shutil.copytree(conditional_run, root / "run")
    (root / "configs").mkdir()
    (root / "configs" / "tiny.yaml").write_text("model: {" + ", ".join(f"{k}: {v}" for k, v in TINY_MODEL.items())
                                                + "}\ntrain: {batch_size: 16, device: cpu, sample_every_epoch: false}\n")
    (root / "people.txt").write_text("George\n")
    result = invoke(["attribute-vectors", "--checkpoint", root / "run", "--data", root / "data", "--out",
                     root / "vectors.pt", "--present", "0.5", "--absent", "-0.5", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return root


def commands(w: Path) -> dict[str, tuple[list, list[Path], str]]:
    """Every command that takes --out: (argv with OUT as a placeholder, the inputs it reads, file or dir)."""
    photo, other = w / "photos" / "astronaut.png", w / "photos" / "mirrored.jpg"
    checkpoint, regressor = w / "run" / "checkpoint.pt", w / "regressor" / "regressor.pt"
    return {
        "prep-lfw": (["prep-lfw", "--images", w / "lfw-root" / "lfw", "--attributes", w / "lfw-root" / "lfw_attributes.txt",
                      "--test-people", w / "people.txt", "--out", "OUT", "--no-progress", "--size", "32"],
                     [w / "lfw-root" / "lfw", w / "lfw-root" / "lfw_attributes.txt", w / "people.txt"], "dir"),
        "train-conditional": (["train-conditional", "--data", w / "data", "--config", w / "configs" / "tiny.yaml",
                               "--regressor", w / "regressor", "--max-steps", "1", "--out", "OUT", "--no-progress"],
                              [w / "data", w / "configs" / "tiny.yaml", regressor], "dir"),
        "train-regressor": (["train-regressor", "--data", w / "data", "--epochs", "1", "--channels", "8,8,8", "--fc",
                             "8", "--out", "OUT", "--no-progress"], [w / "data"], "dir"),
        "eval-attributes": (["eval-attributes", "--data", w / "data", "--regressor", w / "regressor", "--checkpoint",
                             w / "run", "--seeds", "1", "--out", "OUT"], [w / "data", regressor, checkpoint], "dir"),
        "reproduce": (["reproduce", "--images", w / "lfw-root" / "lfw", "--attributes", w / "lfw-root" / "lfw_attributes.txt",
                       "--config", w / "configs" / "tiny.yaml", "--out", "OUT", "--no-progress"],
                      [w / "lfw-root" / "lfw", w / "lfw-root" / "lfw_attributes.txt", w / "configs" / "tiny.yaml"], "dir"),
        "plot-quality": (["plot-quality", w / "run", "--out", "OUT"], [w / "run" / "metrics.csv"], "file"),
        "align": (["align", photo, other, "--out", "OUT", "--device", "cpu"], [photo, other], "dir"),
        "reconstruct": (["reconstruct", "--checkpoint", w / "run", photo, "--regressor", w / "regressor", "--out", "OUT"],
                        [photo, checkpoint, regressor], "file"),
        "sample": (["sample", "--checkpoint", w / "run", "--from-image", photo, "--regressor", w / "regressor",
                    "--out", "OUT"], [photo, checkpoint, regressor], "file"),
        "attribute-vectors": (["attribute-vectors", "--checkpoint", w / "run", "--data", w / "data", "--out", "OUT"],
                              [checkpoint, w / "data"], "file"),
        "edit": (["edit", "--checkpoint", w / "run", photo, "--attribute", "Smiling", "--vectors", w / "vectors.pt",
                  "--regressor", w / "regressor", "--report", "--out", "OUT"],
                 [photo, checkpoint, w / "vectors.pt", regressor], "file"),
        "interpolate": (["interpolate", "--checkpoint", w / "run", photo, other, "--out", "OUT"],
                        [photo, other, checkpoint], "file"),
    }


def overlapping_outputs(source: Path, command: str) -> list[Path]:
    """Outputs that are the input, lie inside it (a folder input) or hold it (its folder)."""
    outs = [source]
    if source.is_dir():
        outs += [source / "out", source / "out.png"]
    if command != "reproduce":  # reproduce's OUT may hold its inputs (make demo); its stage folders may not
        outs.append(source.parent)
    return outs


def test_no_command_writes_over_its_inputs(world):
    """Every command that takes --out, every kind of overlap with each of its inputs, with and
    without --force: refused with one line before any work; every input byte-identical."""
    before = snapshot(world)
    tried = 0
    for command, (argv, inputs, _) in commands(world).items():
        for source in inputs:
            for out in overlapping_outputs(source, command):
                for force in ([], ["--force"]):
                    result = invoke([out if a == "OUT" else a for a in argv] + force)
                    one_error(result, "overlaps the input")
                    tried += 1
    assert tried > 100
    assert snapshot(world) == before


def test_an_existing_output_is_replaced_only_with_force(world, tmp_path):
    outs = {}
    for command, (argv, _, kind) in commands(world).items():
        if command == "reproduce":  # reproduce reuses or redoes its stages by its record (tested elsewhere)
            continue
        out = outs[command] = tmp_path / (command if kind == "dir" else f"{command}.png")
        earlier = out / ("astronaut.png" if command == "align" else "keep.txt") if kind == "dir" else out
        earlier.parent.mkdir(exist_ok=True)
        earlier.write_text("earlier work")  # align adds to a folder, but never replaces a crop of the same name
        one_error(invoke([out if a == "OUT" else a for a in argv]), "already exists; pass --force to replace it")
        assert earlier.read_text() == "earlier work", command
    for command in ("reconstruct", "interpolate", "align"):  # with --force the new output replaces the old
        argv, _, _ = commands(world)[command]
        result = invoke([outs[command] if a == "OUT" else a for a in argv] + ["--force"])
        assert result.exit_code == 0, result.output
    assert Image.open(outs["align"] / "astronaut.png").size == (64, 64)
    assert Image.open(outs["reconstruct"]).format == "PNG"


def test_a_file_output_may_not_name_a_folder_and_side_files_are_guarded(world, tmp_path):
    one_error(invoke(["plot-quality", world / "run", "--out", tmp_path]), "is a folder")
    argv, _, _ = commands(world)["edit"]
    regressor_copy = tmp_path / "reg"
    shutil.copytree(world / "regressor", regressor_copy)
    metrics = (regressor_copy / "metrics.json").read_bytes()
    # --report's JSON is named from --out: here it would replace a regressor's metrics.json
    result = invoke([regressor_copy / "metrics.png" if a == "OUT" else a for a in argv])
    one_error(result, "metrics.json already exists")
    assert (regressor_copy / "metrics.json").read_bytes() == metrics and not (regressor_copy / "metrics.png").exists()


def test_train_conditional_may_not_rewrite_its_own_config_but_resumes_from_it(world, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    config = run / "my.yaml"
    shutil.copy(world / "configs" / "tiny.yaml", config)
    def train(out: Path, *extra) -> "Result":
        return invoke(["train-conditional", "--data", world / "data", "--no-progress", "--out", out, *extra])

    one_error(train(run, "--config", config, "--max-steps", "1"), "overlaps the input")
    assert config.read_text() == (world / "configs" / "tiny.yaml").read_text()
    ok = train(tmp_path / "ok", "--config", config, "--max-steps", "1")
    assert ok.exit_code == 0, ok.output
    resumed = train(tmp_path / "ok", "--resume", "--max-steps", "2")  # from the run's own config.yaml
    assert resumed.exit_code == 0, resumed.output
    one_error(train(tmp_path / "ok", "--config", config, "--max-steps", "1"), "already exists")
    replaced = train(tmp_path / "ok", "--config", config, "--max-steps", "1", "--force")
    assert replaced.exit_code == 0, replaced.output
    from attrgan.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "ok")["step"] == 1


def test_resume_refuses_changed_settings_unless_allowed_and_records_them(synthetic_dataset, tmp_path):
    import json

    base = ["train-conditional", "--data", synthetic_dataset, "--config", ROOT / "configs" / "demo.yaml", "--out",
            tmp_path / "run", "--no-progress", "--device", "cpu", "--batch-size", "16", "--set",
            "train.sample_every_epoch=false"]
    assert invoke(base + ["--max-steps", "1"]).exit_code == 0
    changed = invoke(base + ["--max-steps", "2", "--resume", "--set", "loss.gamma=0.3", "--set", "optim.lr=1e-4"])
    one_error(changed, "loss.gamma 0.1 -> 0.3, optim.lr 0.0003 -> 0.0001")
    assert "--allow-changes" in changed.output
    longer = invoke(base + ["--max-steps", "2", "--resume"])  # a longer run is not a change of settings
    assert longer.exit_code == 0, longer.output
    allowed = invoke(base + ["--max-steps", "3", "--resume", "--allow-changes", "--set", "loss.gamma=0.3"])
    assert allowed.exit_code == 0, allowed.output
    record = json.loads((tmp_path / "run" / "run.json").read_text())["setting_changes"]
    assert record == [{"step": 2, "changed": {"loss.gamma": [0.1, 0.3]}}]


def test_resume_refuses_a_dataset_whose_images_or_labels_changed(synthetic_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(synthetic_dataset, data)
    base = ["train-conditional", "--data", data, "--config", ROOT / "configs" / "demo.yaml", "--out", tmp_path / "run",
            "--no-progress", "--device", "cpu", "--batch-size", "16", "--set", "train.sample_every_epoch=false"]
    assert invoke(base + ["--max-steps", "1"]).exit_code == 0
    images = np.load(data / "images.npy")
    images[3, 0, 5, 5] ^= 1  # one pixel of one image, same size and manifest
    np.save(data / "images.npy", images)
    one_error(invoke(base + ["--max-steps", "2", "--resume"]), "the dataset files")
    images[3, 0, 5, 5] ^= 1
    np.save(data / "images.npy", images)
    index = (data / "index.csv").read_text()
    (data / "index.csv").write_text(index.replace(",1.", ",2.", 1))  # one label
    one_error(invoke(base + ["--max-steps", "2", "--resume"]), "the dataset files")
    (data / "index.csv").write_text(index)
    assert invoke(base + ["--max-steps", "2", "--resume"]).exit_code == 0


@pytest.mark.parametrize("override, fragment", [
    ("loss.gamma=.nan", "loss.gamma must be a finite number"),
    ("optim.lr=1e400", "optim.lr must be a finite number"),
    ("optim.alpha=5", "optim.alpha (RMSProp's smoothing constant) must be in (0, 1)"),
    ("model.z_dim=0", "model.z_dim must be >= 1"),
])
def test_config_values_are_checked_before_training(synthetic_dataset, tmp_path, override, fragment):
    result = invoke(["train-conditional", "--data", synthetic_dataset, "--out", tmp_path / "run", "--max-steps", "1",
                     "--set", override])
    one_error(result, fragment)
    assert not (tmp_path / "run").exists()


def test_no_run_finishes_with_non_finite_weights(synthetic_dataset, tmp_path):
    """A learning rate that overflows the weights on the first update (finite losses): the run
    stops at that step, and the checkpoint left is the good one from before it."""
    from attrgan.checkpoint import load_checkpoint

    run = tmp_path / "run"
    result = invoke(["train-conditional", "--data", synthetic_dataset, "--config", ROOT / "configs" / "demo.yaml",
                     "--out", run, "--max-steps", "1", "--device", "cpu", "--batch-size", "16", "--no-progress",
                     "--set", "optim.lr=3e38", "--set", "train.sample_every_epoch=false"])
    one_error(result, "step 1: non-finite weights in the")
    saved = load_checkpoint(run)
    assert saved["step"] == 0 and not saved["finished"]
    assert all(torch.isfinite(t).all() for net in saved["nets"].values() for t in net.values() if t.is_floating_point())


def test_generation_refuses_non_finite_values(world, tmp_path):
    photo = world / "photos" / "astronaut.png"
    one_error(invoke(["sample", "--checkpoint", world / "run", "--set", "Smiling=nan", "--out", tmp_path / "a.png"]),
              "--set 'Smiling=nan': expected Name=value with a finite number")
    one_error(invoke(["edit", "--checkpoint", world / "run", photo, "--attribute", "Smiling", "--mode", "condition",
                      "--strength", "nan,inf", "--out", tmp_path / "b.png"]), "--strength must be a finite number")
    from attrgan.nets.loaded import load

    with pytest.raises(ValueError, match="finite; got NaN or Inf for Smiling"):
        model = load(world / "run")
        row = model.scaler.mean.copy()
        row[model.attribute_names.index("Smiling")] = np.inf
        model.sample(row[None])
    # values that overflow on the way: one error, no warning line before it, nothing written
    result = invoke(["sample", "--checkpoint", world / "run", "--set", "Smiling=1e308", "--out", tmp_path / "c.png"])
    one_error(result, "Smiling=1e+308 standard deviations overflows the attribute's value")
    assert "Warning" not in result.output
    one_error(invoke(["edit", "--checkpoint", world / "run", photo, "--attribute", "Smiling", "--mode", "latent",
                      "--vectors", world / "vectors.pt", "--strength=-1e300,0,1e300", "--out", tmp_path / "d.png"]),
              "latent codes must be finite")
    one_error(invoke(["attribute-vectors", "--checkpoint", world / "run", "--data", world / "data", "--out",
                      tmp_path / "v.pt", "--present", "-1", "--absent", "1", "--device", "cpu"]),
              "--present (-1) must not be below --absent (1)")
    assert not list(tmp_path.iterdir())


def _checkpoint_like(path: Path, **payload) -> Path:
    torch.save(payload, path)
    return path


class NotAState:  # a pickled object that weights_only loading refuses
    pass


def test_options_out_of_range_and_odd_files_get_one_line(world, tmp_path):
    data, run, reg = world / "data", world / "run", world / "regressor"
    photo = world / "photos" / "astronaut.png"
    lfw = world / "lfw-root"
    prep = ["prep-lfw", "--images", lfw / "lfw", "--attributes", lfw / "lfw_attributes.txt", "--no-progress", "--out"]
    cases = [
        (["eval-attributes", "--data", data, "--regressor", reg, "--checkpoint", run, "--seeds", "0", "--out",
          tmp_path / "r"], "--seeds must be >= 1"),
        (["sample", "--checkpoint", run, "-n", "0", "--out", tmp_path / "s.png"], "-n must be >= 1"),
        (["sample", "--checkpoint", run, "-n", "1000000000", "--out", tmp_path / "s.png"], "GiB of memory"),
        (["interpolate", "--checkpoint", run, photo, photo, "--steps", "0", "--out", tmp_path / "i.png"],
         "--steps must be >= 2"),
        (["interpolate", "--checkpoint", run, photo, photo, "--steps", "1", "--out", tmp_path / "i.png"],
         "--steps must be >= 2"),
        (prep + [tmp_path / "p", "--size", "0"], "--size must be >= 8"),
        (prep + [tmp_path / "p", "--size", "100000"], "GiB of memory"),
        (prep + [tmp_path / "p", "--min-face", "5"], "--min-face must be > 0 and <= 1"),
        (prep + [tmp_path / "p", "--limit", "0"], "--limit must be >= 1"),
        (["train-regressor", "--data", data, "--out", tmp_path / "g", "--fc", "0"], "--fc must be >= 1"),
        (["train-regressor", "--data", data, "--out", tmp_path / "g", "--epochs", "0"], "--epochs must be >= 1"),
        (["train-regressor", "--data", data, "--out", tmp_path / "g", "--batch-size", "1"], "--batch-size must be >= 2"),
        (["train-regressor", "--data", data, "--out", tmp_path / "g", "--channels", "64,x"],
         "--channels must be comma-separated integers"),
        (["edit", "--checkpoint", run, photo, "--attribute", "Smiling", "--strength", "a,b", "--out",
          tmp_path / "e.png"], "--strength must be comma-separated numbers"),
        (["sample", "--checkpoint", run, "--device", "tpu", "--out", tmp_path / "s.png"],
         "--device must be auto, cpu or cuda[:N], got 'tpu'"),
        (["train-conditional", "--data", data, "--out", tmp_path / "t", "--attributes", "Male,Male"],
         "given more than once: Male"),
        (["align", photo, world / "lfw-root" / "lfw" / "George" / "George_0001.jpg", tmp_path / "x" / "astronaut.jpg",
          "--out", tmp_path / "a"], "same file name would share a crop file: astronaut"),
        (["sample", "--checkpoint", _checkpoint_like(tmp_path / "v.pt", format_version="1", kind="vae", config={},
                                                     nets={}, image_size=32, attribute_names=[], attribute_mean=[],
                                                     attribute_std=[]), "--out", tmp_path / "s.png"],
         "format_version '1' is not a number"),
        (["sample", "--checkpoint", _checkpoint_like(tmp_path / "c.pt", format_version=1, kind="vae", nets={}),
          "--out", tmp_path / "s.png"], "not an attrgan checkpoint (no config"),
        (["sample", "--checkpoint", _checkpoint_like(tmp_path / "p.pt", thing=NotAState()), "--out",
          tmp_path / "s.png"], "not an attrgan checkpoint (it cannot be loaded as one: UnpicklingError)"),
    ]
    for argv, fragment in cases:
        result = invoke(argv)
        one_error(result, fragment)
        assert result.output.count("\n") == 1, result.output  # one line, not torch's advice
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == ["c.pt", "p.pt", "v.pt"], leftovers


def test_align_with_no_face_and_a_huge_png(world, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 200), (128, 128, 128)).save(blank)
    huge = tmp_path / "huge.png"
    Image.new("1", (13000, 13000)).save(huge)  # 169 megapixels, a small file
    result = invoke(["align", blank, huge, "--out", tmp_path / "aligned", "--device", "cpu"])
    one_error(result, "none of the 2 photos holds a face that could be aligned; nothing was written")
    assert "13000x13000 px is too large to decode" in result.output
    assert not (tmp_path / "aligned").exists()


def test_attribute_files_with_a_bom_latin1_or_huge_numbers(synthetic_lfw, tmp_path):
    text = (synthetic_lfw / "lfw_attributes.txt").read_text(encoding="utf-8")
    base = ["prep-lfw", "--images", synthetic_lfw / "lfw", "--size", "32", "--limit", "8", "--no-progress",
            "--attributes"]
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    ok = invoke(base + [bom, "--out", tmp_path / "ds"])
    assert ok.exit_code == 0, ok.output
    lines = text.splitlines()
    latin = tmp_path / "latin.txt"
    latin.write_bytes("\n".join(lines[:3] + [lines[3].replace(lines[3].split("\t")[0], "Jos\u00e9 Mar\u00eda")]
                                + lines[4:]).encode("latin-1"))
    one_error(invoke(base + [latin, "--out", tmp_path / "l"]), f"{latin}:4: not UTF-8 text (byte 0xe9")
    fields = lines[3].split("\t")
    huge = tmp_path / "huge.txt"
    huge.write_text("\n".join(lines[:3] + ["\t".join([fields[0], "99999999999999999999", *fields[2:]])] + lines[4:]))
    one_error(invoke(base + [huge, "--out", tmp_path / "h"]), f"{huge}:4: image number 99999999999999999999 is outside")
    photos = tmp_path / "lfw"
    shutil.copytree(synthetic_lfw / "lfw", photos)
    first = sorted(photos.rglob("*.jpg"))[0]
    first.rename(first.with_name(f"{first.parent.name}_99999999999999999999.jpg"))
    one_error(invoke(["prep-lfw", "--images", photos, "--out", tmp_path / "n", "--no-progress"]),
              "image number 99999999999999999999 is outside")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bom.txt", "ds", "huge.txt", "latin.txt", "lfw"]


def test_eval_grid_files_of_colliding_run_folders_are_distinct(world, tmp_path):
    runs = [tmp_path / "a" / "run", tmp_path / "b" / "run", tmp_path / "c" / "run_2"]
    for run in runs:
        shutil.copytree(world / "run", run)
    result = invoke(["eval-attributes", "--data", world / "data", "--regressor", world / "regressor", "--seeds", "1",
                     "--no-control", "--out", tmp_path / "report", *[x for run in runs for x in ("--checkpoint", run)]])
    assert result.exit_code == 0, result.output
    grids = sorted(p.name for p in (tmp_path / "report").glob("grid_vae_*.png"))
    assert grids == ["grid_vae_run.png", "grid_vae_run_2.png", "grid_vae_run_2_2.png"], grids


def test_reproduce_notices_content_changes_and_names_the_resume_command(synthetic_lfw, tmp_path):
    """An image changed in place (same size and mtime) is a changed input; an interrupt names the command."""
    import os
    import signal
    import subprocess
    import sys

    photos = tmp_path / "lfw"
    shutil.copytree(synthetic_lfw / "lfw", photos)
    out = tmp_path / "exp"
    argv = ["reproduce", "--images", photos, "--attributes", synthetic_lfw / "lfw_attributes.txt",
            "--config", ROOT / "configs" / "demo.yaml", "--out", out, "--models", "vae", "--size", "32",
            "--regressor-channels", "8,16,32", "--regressor-fc", "32", "--regressor-epochs", "1", "--seeds", "1",
            "--eval-every", "0", "--device", "cpu", "--no-progress", "--set", "train.max_steps=2",
            "--set", "model.z_dim=8", "--set", "train.sample_every_epoch=false"]
    assert invoke(argv).exit_code == 0
    image = sorted(photos.rglob("*.jpg"))[0]
    stat = image.stat()
    data = bytearray(image.read_bytes())
    data[-10] ^= 0xFF
    image.write_bytes(bytes(data))
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    one_error(invoke(argv), "made from other inputs (images changed)")

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen([sys.executable, "-m", "cli.main", *map(str, argv[:-2]), "--set", "train.max_steps=4000",
                              "--force"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in child.stdout:
        if "train-conditional" in line:  # the third stage has started
            break
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert "to resume the experiment, run the same command again" in err and "attrgan reproduce --images" in err, err


def test_synth_lfw_replaces_an_existing_folder_only_with_force(tmp_path):
    out = tmp_path / "synth"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    one_error(invoke(["synth-lfw", out, "--people", "2"]), "already exists; pass --force to replace it")
    assert (out / "notes.txt").read_text() == "mine"
    one_error(invoke(["synth-lfw", tmp_path / "other", "--people", "0"]), "--people must be >= 1")
    replaced = invoke(["synth-lfw", out, "--people", "2", "--max-images", "1", "--force"])
    assert replaced.exit_code == 0, replaced.output
    assert sorted(p.name for p in out.iterdir()) == ["lfw", "lfw_attributes.txt"]


def test_weights_finite_sees_nan_and_inf_in_parameters_and_buffers():
    from attrgan.config import from_dict
    from attrgan.nets.models import build_models
    from attrgan.training.stopping import weights_finite

    net = build_models(from_dict({"model": TINY_MODEL}).model, 73)["decoder"]
    assert weights_finite(net)
    with torch.no_grad():
        net.fc[0].weight[3, 2] = float("nan")
        assert not weights_finite(net)
        net.fc[0].weight[3, 2] = 1e38  # huge but finite
        assert weights_finite(net)
        net.fc[1].running_var[0] = float("-inf")
        assert not weights_finite(net)
