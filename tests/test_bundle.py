"""Bundled models: a compact copy of a trained generator and regressor under a short name, used
wherever a checkpoint or regressor is taken, checked by sha256, and a start for fine-tuning.
The tests bundle the session's tiny models into a folder of their own."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import RENDERED, ROOT, invoke, one_error

import attrgan
import attrgan.bundle
from attrgan.bundle_export import export
from attrgan.checkpoint import CheckpointError, load_checkpoint
from attrgan.editing.edits import attribute_row
from attrgan.evaluation.regressor import load_regressor


@pytest.fixture
def bundled(conditional_run, trained_regressor, tmp_path, monkeypatch):
    """The tiny VAE and regressor bundled as "toy" in a folder of this test's own."""
    folder = tmp_path / "bundled"
    folder.mkdir()
    monkeypatch.setattr(attrgan.bundle, "BUNDLE_DIR", folder)
    monkeypatch.setattr(attrgan.bundle, "_verified", set())
    exported = invoke(["export-model", "toy", "--checkpoint", conditional_run, "--regressor", trained_regressor,
                       "--card", "a tiny VAE of the synthetic faces, for the tests", "--into", folder])
    assert exported.exit_code == 0 and exported.output.startswith("bundled toy ("), exported.output
    return folder


def flip_a_byte(file: Path) -> None:
    """Damage ``file`` as a bad download or disk would: one byte in its middle inverted."""
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))


def test_export_checks_both_checkpoints_before_writing(conditional_run, trained_regressor, tmp_path):
    """A regressor given as the generator (or the reverse) is one error, and nothing is written."""
    folder = tmp_path / "bundled"
    folder.mkdir()
    with pytest.raises(CheckpointError) as caught:
        export("toy", "swapped", trained_regressor, conditional_run, folder)
    assert "this is a 'regressor' checkpoint, expected 'vaegan' or 'vae'" in str(caught.value)
    one_error(invoke(["export-model", "toy", "--checkpoint", conditional_run, "--regressor", conditional_run,
                      "--card", "x", "--into", folder]), "checkpoint, expected 'regressor'")
    assert list(folder.iterdir()) == []


def test_a_bundled_model_is_compact_and_samples_as_its_run(bundled, conditional_run, tmp_path):
    stored = load_checkpoint("toy")
    assert sorted(stored["nets"]) == ["decoder", "encoder"] and "optimizers" not in stored and "rng" not in stored
    floats = [t for net in stored["nets"].values() for t in net.values() if t.is_floating_point()]
    assert all(t.dtype == torch.float16 for t in floats)
    assert (bundled / "toy.generator.pt").stat().st_size < 0.3 * (conditional_run / "checkpoint.pt").stat().st_size
    rows = np.stack([attrgan.load(conditional_run).scaler.mean] * 4).astype(np.float32)
    full, compact = attrgan.load(conditional_run).sample(rows, seed=3), attrgan.load("toy").sample(rows, seed=3)
    assert (full - compact).abs().max() < 0.02  # half-precision storage: under 3 of 255 levels
    listed = invoke(["models"])
    assert listed.exit_code == 0 and listed.output.startswith("toy") and "a tiny VAE" in listed.output
    first, again = tmp_path / "a.png", tmp_path / "b.png"
    for out in (first, again):
        result = invoke(["sample", "--checkpoint", "toy", "--set", "Smiling=2", "-n", "4", "--seed", "5",
                         "--out", out])
        assert result.exit_code == 0, result.output
    assert first.read_bytes() == again.read_bytes()  # reproducible for a seed
    photo = tmp_path / "face.png"
    from PIL import Image
    from skimage.data import astronaut

    Image.fromarray(astronaut()).save(photo)
    edited = invoke(["edit", "--checkpoint", "toy", photo, "--attribute", "Smiling", "--mode", "condition",
                     "--regressor", "toy", "--report", "--out", tmp_path / "edit.png"])
    assert edited.exit_code == 0 and "Smiling: slope" in edited.output, edited.output


def test_a_damaged_bundled_file_is_refused_in_one_line(bundled, tmp_path):
    flip_a_byte(bundled / "toy.generator.pt")
    one_error(invoke(["sample", "--checkpoint", "toy", "--out", tmp_path / "s.png"]),
              "bundled model 'toy': its generator file")
    one_error(invoke(["sample", "--checkpoint", "toys", "--out", tmp_path / "s.png"]),
              "toys: checkpoint not found (nor a bundled model: toy)")


