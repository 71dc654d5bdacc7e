"""Every stage's guards, in one place: no command writes over what it reads or what exists
without --force; every input, option, value and result is checked, so nothing finishes
"successfully" with wrong results or lost files, and a refusal is one line and exit 1."""
from __future__ import annotations

import hashlib
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ROOT, TINY_MODEL, invoke, one_error
from PIL import Image
from typer.testing import CliRunner, Result

from cli.main import app

runner = CliRunner()






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
    model = ", ".join(f"{k}: {v}" for k, v in TINY_MODEL.items())
    (root / "configs" / "tiny.yaml").write_text(f"model: {{{model}}}\n"
                                                "train: {batch_size: 16, device: cpu, sample_every_epoch: false}\n")
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
        "prep-lfw": (["prep-lfw", "--images", w / "lfw-root" / "lfw", "--attributes",
                      w / "lfw-root" / "lfw_attributes.txt",
                      "--test-people", w / "people.txt", "--out", "OUT", "--no-progress", "--size", "32"],
                     [w / "lfw-root" / "lfw", w / "lfw-root" / "lfw_attributes.txt", w / "people.txt"], "dir"),
        "train-conditional": (["train-conditional", "--data", w / "data", "--config", w / "configs" / "tiny.yaml",
                               "--regressor", w / "regressor", "--max-steps", "1", "--out", "OUT", "--no-progress"],
                              [w / "data", w / "configs" / "tiny.yaml", regressor], "dir"),
        "train-regressor": (["train-regressor", "--data", w / "data", "--epochs", "1", "--channels", "8,8,8", "--fc",
                             "8", "--out", "OUT", "--no-progress"], [w / "data"], "dir"),
        "eval-attributes": (["eval-attributes", "--data", w / "data", "--regressor", w / "regressor", "--checkpoint",
                             w / "run", "--seeds", "1", "--out", "OUT"], [w / "data", regressor, checkpoint], "dir"),
        "reproduce": (["reproduce", "--images", w / "lfw-root" / "lfw", "--attributes",
                       w / "lfw-root" / "lfw_attributes.txt",
                       "--config", w / "configs" / "tiny.yaml", "--out", "OUT", "--no-progress"],
                      [w / "lfw-root" / "lfw", w / "lfw-root" / "lfw_attributes.txt",
                       w / "configs" / "tiny.yaml"], "dir"),
        "plot-quality": (["plot-quality", w / "run", "--out", "OUT"], [w / "run" / "metrics.csv"], "file"),
        "align": (["align", photo, other, "--out", "OUT", "--device", "cpu"], [photo, other], "dir"),
        "reconstruct": (["reconstruct", "--checkpoint", w / "run", photo, "--regressor",
                         w / "regressor", "--out", "OUT"],
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
    # the run's config.yaml names its dataset, so --resume needs no --data; a new run without one is refused
    without_data = invoke(["train-conditional", "--out", tmp_path / "ok", "--resume",
                           "--max-steps", "3", "--no-progress"])
    assert without_data.exit_code == 0, without_data.output
    one_error(invoke(["train-conditional", "--out", tmp_path / "new", "--max-steps", "1",
                      "--no-progress"]), "--data is needed")
    # no config to name a dataset: --data stays required
    assert invoke(["train-regressor", "--out", tmp_path / "reg"]).exit_code == 2
    one_error(train(tmp_path / "ok", "--config", config, "--max-steps", "1"), "already exists")
    replaced = train(tmp_path / "ok", "--config", config, "--max-steps", "1", "--force")
    assert replaced.exit_code == 0, replaced.output
    from attrgan.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "ok")["step"] == 1


@pytest.mark.slow
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


