"""Stage editing: users' photos aligned, attribute vectors, edits, reconstructions and interpolations from the CLI."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner

import attrgan
from attrgan.data.dataset import load_images, open_dataset, to_uint8
from attrgan.editing.edits import (
    align_photos,
    compute_attribute_vectors,
    edit_images,
    edit_slopes,
    load_attribute_vectors,
    save_attribute_vectors,
)
from attrgan.evaluation.regressor import load_regressor
from cli.main import app

runner = CliRunner()


def tiles(grid_png) -> list[list[np.ndarray]]:
    """The 32x32 faces of a saved grid (1-px padding), row by row, as int arrays [32, 32, 3]."""
    grid = np.asarray(Image.open(grid_png).convert("RGB")).astype(int)
    rows, columns = (grid.shape[0] - 1) // 33, (grid.shape[1] - 1) // 33
    return [[grid[1 + 33 * r : 33 + 33 * r, 1 + 33 * c : 33 + 33 * c] for c in range(columns)] for r in range(rows)]


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to one 8-bit level (the PNG holds the rounded face)."""
    return int(np.abs(a - b).max()) <= 1


def test_align_skips_bad_photos_with_a_message(photos, tmp_path):
    result = runner.invoke(app, ["align", str(photos / "astronaut.png"), str(photos / "corrupt.jpg"),
                                 str(photos / "blank.png"), "--out", str(tmp_path / "aligned"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "corrupt.jpg: not a readable image" in result.output
    assert "blank.png: no face found; skipped" in result.output
    assert "aligned 1 of 3 photos" in result.output
    assert Image.open(tmp_path / "aligned" / "astronaut.png").size == (64, 64)
    none = runner.invoke(app, ["align", str(photos / "blank.png"), "--out", str(tmp_path / "none")])
    assert none.exit_code == 1


def test_commands_write_images_of_the_expected_size(photos, conditional_run, trained_regressor, learnable_dataset,
                                                    tmp_path):
    base = ["--checkpoint", str(conditional_run), "--device", "cpu"]
    astronaut, blank = str(photos / "astronaut.png"), str(photos / "blank.png")
    calls = {
        "recon.png": ["reconstruct", *base, astronaut, "--out", str(tmp_path / "recon.png")],
        "sample.png": ["sample", *base, "--set", "Pale Skin=2", "--set", "Eyeglasses=1.5", "-n", "4",
                       "--out", str(tmp_path / "sample.png")],
        "edit.png": ["edit", *base, astronaut, "--attribute", "Eyeglasses", "--mode", "condition",
                     "--strength", "-2,0,2", "--out", str(tmp_path / "edit.png")],
        "strip.png": ["interpolate", *base, astronaut, astronaut, "--steps", "5", "--out", str(tmp_path / "strip.png")],
    }
    for name, args in calls.items():
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (name, result.output)
    # grids of 32x32 faces with 1-px padding, holding the model's own faces
    assert Image.open(tmp_path / "recon.png").size == (1 + 33, 1 + 2 * 33)
    assert Image.open(tmp_path / "sample.png").size == (1 + 2 * 33, 1 + 2 * 33)
    assert Image.open(tmp_path / "edit.png").size == (1 + 3 * 33, 1 + 33)
    assert Image.open(tmp_path / "strip.png").size == (1 + 5 * 33, 1 + 33)
    model = attrgan.load(conditional_run)
    crop, _, _ = align_photos([photos / "astronaut.png"], size=32, device="cpu")
    raw = model.scaler.mean[None].astype(np.float32)  # no --regressor: the training-mean attributes
    reconstruction = to_uint8(model.reconstruct(crop, raw)[0]).permute(1, 2, 0).numpy().astype(int)
    recon = tiles(tmp_path / "recon.png")
    assert np.array_equal(recon[0][0], crop[0].permute(1, 2, 0).numpy()) and close(recon[1][0], reconstruction)
    edit = tiles(tmp_path / "edit.png")[0]
    assert close(edit[1], reconstruction)  # strength 0: the photo's own reconstruction
    assert np.abs(edit[0] - edit[2]).mean() > 1.0  # Eyeglasses at -2 and +2 std draw different faces
    strip = tiles(tmp_path / "strip.png")[0]
    assert all(close(face, reconstruction) for face in strip)  # from a photo to itself: the same face throughout
    samples = [face for row in tiles(tmp_path / "sample.png") for face in row]
    assert all(np.abs(samples[0] - other).mean() > 1.0 for other in samples[1:])  # one condition, four codes
    # latent arithmetic through the CLI: attribute-vectors, then edit --mode latent
    vectors = tmp_path / "vectors.pt"
    made = runner.invoke(app, ["attribute-vectors", *base, "--data", str(learnable_dataset), "--out", str(vectors)])
    assert made.exit_code == 0, made.output
    name = next(iter(load_attribute_vectors(vectors)))
    latent = runner.invoke(app, ["edit", *base, astronaut, "--attribute", name, "--vectors", str(vectors),
                                 "--strength", "-1,1", "--out", str(tmp_path / "latent.png")])
    assert latent.exit_code == 0, latent.output
    assert Image.open(tmp_path / "latent.png").size == (1 + 2 * 33, 1 + 33)
    # refusals: one clear line, non-zero exit
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    bad = runner.invoke(app, ["edit", *base, astronaut, "--attribute", name, "--vectors", str(tmp_path / "bad.pt"),
                              "--out", str(tmp_path / "v.png")])
    assert bad.exit_code == 1 and "not an attribute-vectors file" in bad.output
    unknown = runner.invoke(app, ["edit", *base, astronaut, "--attribute", "Glasses", "--mode", "condition",
                                  "--out", str(tmp_path / "x.png")])
    assert unknown.exit_code == 1 and "unknown attribute 'Glasses'" in unknown.output
    typo = runner.invoke(app, ["sample", *base, "--set", "pale_skin=2", "--out", str(tmp_path / "x.png")])
    assert typo.exit_code == 1 and "did you mean 'Pale Skin'?" in typo.output, typo.output
    no_vectors = runner.invoke(app, ["edit", *base, astronaut, "--attribute", name, "--out", str(tmp_path / "x.png")])
    assert no_vectors.exit_code == 1 and "--mode latent adds an attribute vector" in no_vectors.output
    save_attribute_vectors({name: torch.ones(5)}, tmp_path / "other.pt", "a model with a 5-dim code")
    other = runner.invoke(app, ["edit", *base, astronaut, "--attribute", name, "--vectors", str(tmp_path / "other.pt"),
                                "--out", str(tmp_path / "x.png")])
    assert other.exit_code == 1 and "this model's code has 8" in other.output, other.output
    missing = runner.invoke(app, ["edit", *base, astronaut, "--attribute", "Bangs", "--vectors", str(vectors),
                                  "--out", str(tmp_path / "x.png")])
    assert missing.exit_code == 1 and "no attribute vector for 'Bangs'" in missing.output
    corrupt = runner.invoke(app, ["reconstruct", *base, str(photos / "corrupt.jpg"), "--out", str(tmp_path / "y.png")])
    assert corrupt.exit_code == 1 and "not a readable image" in corrupt.output
    wrong = runner.invoke(app, ["sample", "--checkpoint", str(trained_regressor), "--out", str(tmp_path / "z.png")])
    assert wrong.exit_code == 1 and "'regressor' checkpoint" in wrong.output
    no_face = runner.invoke(app, ["reconstruct", *base, blank, "--out", str(tmp_path / "w.png")])
    assert no_face.exit_code == 1 and "none of the given images holds a face" in no_face.output
    for settings, message in ((["Smiling"], "expected Name=value"), (["Smiling=nan"], "finite number"),
                              (["Smiling=1", "Smiling=2"], "given twice")):
        refused = runner.invoke(app, ["sample", *base, *[a for s in settings for a in ("--set", s)],
                                      "--out", str(tmp_path / "s.png")])
        assert refused.exit_code == 1 and message in refused.output, refused.output
    assert not any((tmp_path / n).exists() for n in ("v.png", "x.png", "y.png", "z.png", "w.png", "s.png"))


def test_editing_moves_the_regressed_attribute_monotonically(learnable_dataset, conditional_run, trained_regressor):
    model = attrgan.load(conditional_run)
    regressor = load_regressor(trained_regressor)
    dataset = open_dataset(learnable_dataset)
    rows = dataset.rows("test")[:12]
    images, raw = load_images(dataset, rows, 32), dataset.attributes(rows, model.attribute_names)
    strengths = [-2.0, -1.0, 0.0, 1.0, 2.0]
    for attribute in ("Pale Skin", "Black Hair"):
        edited = edit_images(model, images, raw, attribute, strengths, "condition")
        result = edit_slopes(regressor, model, edited, len(rows), strengths, attribute, model.device)
        assert result["monotonic_on_average"], result["mean_regressed_by_strength"]
        assert result["slope"] > 2 * result["other_mean_abs_slope"] > 0, result
    vectors = compute_attribute_vectors(model, dataset)
    assert set(vectors) <= set(model.attribute_names) and len(vectors) >= 5
    assert all(v.shape == (8,) and np.isfinite(v.numpy()).all() for v in vectors.values())


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