def test_fine_tuning_starts_from_the_bundled_weights(bundled, learnable_dataset, tmp_path):
    run = tmp_path / "tuned"
    result = invoke(["train-conditional", "--init", "toy", "--data", learnable_dataset, "--out", run, "--max-steps",
                     "1", "--set", "optim.lr=1e-12", "--set", "train.sample_every_epoch=false", "--device", "cpu",
                     "--no-progress"])
    assert result.exit_code == 0, result.output
    tuned, start = load_checkpoint(run), load_checkpoint("toy")
    assert tuned["kind"] == "vae" and tuned["attribute_names"] == RENDERED
    for key, value in start["nets"]["decoder"].items():
        if value.is_floating_point() and "running" not in key:
            torch.testing.assert_close(tuned["nets"]["decoder"][key], value.float(), atol=1e-6, rtol=0)
    one_error(invoke(["train-conditional", "--init", "toy", "--data", learnable_dataset, "--out", tmp_path / "other",
                      "--attributes", "Male,Smiling", "--max-steps", "1", "--no-progress"]),
              "--init toy: the model conditions on other attributes than this run (this run lacks 'Mouth Wide Open'")


def test_serve_without_a_checkpoint_opens_the_bundled_model_with_no_dataset_at_hand(bundled, tmp_path):
    """No --checkpoint: the studio opens the bundled model and its regressor; the bundled copy
    does not point at the exporter's dataset, so the page offers no test faces, while samples
    and uploads work."""
    from PIL import Image
    from skimage.data import astronaut

    from attrgan.editing.studio import default_model, load_studio
    from attrgan.editing.webapp import create_app

    checkpoint, regressor = default_model(None)
    assert (checkpoint, regressor) == ("toy", "toy")
    studio = load_studio(checkpoint, regressor)
    assert studio.model.training_data is None and studio.describe()["test_faces"] == 0
    client = create_app(studio).test_client()
    assert client.get("/api/sample.png?n=2&seed=0").status_code == 200
    photo = tmp_path / "face.png"
    Image.fromarray(astronaut()).save(photo)
    uploaded = client.post("/api/photos", data={"photo": (open(photo, "rb"), "face.png")})
    assert uploaded.status_code == 201 and uploaded.json["attributes_from"] == "regressor", uploaded.json


def test_serve_without_a_checkpoint_or_a_bundled_model_says_what_to_pass(tmp_path, monkeypatch):
    monkeypatch.setattr(attrgan.bundle, "BUNDLE_DIR", tmp_path)
    one_error(invoke(["serve", "--port", "0"]), "--checkpoint is needed: no trained model is bundled")


# The LFW model that ships (docs/models.md). Its reference samples (tests/fixtures/lfw32-samples.pt)
# were drawn from the bundled copy when it was exported: four queries, sampling seed 7.
SHIPPED = "lfw32"


def test_the_shipped_lfw_model_samples_as_when_it_was_exported():
    assert SHIPPED in attrgan.bundle.catalogue(), "the LFW model is missing from attrgan/bundled/models.json"
    model = attrgan.load(SHIPPED)
    assert (model.kind, model.image_size, len(model.attribute_names), model.training_data) == ("vaegan", 32, 73, None)
    expected = torch.load(ROOT / "tests" / "fixtures" / f"{SHIPPED}-samples.pt", weights_only=True)
    samples = model.sample(expected["attributes"].numpy(), seed=expected["seed"])
    torch.testing.assert_close(samples, model.sample(expected["attributes"].numpy(), seed=expected["seed"]),
                               rtol=0, atol=0)  # the same seed, the same faces
    torch.testing.assert_close(samples, expected["samples"], rtol=0, atol=1e-4)  # as exported, on any CPU
    assert attrgan.bundle.size_mb(attrgan.bundle.catalogue()[SHIPPED]) <= 50


def test_the_shipped_lfw_model_draws_the_queried_sex():
    """Its regressor reads the queried sex back from its samples: Male queried at +1.5 and at
    -1.5 std (raw 2.4 and -0.2), the same 16 codes for both. (Exported: 16 of 16 ordered, the
    means 0.92 std apart, yet every face still read as a man: the card's known limit.)"""
    model, regressor = attrgan.load(SHIPPED), load_regressor(SHIPPED)
    male = model.attribute_names.index("Male")
    samples = {offset: model.sample(np.stack([attribute_row(model, {"Male": offset})] * 16), seed=11)
               for offset in (1.5, -1.5)}
    read = {offset: regressor.predict_raw(images, torch.device("cpu"))[0][:, male]
            for offset, images in samples.items()}
    assert (read[1.5] > read[-1.5]).sum() >= 14, read
    assert read[1.5].mean() - read[-1.5].mean() > 0.5 * model.scaler.std[male], read


def test_a_damaged_copy_of_the_shipped_model_is_refused(tmp_path, monkeypatch):
    for file in attrgan.bundle.BUNDLE_DIR.iterdir():
        shutil.copy(file, tmp_path / file.name)
    flip_a_byte(tmp_path / f"{SHIPPED}.generator.pt")
    monkeypatch.setattr(attrgan.bundle, "BUNDLE_DIR", tmp_path)
    monkeypatch.setattr(attrgan.bundle, "_verified", set())
    one_error(invoke(["sample", "--checkpoint", SHIPPED, "--out", tmp_path / "s.png"]),
              f"bundled model '{SHIPPED}': its generator file")