def dataset_variant(source: Path, out: Path, drop_column: str | None = None, images=None) -> Path:
    """A copy of dataset ``source`` without attribute column ``drop_column``, or with ``images`` as images.npy."""
    shutil.copytree(source, out)
    if drop_column is not None:
        import json

        import pandas as pd

        pd.read_csv(out / "index.csv").drop(columns=[drop_column]).to_csv(out / "index.csv", index=False)
        manifest = json.loads((out / "manifest.json").read_text())
        manifest["attribute_names"].remove(drop_column)
        (out / "manifest.json").write_text(json.dumps(manifest))
    if images is not None:
        np.save(out / "images.npy", images)
    return out


def test_options_out_of_range_and_odd_files_get_one_line(world, tmp_path, tmp_path_factory):
    data, run, reg = world / "data", world / "run", world / "regressor"
    photo = world / "photos" / "astronaut.png"
    lfw = world / "lfw-root"
    prep = ["prep-lfw", "--images", lfw / "lfw", "--attributes", lfw / "lfw_attributes.txt", "--no-progress", "--out"]
    inputs = tmp_path_factory.mktemp("odd-inputs")
    no_smiling = dataset_variant(data, inputs / "no-smiling", drop_column="Smiling")
    rows = len(np.load(data / "images.npy", mmap_mode="r"))
    flat_images = dataset_variant(data, inputs / "flat", images=np.zeros((rows, 32, 32), np.uint8))
    (inputs / "garbage.pt").write_bytes(b"not a regressor at all")
    taken = socket.create_server(("127.0.0.1", 0))  # a port another program serves
    cases = [
        (["eval-attributes", "--data", no_smiling, "--regressor", reg, "--checkpoint", run, "--out", tmp_path / "r"],
         "lacks the attribute column 'Smiling' that the model conditions on"),
        (["attribute-vectors", "--checkpoint", run, "--data", no_smiling, "--out", tmp_path / "vectors.pt"],
         "lacks the attribute column 'Smiling'"),
        (["eval-vectors", "--checkpoint", run, "--vectors", world / "vectors.pt", "--regressor", reg, "--data",
          no_smiling, "--out", tmp_path / "v.json"], "lacks the attribute column 'Smiling'"),
        (["train-conditional", "--data", flat_images, "--out", tmp_path / "t"],
         "images.npy holds uint8 of shape [%d, 32, 32], not uint8 RGB images [N, 3, S, S]" % rows),
        (["edit", "--checkpoint", run, photo, "--attribute", "Smiling", "--mode", "condition", "--strength", "1e300",
          "--out", tmp_path / "e.png"], "--strength 1e+300: moves Smiling past the largest value"),
        (["edit", "--checkpoint", run, photo, "--attribute", "Smiling", "--strength", "0,nan", "--out",
          tmp_path / "e.png"], "--strength must be a finite number, got nan"),
        (["eval-attributes", "--data", data, "--regressor", inputs / "garbage.pt", "--checkpoint", run, "--out",
          tmp_path / "r"], "garbage.pt: not a regressor written by train-regressor (it cannot be loaded"),
        (["serve", "--checkpoint", run, "--host", "192.0.2.1", "--port", "0"],  # TEST-NET-1: never this machine's
         "--host 192.0.2.1 --port 0: cannot serve there (Cannot assign requested address); it is not an address"),
        (["serve", "--checkpoint", run, "--port", taken.getsockname()[1]],
         f"--host 127.0.0.1 --port {taken.getsockname()[1]}: cannot serve there (Address already in use); another"),
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
        (["train-regressor", "--data", data, "--out", tmp_path / "g", "--batch-size", "1"],
         "--batch-size must be >= 2"),
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
        (["sample", "--checkpoint", run, "--out", tmp_path / "s"], "name the output with an image extension"),
        (["sample", "--checkpoint", run, "--out", tmp_path / "s.bmpx"], "(.bmpx is not one Pillow writes)"),
        (["plot-quality", run, "--out", tmp_path / "q.xyz"], "(.xyz is not one matplotlib writes)"),
        (["reproduce", "--images", lfw / "lfw", "--attributes", lfw / "lfw_attributes.txt", "--config",
          world / "configs" / "tiny.yaml", "--out", tmp_path / "p.pt"], "p.pt is a file; --out must name a folder"),
        (["edit", "--checkpoint", run, photo, "--attribute", "Smiling", "--vectors", tmp_path / "p.pt", "--out",
          tmp_path / "e.png"], "not an attribute-vectors file (it cannot be loaded as one: UnpicklingError)"),
    ]
    with taken:
        for argv, fragment in cases:
            result = invoke(argv)
            one_error(result, fragment)
            assert result.output.count("\n") == 1, result.output  # one line, not torch's advice nor numpy's warning
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == ["c.pt", "p.pt", "v.pt"], leftovers


