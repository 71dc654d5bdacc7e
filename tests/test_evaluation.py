"""Stage evaluation: the regressor, metrics, eval-attributes' Table 1 and report, training-seed summaries."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch
from helpers import RENDERED, tiny_config
from PIL import Image
from typer.testing import CliRunner

from attrgan.checkpoint import CheckpointError
from attrgan.data.dataset import open_dataset
from attrgan.editing.studio import load_studio
from attrgan.evaluation.evaluate import EvalConfig, evaluate_attributes
from attrgan.evaluation.metrics import (
    BAND_NAMES,
    MID_BAND,
    centred_cosine,
    cosine_similarity,
    frechet_distance,
    mean_std,
    r2_per_attribute,
    sign_accuracy,
    squared_error,
)
from attrgan.nets.loaded import load
from attrgan.training.loop import train
from cli.main import app


def test_metrics_on_hand_made_vectors():
    a = np.array([[1.0, 0.0], [1.0, 1.0], [2.0, -1.0]])
    b = np.array([[2.0, 0.0], [-1.0, -1.0], [1.0, 2.0]])
    np.testing.assert_allclose(cosine_similarity(a, b), [1.0, -1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(squared_error(a, b), [1.0, 8.0, 10.0])
    assert mean_std([1.0, 3.0]) == (2.0, 1.0)
    assert mean_std([5.0]) == (5.0, 0.0)
    np.testing.assert_allclose(r2_per_attribute(b, b), [1.0, 1.0])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 3))
    assert frechet_distance(x, x) < 1e-6
    assert abs(frechet_distance(x, x + [2.0, 0, 0]) - 4.0) < 1e-6
    # against the textbook matrix square root, for N > D and N < D
    from scipy import linalg

    for n, d in ((400, 6), (30, 50)):
        a, b = rng.normal(size=(n, d)), rng.normal(size=(n + 7, d)) * 1.5 + 0.3
        ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        textbook = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * linalg.sqrtm(ca @ cb).real)
        assert frechet_distance(a, b) == pytest.approx(textbook, rel=1e-6)


def test_centred_cosine_and_sign_accuracy_do_not_reward_the_average_face():
    """Queries that share a large common component: predicting the average vector for every
    query scores a high raw cosine, but a centred cosine near 0 and sign accuracy of a coin."""
    rng = np.random.default_rng(1)
    mean, std = np.array([3.0, -2.0, 1.0, 2.5]), np.array([1.0, 0.5, 1.0, 0.8])
    queries = mean + std * rng.normal(size=(4000, 4))
    average = np.repeat(mean[None], len(queries), 0)
    assert cosine_similarity(average, queries).mean() > 0.85
    assert abs(centred_cosine(average + 1e-9, queries, mean, std).mean()) < 0.05
    assert centred_cosine(queries, queries, mean, std).mean() == pytest.approx(1.0)
    centred_signs = sign_accuracy(queries - mean, queries - mean)
    np.testing.assert_allclose(centred_signs, 1.0)
    flipped = sign_accuracy(np.array([[1.0, -1.0], [1.0, 1.0]]), np.array([[2.0, 1.0], [-1.0, 3.0]]))
    np.testing.assert_allclose(flipped, [0.5, 0.5])


def test_power_spectrum_bands_tell_sharpness_from_a_checkerboard():
    """Blurring smooth faces lowers the mid and high bands against the sharp ones and leaves the
    lowest near 1; a faint period-2 checkerboard added to them raises the (1/2, 1/2) corner by
    orders of magnitude while the bands up to 3/8 stay put; uint8 and [-1, 1] inputs agree."""
    from torchvision.transforms.functional import gaussian_blur

    from attrgan.evaluation.metrics import power_spectrum_bands, spectrum_vs_real

    torch.manual_seed(0)
    faces = gaussian_blur(torch.rand(8, 3, 32, 32) * 2 - 1, [5, 5], [1.0, 1.0])
    real = power_spectrum_bands(faces)
    assert list(real) == [*BAND_NAMES, "corner"] and all(v > 0 for v in real.values())
    blurred = spectrum_vs_real(gaussian_blur(faces, [9, 9], [1.5, 1.5]), real)
    assert 0.5 < blurred["0-1/8"] <= 1.0 and blurred[MID_BAND] < 0.6 and blurred["1/4-3/8"] < blurred[MID_BAND]
    checker = (torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2 * 2 - 1  # +-1, period 2 on both axes
    speckled = spectrum_vs_real(faces + 0.05 * checker * torch.tensor([0.0, 1.0, -1.0])[:, None, None], real)
    assert speckled["corner"] > 100 and all(speckled[b] == pytest.approx(1.0, rel=0.02) for b in BAND_NAMES[:3])
    as_uint8 = ((faces + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    assert power_spectrum_bands(as_uint8) == real  # floats are measured on the 8-bit grid, as saved


def test_high_frequency_energy_tells_blur_from_colour_speckle():
    """A smooth face-like image: blurring lowers its grey detail; colour noise that leaves every
    pixel's grey value alone raises only the colour energy; uint8 and [-1, 1] inputs agree."""
    from torchvision.transforms.functional import gaussian_blur

    from attrgan.evaluation.metrics import high_frequency_energy

    torch.manual_seed(0)
    base = gaussian_blur(torch.rand(4, 3, 32, 32) * 2 - 1, [5, 5], [1.0, 1.0])
    detail, colour = high_frequency_energy(base)
    blurred = high_frequency_energy(gaussian_blur(base, [9, 9], [2.0, 2.0]))
    assert blurred[0] < 0.5 * detail and blurred[1] < colour
    noise = torch.randn(4, 3, 32, 32) * 0.1
    speckled = high_frequency_energy(base + noise - noise.mean(1, keepdim=True))
    assert speckled[0] == pytest.approx(detail, rel=1e-4) and speckled[1] > 5 * colour
    as_uint8 = ((base + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    np.testing.assert_allclose(high_frequency_energy(as_uint8), (detail, colour), rtol=0.05)


def test_prior_mismatch_is_zero_for_codes_that_fill_the_prior_and_grows_with_their_spread():
    """The aggregate posterior of means ~ N(0, 0.5 I) with posterior variance 0.5 is N(0, I):
    ~0 nats; means spread 3x wider sit far from the prior. The Gaussian KL agrees with torch's."""
    from attrgan.evaluation.metrics import kl_from_standard_normal, prior_mismatch

    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(0, np.sqrt(0.5), (20000, 8)), np.full((20000, 8), np.log(0.5))
    assert prior_mismatch(mu, logvar) < 0.01
    # 3x wider means: variance 9 * 0.5 + 0.5 = 5 per axis; shifted by 1: |mean|^2 / 2 = 4
    assert prior_mismatch(3 * mu, logvar) == pytest.approx(8 * 0.5 * (5 - 1 - np.log(5)), abs=0.1)
    assert prior_mismatch(mu + 1, logvar) == pytest.approx(4.0, abs=0.05)
    a = rng.normal(size=(4, 4))
    mean, cov = rng.normal(size=4), a @ a.T + np.eye(4)
    expected = torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(torch.tensor(mean), torch.tensor(cov)),
        torch.distributions.MultivariateNormal(torch.zeros(4, dtype=torch.float64), torch.eye(4, dtype=torch.float64)))
    assert kl_from_standard_normal(mean, cov) == pytest.approx(float(expected), rel=1e-9)


def test_regressor_learns_the_rendered_attributes(trained_regressor):
    metrics = json.loads((trained_regressor / "metrics.json").read_text())
    assert metrics["test"]["cosine_similarity"] > 0.9, metrics["test"]
    assert min(metrics["test"]["r2"].values()) > 0.3


def test_regressor_ensemble_averages_members_and_mirror_images(learnable_dataset, tmp_path):
    """Two members with the flip: the loaded regressor's prediction is the mean of both members'
    outputs on each image and its mirror image; the Fréchet features are the first member's on
    the unflipped image; a checkpoint from before ensembles loads as one member, no flip."""
    from attrgan.checkpoint import load_checkpoint, save_checkpoint
    from attrgan.evaluation.regressor import RegressorConfig, load_regressor, train_regressor

    config = RegressorConfig(data=str(learnable_dataset), image_size=32, channels=[8, 16, 32], fc=32,
                             attributes=RENDERED[:4], epochs=2, ensemble=2, device="cpu", progress=False)
    metrics = train_regressor(config, tmp_path / "reg")
    assert [m["seed"] for m in metrics["members"]] == [0, 1] and "val" in metrics["members"][1]
    loaded = load_regressor(tmp_path / "reg")
    assert len(loaded.models) == 2 and loaded.flip_average
    dataset = open_dataset(learnable_dataset)
    x = torch.from_numpy(np.array(dataset.images[:10])).float() / 127.5 - 1
    raw, features = loaded.predict_raw(x, torch.device("cpu"))
    with torch.no_grad():
        outs = [m(view)[0] for m in loaded.models for view in (x, x.flip(3))]
        expected = loaded.outputs.to_raw(torch.stack(outs).mean(0).numpy(), loaded.scaler)
        np.testing.assert_allclose(raw, expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(features, loaded.models[0](x)[1].numpy(), rtol=1e-5, atol=1e-6)
        assert not np.allclose(raw, loaded.outputs.to_raw(loaded.models[0](x)[0].numpy(), loaded.scaler), atol=1e-4)

    payload = load_checkpoint(tmp_path / "reg" / "regressor.pt")
    del payload["flip_average"], payload["nets"]["regressor_1"]
    old = tmp_path / "old.pt"
    save_checkpoint(old, payload)
    single = load_regressor(old)
    assert len(single.models) == 1 and not single.flip_average
    with torch.no_grad():
        np.testing.assert_allclose(single.predict_raw(x, torch.device("cpu"))[0],
                                   single.outputs.to_raw(single.models[0](x)[0].numpy(),
                                                         single.scaler), rtol=1e-5, atol=1e-5)


def test_condition_slopes_follow_the_condition(learnable_dataset, trained_regressor, conditional_run):
    """The tiny conditional VAE, trained on rendered attributes, moves the regressed attribute
    with its condition; a model whose decoder ignores y would give slopes near 0."""
    from attrgan.evaluation.evaluate import condition_slopes
    from attrgan.evaluation.regressor import load_regressor
    from attrgan.nets.loaded import load

    dataset = open_dataset(learnable_dataset)
    queries = dataset.attributes(dataset.rows("test"), RENDERED)
    slopes = condition_slopes(load(conditional_run), load_regressor(trained_regressor), queries,
                              torch.device("cpu"), "fp32")
    assert slopes["Male"] > 0.3 and slopes["Eyeglasses"] > 0.3, slopes


def test_conditioning_beats_shuffled_queries_and_report_agrees(learnable_dataset, trained_regressor, conditional_run,
                                                               tmp_path):
    out = tmp_path / "report"
    metrics = evaluate_attributes(EvalConfig(data=learnable_dataset, regressor=trained_regressor,
                                             checkpoints=[conditional_run], out=out, seeds=3, device="cpu"))
    row = metrics["models"][0]
    control = row["shuffled_query_control"]
    assert row["cosine_similarity"] > control["cosine_similarity"] + 0.05, (row, control)
    assert row["squared_error"] < control["squared_error"]
    assert metrics["upper_bound"]["cosine_similarity"] > row["cosine_similarity"] - 0.02
    # the control's reference: real faces scored against other faces' queries, well below their own
    real_shuffled = metrics["upper_bound"]["shuffled_query_control"]["cosine_similarity"]
    assert real_shuffled < metrics["upper_bound"]["cosine_similarity"] - 0.1
    for name in ("report.md", "metrics.json", "per_attribute_error.png", "regressed_vs_query.png", "grid_vae.png"):
        assert (out / name).stat().st_size > 0, name
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["models"][0]["cosine_similarity"] == pytest.approx(row["cosine_similarity"])
    report = (out / "report.md").read_text()
    table_row = next(line for line in report.splitlines() if line.startswith("| VAE |"))
    numbers = [float(v) for v in re.findall(r"-?\d+\.\d+", table_row)]
    assert numbers[0] == pytest.approx(row["cosine_similarity"], abs=5e-5)
    assert numbers[2] == pytest.approx(row["squared_error"], abs=5e-3)
    assert "| VAE/GAN | 0.9114 | 22.39401 |" in report  # the paper's Table 1 as it prints it, beside ours
    # beyond the paper: centred cosine and sign accuracy beat the control's, blur hurts the regressor
    assert -1 <= row["centred_cosine"] <= 1 and 0 <= row["sign_accuracy"] <= 1
    upper = metrics["upper_bound"]
    assert upper["centred_cosine"] > row["centred_cosine"] - 0.05
    blur = upper["blur_response"]
    assert blur["sigma_2px"]["centred_cosine"] < upper["centred_cosine"], blur
    assert "| Real images (upper bound) | " + f"{upper['centred_cosine']:.4f}" in report and "blurred, 2 px" in report
    # the tiny VAE's faces are blurrier than real ones: less fine detail than the real images
    assert 0 < row["detail_vs_real"] < 1 and row["colour_speckle_vs_real"] > 0
    assert f"| {row['detail_vs_real']:.3f} | {row['colour_speckle_vs_real']:.2f} |" in report
    # ... and a spectrum below the real faces' in the mid band; the report shows the row's bands
    spectrum = on_disk["models"][0]["spectrum"]["vs_real"]
    assert 0 < spectrum[MID_BAND] < 1 and row["spectrum_mid_vs_real"] == spectrum[MID_BAND]
    assert set(on_disk["real_spectrum"]) == set(spectrum) and spectrum["corner"] > 0
    cells = " | ".join(f"{spectrum[band]:.3g}" for band in BAND_NAMES if band != MID_BAND)  # the mid band and the
    mid, corner = f"| {spectrum[MID_BAND]:.3f} | {spectrum['corner']:.1f} |", f"| {cells} |"  # corner are figures
    assert any(line.startswith("| VAE |") and cells in line and mid in line for line in report.splitlines()), corner
    # samples against reconstructions: the query images' own codes carry their attributes
    reconstruction = row["reconstruction"]
    assert reconstruction["cosine"] > control["cosine_similarity"] + 0.05, (reconstruction, control)
    assert 0 <= row["prior_mismatch_nats"] < 100
    assert f"| {reconstruction['cosine']:.4f} |" in report and f"| {row['prior_mismatch_nats']:.1f} |" in report
    assert f"| Real images | {metrics['upper_bound']['cosine_similarity']:.4f} | {real_shuffled:.4f} |" in report


def test_a_registered_figure_reaches_every_output(learnable_dataset, trained_regressor, conditional_run, tmp_path):
    """Registering one function is all a new figure takes: metrics.json's rows (with its std over
    sampling seeds), the printed table, report.md and the training-seed summary carry it."""
    from attrgan.evaluation.registry import FIGURES, figure
    from attrgan.evaluation.report import format_table

    @figure("toy_mean_regressed", "toy mean", 3, every_seed=True, width=10)
    def toy(draw, reference) -> float:
        return float(draw.regressed.mean())

    try:
        metrics = evaluate_attributes(EvalConfig(data=learnable_dataset, regressor=trained_regressor,
                                                 checkpoints=[conditional_run, conditional_run], out=tmp_path / "r",
                                                 seeds=2, device="cpu", control=False))
        printed = format_table(metrics)
    finally:
        FIGURES.pop("toy_mean_regressed")
    row = metrics["models"][0]
    assert len(row["per_seed_toy_mean_regressed"]) == 2 and row["toy_mean_regressed_std"] >= 0
    assert row["toy_mean_regressed"] == pytest.approx(np.mean(row["per_seed_toy_mean_regressed"]))
    assert "toy mean" in printed.splitlines()[0] and f"{row['toy_mean_regressed']:.3f}" in printed
    report = (tmp_path / "r" / "report.md").read_text()
    assert "toy mean" in report and f"{row['toy_mean_regressed']:.3f} ± " in report
    group = next(iter(metrics["across_training_seeds"]["groups"].values()))
    assert group["toy_mean_regressed"]["mean"] == pytest.approx(row["toy_mean_regressed"])
    assert "toy mean" not in format_table(metrics)  # unregistered again: gone from what is printed next


def test_queries_file_and_refusals(learnable_dataset, trained_regressor, conditional_run, photos, tmp_path):
    import pandas as pd

    from data_prep.attributes import AttributeTable, write_attribute_file

    frame = pd.DataFrame([["Someone", 1, *([2.0] * len(RENDERED))], ["Someone", 2, *([-2.0] * len(RENDERED))]],
                         columns=["person", "imagenum", *RENDERED])
    write_attribute_file(tmp_path / "queries.txt", AttributeTable(RENDERED, frame))
    runner = CliRunner()
    base = ["eval-attributes", "--data", str(learnable_dataset), "--regressor", str(trained_regressor),
            "--seeds", "2", "--device", "cpu"]
    ok = runner.invoke(app, base + ["--checkpoint", str(conditional_run), "--queries", str(tmp_path / "queries.txt"),
                                    "--out", str(tmp_path / "q")])
    assert ok.exit_code == 0, ok.output
    metrics = json.loads((tmp_path / "q" / "metrics.json").read_text())
    assert metrics["queries"]["count"] == 2 and metrics["upper_bound"] is None

    # queries naming images of the dataset: the upper-bound row and the real faces come back
    index = open_dataset(learnable_dataset).index
    test_rows = index[(index["split"] == "test") & index["labelled"]].head(12)
    write_attribute_file(tmp_path / "known.txt", AttributeTable(RENDERED, test_rows[["person", "imagenum", *RENDERED]]))
    known = runner.invoke(app, base + ["--checkpoint", str(conditional_run), "--queries", str(tmp_path / "known.txt"),
                                       "--out", str(tmp_path / "k")])
    assert known.exit_code == 0, known.output
    metrics = json.loads((tmp_path / "k" / "metrics.json").read_text())
    assert metrics["upper_bound"]["cosine_similarity"] > 0.5
    by_sex = metrics["upper_bound"]["by_sex"]
    assert by_sex["male"]["count"] + by_sex["female"]["count"] == 12
    assert set(metrics["models"][0]["condition_slopes"]) == {"Smiling", "Eyeglasses", "Male", "Mustache", "Blond Hair"}
    report = (tmp_path / "k" / "report.md").read_text()
    assert "| Real images (upper bound) |" in report and "## Male and female queries" in report

    swapped = runner.invoke(app, base + ["--checkpoint", str(trained_regressor), "--out", str(tmp_path / "x")])
    assert swapped.exit_code == 1 and "pass it as --regressor" in swapped.output
    missing = runner.invoke(app, base + ["--checkpoint", str(tmp_path / "nope"), "--out", str(tmp_path / "y")])
    assert missing.exit_code == 1 and "checkpoint not found" in missing.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()

    all_attributes = tmp_path / "all"
    config = tiny_config(learnable_dataset, "gan", max_steps=1)
    train(config, all_attributes)  # conditioned on all 73 attributes: names differ from the regressor's
    with pytest.raises(CheckpointError, match="attribute names differ"):
        evaluate_attributes(EvalConfig(data=learnable_dataset, regressor=trained_regressor,
                                       checkpoints=[all_attributes], out=tmp_path / "z", device="cpu"))
    # the same check guards the served model and a photo's regressed attributes
    with pytest.raises(CheckpointError, match="attribute names differ"):
        load_studio(all_attributes, trained_regressor, device="cpu")
    from_photo = runner.invoke(app, ["sample", "--checkpoint", str(all_attributes), "--from-image",
                                     str(photos / "astronaut.png"), "--regressor", str(trained_regressor),
                                     "--device", "cpu", "--out", str(tmp_path / "p.png")])
    assert from_photo.exit_code == 1 and "attribute names differ" in from_photo.output
    assert not (tmp_path / "p.png").exists()
    payload = torch.load(conditional_run / "checkpoint.pt", weights_only=True)
    payload["image_size"] = 64
    torch.save(payload, tmp_path / "other_size.pt")
    with pytest.raises(CheckpointError, match="makes 64x64 images, the regressor reads 32x32"):
        evaluate_attributes(EvalConfig(data=learnable_dataset, regressor=trained_regressor,
                                       checkpoints=[tmp_path / "other_size.pt"], out=tmp_path / "z", device="cpu"))


def test_several_runs_of_one_kind_get_their_own_labels_and_grids(learnable_dataset, trained_regressor,
                                                                  conditional_run, tmp_path):
    """Comparing runs of one kind (e.g. a gamma sweep): each row and grid names its run folder,
    and each row still shows the paper's figures for its kind."""
    copy = tmp_path / "runs" / "vae_copy"
    shutil.copytree(conditional_run, copy)
    out = tmp_path / "report"
    metrics = evaluate_attributes(EvalConfig(data=learnable_dataset, regressor=trained_regressor,
                                             checkpoints=[conditional_run, copy], out=out, seeds=1, device="cpu"))
    labels = [row["model"] for row in metrics["models"]]
    assert labels == [f"VAE ({conditional_run.name})", "VAE (vae_copy)"]
    assert (out / f"grid_vae_{conditional_run.name}.png").is_file() and (out / "grid_vae_vae_copy.png").is_file()
    report = (out / "report.md").read_text()
    for label in labels:
        assert re.search(rf"^\| {re.escape(label)} \|.*\| 0\.9030 \| 27\.59 \|$", report, re.M), label


def test_recipe_leaves_out_only_keys_the_kind_never_reads():
    """The VAE/GAN's recipe changes with the encoder's L_prior weight; the VAE's does not (its
    step never reads it), while its pixel sigma does; every listed key is a real config key."""
    from attrgan.config import Config, flatten, recipe_of, unread_keys

    def recipe(kind, section, key, value):
        config = Config().to_dict()
        config["model"]["kind"], config[section][key] = kind, value
        return recipe_of(config)

    for kind in ("vaegan", "vae", "gan"):
        assert unread_keys(kind) and unread_keys(kind) <= set(flatten(Config().to_dict())), kind
    assert recipe("vaegan", "loss", "prior_weight", 3.0) != recipe("vaegan", "loss", "prior_weight", 1.0)
    assert recipe("vae", "loss", "prior_weight", 3.0) == recipe("vae", "loss", "prior_weight", 1.0)
    assert recipe("vae", "loss", "vae_pixel_sigma", 0.5) != recipe("vae", "loss", "vae_pixel_sigma", 1.0)
    assert recipe("gan", "model", "enc_fc", 64) == recipe("gan", "model", "enc_fc", 2048)
    assert recipe("gan", "model", "dis_fc", 64) != recipe("gan", "model", "dis_fc", 512)
    older = Config().to_dict()  # a run saved before loss.dis_augment existed shares the recipe of one without it
    del older["loss"]["dis_augment"]
    assert recipe_of(older) == recipe_of(Config().to_dict()) != recipe("vaegan", "loss", "dis_augment", ["cutout"])


def test_training_seed_summary_pairs_runs_by_seed_and_groups_by_recipe():
    """Hand-made rows: groups are kind + recipe, the std is over runs (n − 1), and the paired
    difference pairs by training seed, not by position (runs listed in seed order)."""
    from attrgan.evaluation.evaluate import MODEL_LABELS
    from attrgan.evaluation.training_seeds import across_training_seeds, has_curves, training_seeds_markdown

    def row(kind, seed, cosine, recipe="r1", updates=500):
        return {"model": f"{kind}-{seed}", "kind": kind, "recipe": recipe, "train_seed": seed, "updates": updates,
                "cosine_similarity": cosine, "centred_cosine": cosine - 0.3, "sign_accuracy": 0.8,
                "squared_error": 50 - 10 * cosine, "frechet_distance_regressor_features": None}

    rows = [row("vaegan", 0, 0.70), row("vaegan", 1, 0.74), row("vae", 1, 0.73), row("vae", 0, 0.75),
            row("vaegan", 0, 0.60, recipe="r2")]
    summary = across_training_seeds(rows, MODEL_LABELS)
    assert set(summary["groups"]) == {"VAE/GAN [r1]", "VAE/GAN [r2]", "VAE"}
    cosine = summary["groups"]["VAE/GAN [r1]"]["cosine_similarity"]
    assert cosine["mean"] == pytest.approx(0.72) and cosine["std"] == pytest.approx(np.std([0.70, 0.74], ddof=1))
    assert summary["groups"]["VAE/GAN [r2]"]["cosine_similarity"]["std"] is None  # one run
    paired = summary["paired_differences"]["VAE/GAN [r1] − VAE"]
    assert paired["train_seeds"] == [0, 1] and paired["updates"] == 500
    assert paired["cosine_similarity"]["per_seed"] == pytest.approx([0.70 - 0.75, 0.74 - 0.73])
    assert "frechet_distance_regressor_features" not in paired  # missing figures are left out, not zeros
    assert summary["paired_differences"]["VAE/GAN [r2] − VAE"]["train_seeds"] == [0]
    lever = summary["paired_differences"]["VAE/GAN [r2] − VAE/GAN [r1]"]  # against the kind's first recipe given
    assert lever["train_seeds"] == [0] and lever["cosine_similarity"]["per_seed"] == pytest.approx([0.60 - 0.70])
    assert len(summary["paired_differences"]) == 3
    markdown = "\n".join(training_seeds_markdown(summary))
    assert "| VAE/GAN [r1] − VAE, paired | 0, 1 | 500 each | -0.0200 ± 0.0424 |" in markdown
    # runs (or snapshots) at another budget form their own groups, paired only at equal updates
    budgets = across_training_seeds(rows[:4] + [row("vaegan", 0, 0.80, updates=1500),
                                                row("vae", 0, 0.78, updates=1500)],
                                    MODEL_LABELS)
    assert set(budgets["groups"]) == {f"{m} @ {u} updates" for m in ("VAE/GAN", "VAE") for u in (500, 1500)}
    assert set(budgets["paired_differences"]) == {"VAE/GAN @ 500 updates − VAE @ 500 updates",
                                                  "VAE/GAN @ 1500 updates − VAE @ 1500 updates"}
    assert has_curves(budgets) and not has_curves(summary) and not has_curves(None)
    assert {g["series"] for g in budgets["groups"].values()} == {"VAE/GAN", "VAE"}
    late = budgets["paired_differences"]["VAE/GAN @ 1500 updates − VAE @ 1500 updates"]
    assert late["train_seeds"] == [0] and late["cosine_similarity"]["per_seed"] == pytest.approx([0.02])
    assert across_training_seeds([row("vaegan", 0, 0.7), row("vae", 0, 0.7)], MODEL_LABELS) is None  # one run per kind
    named = [{**row("vaegan", 0, 0.7), "checkpoint": "runs/base-s0"},
             {**row("vaegan", 1, 0.7), "checkpoint": "runs/base-s1/checkpoint.pt"},
             {**row("vaegan", 0, 0.7, recipe="r2"), "checkpoint": "runs/dis_l3-s0"},
             {**row("vaegan", 1, 0.7, recipe="r2"), "checkpoint": "runs/dis_l3-s1/checkpoint-000500.pt"}]
    assert set(across_training_seeds(named, MODEL_LABELS)["groups"]) == {"VAE/GAN [base]", "VAE/GAN [dis_l3]"}


def test_eval_attributes_reports_runs_of_two_training_seeds(learnable_dataset, trained_regressor, tmp_path):
    """Real runs: two training seeds of a tiny VAE, one of another recipe, and the first two's
    snapshots at 2 updates; the summary's figures are the mean and sample std of the rows
    eval-attributes wrote, and the report plots the recipe scored at both budgets against updates."""
    runs = []
    for name, seed, pixel_sigma in (("a", 0, 1.0), ("b", 1, 1.0), ("c", 0, 0.5)):
        config = tiny_config(learnable_dataset, "vae", max_steps=4, seed=seed, snapshot_every=2)
        config.data.attributes, config.model.z_dim, config.loss.vae_pixel_sigma = RENDERED, 8, pixel_sigma
        train(config, tmp_path / name)
        runs.append(tmp_path / name)
    snapshots = [tmp_path / name / "checkpoint-000002.pt" for name in ("a", "b")]
    metrics = evaluate_attributes(EvalConfig(data=learnable_dataset, regressor=trained_regressor,
                                             checkpoints=runs + snapshots, out=tmp_path / "report", seeds=2,
                                             device="cpu", control=False))
    rows = metrics["models"]
    assert [(r["train_seed"], r["updates"]) for r in rows] == [(0, 4), (1, 4), (0, 4), (0, 2), (1, 2)]
    assert rows[0]["recipe"] == rows[1]["recipe"] != rows[2]["recipe"]
    # a checkpoint of older code lacks the config keys added since; at their defaults it is the same recipe
    payload = torch.load(runs[0] / "checkpoint.pt", weights_only=True)
    del payload["config"]["model"]["upsample"], payload["config"]["loss"]["gate_rule"]
    torch.save(payload, tmp_path / "older.pt")
    assert load(tmp_path / "older.pt").recipe == rows[0]["recipe"]
    # keys the VAE never reads (the VAE/GAN's encoder weighting, D's gate and width) leave its recipe alone
    payload["config"]["loss"].update(prior_weight=3.0, gate_rule="both")
    payload["config"]["model"]["dis_fc"] = 64
    torch.save(payload, tmp_path / "reweighted.pt")
    assert load(tmp_path / "reweighted.pt").recipe == rows[0]["recipe"]
    groups = metrics["across_training_seeds"]["groups"]
    assert set(groups) == {f"VAE [{rows[0]['recipe']}] @ 4 updates", f"VAE [{rows[0]['recipe']}] @ 2 updates",
                           "VAE [c]"}  # the other recipe: one run (named by its folder), one budget (no "@")
    for budget, (first, second) in ((4, rows[:2]), (2, rows[3:])):
        same = groups[f"VAE [{rows[0]['recipe']}] @ {budget} updates"]
        assert same["runs"] == [first["model"], second["model"]] and same["updates"] == [budget, budget]
        for figure in ("cosine_similarity", "squared_error", "centred_cosine", "frechet_distance_regressor_features"):
            values = [first[figure], second[figure]]
            assert same[figure]["mean"] == pytest.approx(np.mean(values))
            assert same[figure]["std"] == pytest.approx(np.std(values, ddof=1)) and same[figure]["std"] > 0
    # no VAE/GAN among the runs: the one pair is the other recipe against the first given, seed 0 at 4 updates
    paired = metrics["across_training_seeds"]["paired_differences"]
    assert list(paired) == [f"VAE [c] − VAE [{rows[0]['recipe']}] @ 4 updates"]
    lever = paired[f"VAE [c] − VAE [{rows[0]['recipe']}] @ 4 updates"]
    assert lever["train_seeds"] == [0] and lever["cosine_similarity"]["per_seed"] == pytest.approx(
        [rows[2]["cosine_similarity"] - rows[0]["cosine_similarity"]])
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Across training seeds" in report and "![across updates](across_updates.png)" in report
    with Image.open(tmp_path / "report" / "across_updates.png") as curves:
        assert curves.width > curves.height > 300  # a panel per registered figure, three to a row


def test_the_printed_table_keeps_its_columns_aligned():
    """Every printed column's heading ends where its values end, on the real-faces row and on
    model rows with and without a std; the columns are the registered figures with a width."""
    from attrgan.evaluation.registry import FIGURES
    from attrgan.evaluation.report import format_table

    printed = [c for c in FIGURES.values() if c.width]
    def row(name: str, scale: float) -> dict:
        values = {c.key: scale * (10 ** (c.digits - 2)) for c in printed}
        return {"model": name, **values, **{c.key + "_std": 0.01 * scale for c in printed if c.with_std},
                "shuffled_query_control": {"cosine_similarity": 0.5}}
    upper = {c.key: 0.9 for c in printed if not c.ratio} | {"blur_response": {}}
    metrics = {"upper_bound": upper, "models": [row("VAE/GAN (a-run@500)", 0.8), row("VAE", 12.345)],
               "across_training_seeds": None}
    header, *rows = format_table(metrics).splitlines()[:4]
    position = len("model".ljust(26))
    for column in printed:
        end = position + column.width
        assert header[position:end].strip() == (column.heading or column.label), (column.key, header)
        for line in rows:
            assert line[end - 1] != " " and (len(line) == end or line[end] == " "), (column.key, line)
        position = end + (column.digits + 6 if column.with_std else 0)