def test_align_with_no_face_and_a_huge_png(world, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 200), (128, 128, 128)).save(blank)
    huge = tmp_path / "huge.png"
    Image.new("1", (13000, 13000)).save(huge)  # 169 megapixels, a small file
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    result = invoke(["align", blank, huge, text, "--out", tmp_path / "aligned", "--device", "cpu"])
    one_error(result, "none of the 3 photos holds a face that could be aligned; nothing was written")
    assert "13000x13000 px is too large to decode" in result.output
    assert "notes.jpg: not a readable image (UnidentifiedImageError: not a format Pillow reads)" in result.output
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


def test_synth_lfw_replaces_an_existing_folder_only_with_force(tmp_path, monkeypatch):
    out = tmp_path / "synth"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    one_error(invoke(["synth-lfw", out, "--people", "2"]), "already exists; pass --force to replace it")
    monkeypatch.chdir(out)
    one_error(invoke(["synth-lfw", ".", "--people", "2", "--force"]),
              "holds the current folder, so it cannot be replaced")
    monkeypatch.chdir(tmp_path)
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


def test_nan_label_is_reported_when_the_dataset_opens(synthetic_dataset, tmp_path):
    import pandas as pd

    broken = tmp_path / "ds"
    shutil.copytree(synthetic_dataset, broken)
    index = pd.read_csv(broken / "index.csv")
    first = index.index[index["labelled"]][0]
    index.loc[first, "Smiling"] = float("nan")
    index.to_csv(broken / "index.csv", index=False)
    result = CliRunner().invoke(app, ["train-conditional", "--data", str(broken), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1 and "non-finite value in 'Smiling'" in result.output
    assert f"row {first + 2}" in result.output


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


@pytest.mark.slow
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


def refusals(data: Path, lfw: Path, tmp: Path) -> dict[str, list]:
    """Values refused before any work: the one line each names, and the command."""
    bad_yaml = tmp / "bad.yaml"
    bad_yaml.write_text("train: {epochs: [1, 2\n")
    train = ["train-conditional", "--data", data, "--out", tmp / "run"]
    return {
        "not valid YAML": train + ["--config", bad_yaml],
        "the value is not valid YAML": train + ["--set", "data.attributes=[a, b"],
        "train.log_every must be >= 1": train + ["--set", "train.log_every=0"],
        "train.max_steps must be >= 1": train + ["--max-steps", "0"],
        "optim.lr_decay must be > 0": train + ["--set", "optim.lr_decay=-0.5"],
        "optim.weight_decay must be >= 0": train + ["--set", "optim.weight_decay=-1"],
        "loss.gamma must be a finite number": train + ["--max-steps", "1", "--set", "loss.gamma=.nan"],
        "optim.lr must be a finite number": train + ["--max-steps", "1", "--set", "optim.lr=1e400"],
        "optim.alpha must be in (0, 1)": train + ["--max-steps", "1", "--set", "optim.alpha=5"],
        "model.z_dim must be >= 1": train + ["--max-steps", "1", "--set", "model.z_dim=0"],
        "split fractions must be 3 shares": ["prep-lfw", "--images", lfw / "lfw", "--out", tmp / "ds", "--val-fraction",
                                             "1.5", "--no-progress"],
    }


def test_bad_values_fail_at_once_with_one_line(synthetic_dataset, synthetic_lfw, tmp_path):
    for fragment, argv in refusals(synthetic_dataset, synthetic_lfw, tmp_path).items():
        result = invoke(argv)
        one_error(result, fragment)
        assert result.output.count("\n") == 1, result.output
    assert not (tmp_path / "run").exists() and not (tmp_path / "ds").exists()


def test_resume_refuses_other_training_data(synthetic_dataset, tmp_path):
    """Resume continues only on the data the run trained on: other attributes, other images in the
    batches, one changed pixel, label or manifest byte are refused; the same dataset moved is fine."""
    data = tmp_path / "data"
    shutil.copytree(synthetic_dataset, data)
    base = ["train-conditional", "--config", ROOT / "configs" / "demo.yaml", "--out", tmp_path / "run",
            "--no-progress", "--device", "cpu", "--batch-size", "16", "--set", "train.sample_every_epoch=false",
            "--model", "vae"]
    assert invoke(base + ["--data", data, "--max-steps", "1"]).exit_code == 0
    resume = base + ["--data", data, "--max-steps", "2", "--resume"]
    one_error(invoke(resume + ["--attributes", "Male,Smiling"]), "data.attributes changed")
    # same shapes, other data
    one_error(invoke(resume + ["--unlabelled", "skip", "--set", "model.labelled_input=true"]),
              "data.unlabelled changed")
    images = np.load(data / "images.npy")
    images[3, 0, 5, 5] ^= 1  # one pixel of one image, same size and manifest
    np.save(data / "images.npy", images)
    one_error(invoke(resume), "the dataset files")
    images[3, 0, 5, 5] ^= 1
    np.save(data / "images.npy", images)
    index = (data / "index.csv").read_text()
    (data / "index.csv").write_text(index.replace(",1.", ",2.", 1))  # one label
    one_error(invoke(resume), "the dataset files")
    (data / "index.csv").write_text(index)
    moved = tmp_path / "moved"
    shutil.move(data, moved)  # the same dataset elsewhere resumes fine
    assert invoke(base + ["--data", moved, "--max-steps", "2", "--resume"]).exit_code == 0
    (moved / "manifest.json").write_text((moved / "manifest.json").read_text().replace('"size"', '"size" ', 1))
    one_error(invoke(base + ["--data", moved, "--max-steps", "3", "--resume"]), "the dataset files")


@pytest.mark.slow
def test_reproduce_reuses_only_results_made_from_the_same_inputs(synthetic_lfw, tmp_path):
    """A second reproduce reuses its stages (an older record too); other overrides, another
    option or an image changed in place (same size and mtime) are refused without --force."""
    import json
    import os

    from attrgan.checkpoint import load_checkpoint

    photos = tmp_path / "lfw"
    shutil.copytree(synthetic_lfw / "lfw", photos)
    out = tmp_path / "exp"
    base = ["reproduce", "--images", photos, "--attributes", synthetic_lfw / "lfw_attributes.txt",
            "--config", ROOT / "configs" / "demo.yaml", "--out", out, "--models", "vae", "--size", "32",
            "--regressor-channels", "8,16,32", "--regressor-fc", "32", "--regressor-epochs", "1", "--seeds", "1",
            "--eval-every", "0", "--device", "cpu", "--no-progress", "--set", "train.max_steps=2",
            "--set", "model.z_dim=8", "--set", "train.sample_every_epoch=false"]
    first = invoke(base)
    assert first.exit_code == 0, first.output
    record = json.loads((out / "reproduce.json").read_text())
    assert record.pop("train_seeds") == 1
    (out / "reproduce.json").write_text(json.dumps(record))  # a record from before --train-seeds existed
    again = invoke(base)
    assert again.exit_code == 0 and "reusing" in again.output
    one_error(invoke(base[:-2] + ["--set", "train.max_steps=3"]), "made from other inputs (overrides changed)")
    assert (out / "runs" / "vae" / "checkpoint.pt").is_file()  # nothing was touched
    forced = invoke(base[:-2] + ["--set", "train.max_steps=3", "--force"])
    assert forced.exit_code == 0, forced.output
    assert load_checkpoint(out / "runs" / "vae")["step"] == 3
    seeds = base[:-2] + ["--set", "train.max_steps=3", "--train-seeds", "2", "--set", "train.seed=4"]
    assert invoke(seeds).exit_code == 1  # another option: refused without --force
    result = invoke(seeds + ["--force"])
    assert result.exit_code == 0, result.output
    assert [load_checkpoint(out / "runs" / run)["config"]["train"]["seed"] for run in ("vae", "vae-seed5")] == [4, 5]
    group = json.loads((out / "report" / "metrics.json").read_text())["across_training_seeds"]["groups"]["VAE"]
    assert group["train_seeds"] == [4, 5] and group["updates"] == [3, 3]
    assert "VAE over training seeds 4, 5: cosine" in result.output
    assert "## Across training seeds" in (out / "report" / "report.md").read_text()
    # reproduce's own output changed in place: that stage and the later ones redone
    stored = out / "dataset" / "images.npy"
    pixels = bytearray(stored.read_bytes())
    pixels[-1] ^= 1
    stored.write_bytes(bytes(pixels))
    redone = invoke(seeds)
    assert redone.exit_code == 0, redone.output
    assert "dataset changed since reproduce wrote it: redoing it and every later stage" in redone.output
    assert "reusing" not in redone.output and np.load(stored)[-1, -1, -1, -1] == pixels[-1] ^ 1
    assert invoke(seeds).output.count("reusing") == 4  # dataset, regressor, both runs
    image = sorted(photos.rglob("*.jpg"))[0]
    stat = image.stat()
    data = bytearray(image.read_bytes())
    data[-10] ^= 0xFF
    image.write_bytes(bytes(data))
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    one_error(invoke(seeds), "made from other inputs (images changed)")


@pytest.mark.slow
def test_an_interrupted_reproduce_names_the_resume_command(synthetic_lfw, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    argv = ["reproduce", "--images", synthetic_lfw / "lfw", "--attributes", synthetic_lfw / "lfw_attributes.txt",
            "--config", ROOT / "configs" / "demo.yaml", "--out", tmp_path / "exp", "--models", "vae", "--size", "32",
            "--regressor-channels", "8,16,32", "--regressor-fc", "32", "--regressor-epochs", "1", "--seeds", "1",
            "--eval-every", "0", "--device", "cpu", "--no-progress", "--set", "model.z_dim=8",
            "--set", "train.sample_every_epoch=false", "--set", "train.max_steps=4000"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen([sys.executable, "-m", "cli.main", *map(str, argv)], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in child.stdout:
        if "train-conditional" in line:  # the third stage has started
            break
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    assert "to resume the experiment, run the same command again" in err and "attrgan reproduce --images" in err, err


def test_an_output_inside_an_input_folder_beside_its_files_is_fine(learnable_dataset, trained_regressor,
                                                                   conditional_run, tmp_path):
    """A report inside the run folder it scores overlaps no file it reads."""
    run = tmp_path / "run"
    shutil.copytree(conditional_run, run)
    checkpoint = (run / "checkpoint.pt").read_bytes()
    ok = invoke(["eval-attributes", "--data", learnable_dataset, "--regressor", trained_regressor, "--checkpoint", run,
                 "--seeds", "1", "--device", "cpu", "--force", "--out", run / "report", "--no-control"])
    assert ok.exit_code == 0, ok.output
    assert (run / "checkpoint.pt").read_bytes() == checkpoint and (run / "report" / "report.md").is_file()


@pytest.mark.slow
def test_one_writer_per_output_folder(synthetic_dataset, tmp_path):
    """A second writer of a run folder is refused in one line naming the first (PID, start,
    command) and changes nothing; the lock a killed writer left is taken over with a note."""
    import json
    import os
    import subprocess
    import sys
    import time

    from attrgan.runtime.lock import lock_file

    run = tmp_path / "run"
    argv = ["train-conditional", "--data", synthetic_dataset, "--config", ROOT / "configs" / "demo.yaml", "--out", run,
            "--device", "cpu", "--batch-size", "16", "--no-progress", "--set", "train.sample_every_epoch=false"]
    child = subprocess.Popen([sys.executable, "-m", "cli.main", *map(str, argv), "--max-steps", "100000"], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not (run / "metrics.csv").is_file() and time.monotonic() < deadline:  # training has begun
            time.sleep(0.2)
        assert json.loads(lock_file(run).read_text())["pid"] == child.pid
        for extra in (["--resume"], ["--force", "--seed", "7"]):
            one_error(invoke(argv + ["--max-steps", "3"] + extra),
                      f"is being written by another process (PID {child.pid}")
        assert "seed: 0" in (run / "config.yaml").read_text() and child.poll() is None  # the first writer's run
    finally:
        child.kill()
        child.wait()
    taken = invoke(argv + ["--max-steps", "1", "--force"])
    assert taken.exit_code == 0, taken.output
    assert f"taking over the lock left by PID {child.pid}" in taken.output
    assert not lock_file(run).exists()


def test_a_dataset_that_shrinks_or_vanishes_while_read_is_one_error(synthetic_dataset, tmp_path):
    """A memory-mapped images.npy truncated under a reader would end it with a bus error; the
    next read names the file instead."""
    from attrgan.data.dataset import DatasetError, ImageRows, open_dataset

    data = tmp_path / "data"
    shutil.copytree(synthetic_dataset, data)
    dataset = open_dataset(data)
    rows = ImageRows(dataset, dataset.rows(labelled_only=False), 32)
    whole = rows[np.arange(len(rows))]
    path = data / "images.npy"
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size // 2)
    with pytest.raises(DatasetError, match=r"images.npy shrank to .* bytes .* while it was being read"):
        rows[np.arange(len(rows) - 2, len(rows))]
    path.unlink()
    with pytest.raises(DatasetError, match="images.npy vanished while it was being read"):
        rows[np.arange(2)]
    assert whole.shape == (len(rows), 3, 32, 32)


@pytest.mark.slow
def test_a_full_disk_names_the_file_and_replaces_nothing(tmp_path):
    """A write that runs out of room (here: a file-size limit) is one line naming the output."""
    import resource
    import signal
    import subprocess
    import sys

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    out = tmp_path / "faces.bmp"  # uncompressed: 64 faces are ~200 KB whatever they show
    out.write_bytes(b"earlier")
    result = subprocess.run([sys.executable, "-m", "cli.main", "sample", "--checkpoint",
                             ROOT / "tests" / "fixtures" / "vaegan-2026-12-05.pt", "-n", "64", "--out", out, "--force"],
                            cwd=ROOT, capture_output=True, text=True, preexec_fn=small_files, timeout=300)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {out}: File too large while writing it (nothing was "
                                                  "replaced); free some space or write elsewhere"]
    assert out.read_bytes() == b"earlier" and sorted(p.name for p in tmp_path.iterdir()) == ["faces.bmp"]


@pytest.mark.slow
def test_sigterm_in_prep_cleans_up_like_ctrl_c(tmp_path):
    """SIGTERM during prep-lfw stops it as Ctrl-C does: the temporary folder goes, nothing is
    written, one line says so, exit 143."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from data_prep.synth import write_synthetic_lfw

    write_synthetic_lfw(tmp_path / "lfw-root", people=150, max_images=5, seed=5)
    out = tmp_path / "ds"
    child = subprocess.Popen([sys.executable, "-m", "cli.main", "prep-lfw", "--images",
                              str(tmp_path / "lfw-root" / "lfw"),
                              "--out", str(out), "--size", "32", "--device", "cpu", "--no-progress"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".ds.tmp-*")) and time.monotonic() < deadline:  # the alignment pass has begun
        time.sleep(0.1)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 143, err
    assert err.strip().splitlines()[-1] == f"interrupted by SIGTERM: nothing was written to {out}", err
    assert not out.exists() and not list(tmp_path.glob(".ds.*"))
