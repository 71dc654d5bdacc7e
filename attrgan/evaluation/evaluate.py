"""`eval-attributes`: the paper's Table 1. For each query attribute vector y and each
sampling seed, generate Dec(z ~ N(0, I), y), regress its attributes with the separate
regression network, and score cosine similarity and squared error against y in raw units;
mean ± std over seeds per model, plus the upper bound (the regressor on the real images of
the same queries) and, per model, a shuffled-query control (images generated for a random
other query, scored against this one) that tells conditioning from none.

Beside the paper's two figures: the centred cosine (queries and predictions standardized by
the train split's attribute mean and std, so the common component every face shares is gone)
and the sign accuracy (does the face show each attribute the query asks for, as the regressor
sees it); and the blur response, the regressor's figures on the real images blurred by a
Gaussian of 1 and 2 px, which shows how much each figure rewards a blurry face. Models with an
encoder also get their reconstructions scored and their prior mismatch (encoder_figures). Several runs
of one kind and recipe are also summarised across training seeds (attrgan/evaluation/training_seeds.py).
The figures of each model row are the registered ones (attrgan/evaluation/registry.py)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torchvision
from torchvision.transforms.functional import gaussian_blur

from attrgan.checkpoint import CheckpointError, checkpoint_file, load_checkpoint
from attrgan.data.dataset import ImageRows, load_images, open_dataset, to_model_range
from attrgan.evaluation.metrics import (
    MID_BAND,
    attribute_scores,
    cosine_similarity,
    frechet_distance,
    mean_std,
    prior_mismatch,
    sign_accuracy,
    spectrum_vs_real,
    squared_error,
)
from attrgan.evaluation.registry import FIGURES, Draw, Reference, score
from attrgan.evaluation.regressor import REGRESSOR_KIND, LoadedRegressor, load_regressor
from attrgan.evaluation.report import write_report
from attrgan.evaluation.table import MODEL_LABELS, PAPER_TABLE, model_names
from attrgan.evaluation.training_seeds import across_training_seeds
from attrgan.nets.loaded import ConditionalModel, load
from attrgan.runtime.device import resolve_device, resolve_precision
from attrgan.runtime.errors import UserError
from attrgan.runtime.files import atomic_directory, guard_output
from attrgan.runtime.limits import require
from attrgan.runtime.lock import sole_writer
from data_prep.attributes import read_attribute_file


@dataclass
class EvalConfig:
    data: Path
    regressor: Path
    checkpoints: list[Path]
    out: Path
    split: str = "test"
    queries: Path | None = None
    seeds: int = 5
    device: str = "auto"
    precision: str = "auto"  # of the regressor: auto (bf16 where native) | fp32 | bf16
    grid_queries: int = 6
    grid_samples: int = 6
    control: bool = True
    inception_weights: Path | None = None
    force: bool = False


@dataclass
class ModelScores:
    label: str  # the paper's model name, plus the run's folder when several runs of one kind are compared
    path: str
    kind: str
    train_seed: int | None = None
    updates: int | None = None
    recipe: str | None = None
    figures: dict = field(default_factory=dict)  # every registered figure (attrgan.evaluation.registry.score)
    sign_accuracy: list[np.ndarray] = field(default_factory=list)  # per seed, per attribute
    per_attribute_se: list[np.ndarray] = field(default_factory=list)
    regressed: np.ndarray | None = None  # first seed's regressed attributes [Q, A]
    spectrum: dict[str, float] | None = None  # every band's power / the real images' (first seed)
    control_cosine: list[float] = field(default_factory=list)
    control_squared_error: list[float] = field(default_factory=list)
    fid: float | None = None
    condition_slopes: dict[str, float] = field(default_factory=dict)
    reconstruction: dict[str, float] | None = None  # figures of the query images' reconstructions (encoder models)
    prior_mismatch: float | None = None  # nats from the aggregate posterior to N(0, I) (encoder models)


def evaluate_attributes(config: EvalConfig) -> dict:
    """Run the evaluation; write report.md, metrics.json, plots and grids atomically to ``config.out``."""
    guard_output(config.out, [config.data, config.queries, checkpoint_file(config.regressor),
                              *(checkpoint_file(path) for path in config.checkpoints)], config.force)
    require("--seeds", config.seeds, 1)
    with sole_writer(config.out):
        return _evaluate(config)


def _evaluate(config: EvalConfig) -> dict:
    """The work of :func:`evaluate_attributes`, its output guarded and locked."""
    device = resolve_device(config.device)
    # the caller's stays as given
    config = dataclasses.replace(config, precision=resolve_precision(config.precision, device))
    regressor = load_regressor(config.regressor)
    inception = _inception(config.inception_weights, device)
    models = [_load_generator_checked(path, regressor, device) for path in config.checkpoints]
    dataset = open_dataset(config.data)
    queries, real_images = _queries(config, dataset, regressor)
    names = regressor.scaler.names

    upper, real_draw = None, None
    if real_images is not None:
        regressed, real_features = regressor.predict_raw(real_images, device, config.precision)
        real_draw = Draw(real_images, regressed, real_features)
        upper = {"per_attribute_se": ((regressed - queries) ** 2).mean(0), "regressed": regressed,
                 "blur_response": blur_response(regressor, real_images, queries, device, config.precision)}
        reference = Reference.of(queries, regressor.scaler.mean, regressor.scaler.std, real_images, real_features)
    else:  # for the Fréchet distance and the ratios: the real images of the split
        real_rows = ImageRows(dataset, dataset.rows(config.split, labelled_only=False), regressor.image_size)
        reference = Reference.of(queries, regressor.scaler.mean, regressor.scaler.std, real_rows,
                                 regressor.predict_raw(real_rows, device, config.precision)[1])
    if upper is not None:
        upper["figures"] = score([real_draw], reference)

    scores = []
    shuffle = np.random.default_rng(12345).permutation(len(queries))
    if upper is not None:  # the control's reference: real faces, each scored against another's query
        others = upper["regressed"][shuffle]
        upper["shuffled"] = _table_entry([float(cosine_similarity(others, queries).mean())],
                                         [float(squared_error(others, queries).mean())])
    for model, (label, _) in zip(models, model_names(models)):
        s = ModelScores(label, str(model.path), model.kind, model.train_seed, model.updates, model.recipe)
        draws = []
        for seed in range(config.seeds):
            images = model.sample(queries, seed=seed)
            regressed, features = regressor.predict_raw(images, device, config.precision)
            draws.append(Draw(images, regressed, features))
            s.sign_accuracy.append(sign_accuracy(regressed, queries))
            s.per_attribute_se.append(((regressed - queries) ** 2).mean(0))
            if config.control:
                control, _ = regressor.predict_raw(model.sample(queries[shuffle], seed=seed), device, config.precision)
                s.control_cosine.append(float(cosine_similarity(control, queries).mean()))
                s.control_squared_error.append(float(squared_error(control, queries).mean()))
        s.figures = score(draws, reference)
        s.regressed, s.spectrum = draws[0].regressed, spectrum_vs_real(draws[0].images, reference.real_spectrum)
        s.fid = _fid(inception, model, queries, real_images, device)
        s.condition_slopes = condition_slopes(model, regressor, queries, device, config.precision)
        if model.has_encoder:
            s.reconstruction, s.prior_mismatch = encoder_figures(model, regressor, queries, real_images, dataset,
                                                                 device, config.precision)
        scores.append(s)

    metrics = _metrics_json(config, names, queries, upper, scores, reference.real_spectrum)
    with atomic_directory(config.out, force=config.force) as tmp:
        write_report(tmp, metrics, names, queries, upper, scores,
                     sample_grids(models, real_images, queries, config.grid_queries, config.grid_samples),
                     config.grid_samples + 1)
    return metrics


def sample_grids(models, real_images: torch.Tensor | None, queries: np.ndarray, n_queries: int,
                 n_samples: int) -> dict[str, torch.Tensor]:
    """Per model (file name -> images): for the first queries, the real face (white where unknown)
    then ``n_samples`` generated faces, one row each."""
    n_queries = min(n_queries, len(queries))
    grids = {}
    for model, (_, stem) in zip(models, model_names(models)):
        rows = []
        for q in range(n_queries):
            samples = torch.stack([model.sample(queries[q : q + 1], seed=s)[0] for s in range(n_samples)]).cpu()
            real = to_model_range(real_images[q : q + 1]) if real_images is not None else torch.ones_like(samples[:1])
            rows.append(torch.cat([real, samples]))
        grids[f"grid_{stem}.png"] = torch.cat(rows)
    return grids


def figures(regressed: np.ndarray, queries: np.ndarray, regressor: LoadedRegressor) -> dict[str, float]:
    """attrgan.evaluation.metrics.attribute_scores, centred by the regressor's train-split mean and std."""
    return attribute_scores(regressed, queries, regressor.scaler.mean, regressor.scaler.std)


BLUR_SIGMAS = (1.0, 2.0)  # px, at the regressor's input size


def blur_response(regressor: LoadedRegressor, real_images: torch.Tensor, queries: np.ndarray, device,
                  precision: str) -> dict[str, dict[str, float]]:
    """The regressor's figures on the real images blurred by Gaussians of ``BLUR_SIGMAS`` px:
    a metric that scores blurred faces as well as sharp ones cannot reward sharpness."""
    images = to_model_range(real_images)
    response = {}
    for sigma in BLUR_SIGMAS:
        kernel = 2 * int(3 * sigma) + 1
        blurred = gaussian_blur(images, [kernel, kernel], [sigma, sigma])
        regressed, _ = regressor.predict_raw(blurred, device, precision)
        response[f"sigma_{sigma:g}px"] = figures(regressed, queries, regressor)
    return response


def _load_generator_checked(path: Path, regressor: LoadedRegressor, device) -> ConditionalModel:
    """Load a generator after checking it against the regressor: kind, attribute names, image size."""
    payload = load_checkpoint(path)
    if payload["kind"] == REGRESSOR_KIND:
        raise CheckpointError(f"{path}: this is a regressor checkpoint; pass it as --regressor, not --checkpoint")
    regressor.check_fits(list(payload["attribute_names"]), payload["image_size"], str(path))
    return load(path, device)


def _queries(config: EvalConfig, dataset, regressor: LoadedRegressor) -> tuple[np.ndarray, torch.Tensor | None]:
    """Query vectors (raw units) and, for dataset queries, their real images."""
    names = regressor.scaler.names
    if config.queries is not None:
        table = read_attribute_file(config.queries)
        missing = [n for n in names if n not in table.names]
        if missing:
            raise UserError(f"{config.queries}: lacks attribute columns {', '.join(missing[:5])}")
        if table.frame.empty:
            raise UserError(f"{config.queries}: no query rows")
        return table.frame[names].to_numpy(np.float32), _dataset_images_of(table.frame, dataset, regressor.image_size)
    rows = dataset.rows(config.split)
    if len(rows) == 0:
        raise UserError(f"{config.data}: no labelled {config.split!r} images to use as queries")
    return dataset.attributes(rows, names), load_images(dataset, rows, regressor.image_size)


PRIOR_CHECK_IMAGES = 2048  # labelled train images whose codes stand for the aggregate posterior


def encoder_figures(model: ConditionalModel, regressor: LoadedRegressor, queries: np.ndarray,
                    real_images: torch.Tensor | None, dataset, device,
                    precision: str) -> tuple[dict | None, float | None]:
    """Where a sample's attribute error comes from: the figures of the query images'
    reconstructions (codes from the encoder instead of the prior; None without query images)
    and the prior mismatch of the first PRIOR_CHECK_IMAGES labelled train images' codes
    (attrgan.evaluation.metrics.prior_mismatch; None with fewer than two). Good reconstructions
    with a large mismatch mean the decoder renders attributes well from codes it was trained on,
    not from the prior's."""
    reconstruction = None
    if real_images is not None:
        regressed, _ = regressor.predict_raw(model.reconstruct(real_images, queries), device, precision)
        reconstruction = figures(regressed, queries, regressor)
    rows = dataset.rows("train", labelled_only=bool(model.attribute_names))[:PRIOR_CHECK_IMAGES]
    if len(rows) < 2:
        return reconstruction, None
    mu, logvar = model.posterior(ImageRows(dataset, rows, model.image_size),
                                 dataset.attributes(rows, model.attribute_names))
    return reconstruction, prior_mismatch(mu.float().cpu().numpy(), logvar.float().cpu().numpy())


SLOPE_ATTRIBUTES = ("Smiling", "Eyeglasses", "Male", "Mustache", "Blond Hair")
SLOPE_STRENGTHS = (-2.0, -1.0, 0.0, 1.0, 2.0)  # query attribute moved by these many training-split stds
SLOPE_QUERIES = 64


def condition_slopes(model: ConditionalModel, regressor: LoadedRegressor, queries: np.ndarray, device,
                     precision: str) -> dict[str, float]:
    """How strongly each model follows its condition: for the first queries and fixed prior
    codes, move one attribute of y by s training stds and regress the generated faces; the
    least-squares slope of the mean regressed attribute (raw units) against s: the units of
    ``attrgan edit --report``'s condition slopes."""
    names = model.attribute_names
    chosen = [a for a in SLOPE_ATTRIBUTES if a in names]
    base = queries[:SLOPE_QUERIES]
    z = torch.randn(len(base), model.z_dim, generator=torch.Generator().manual_seed(0))
    slopes = {}
    for attribute in chosen:
        j = names.index(attribute)
        regressed = []
        for strength in SLOPE_STRENGTHS:
            moved = base.copy()
            moved[:, j] += strength * model.scaler.std[j]
            raw, _ = regressor.predict_raw(model.decode(z, moved), device, precision)
            regressed.append(raw[:, j].mean())
        slopes[attribute] = float(np.polyfit(SLOPE_STRENGTHS, regressed, 1)[0])
    return slopes


def _dataset_images_of(queries: "pd.DataFrame", dataset, size: int) -> torch.Tensor | None:
    """The dataset's images of the queried (person, imagenum) pairs when all of them are in it,
    so the report gets the upper-bound row and the real-face column; None otherwise."""
    position = {key: i for i, key in enumerate(zip(dataset.index["person"], dataset.index["imagenum"].astype(int)))}
    rows = [position.get((person, int(num))) for person, num in zip(queries["person"], queries["imagenum"])]
    if any(row is None for row in rows):
        return None
    return load_images(dataset, np.asarray(rows), size)


def _inception(weights: Path | None, device) -> torch.nn.Module | None:
    """Inception-v3 from locally stored weights (never downloaded), checked before any work; None without them."""
    if weights is None:
        return None

    if not Path(weights).is_file():
        raise FileNotFoundError(f"{weights}: --inception-weights file not found")
    net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    try:
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except Exception as exc:  # not a state dict, or one of another network
        raise UserError(f"{weights}: not Inception-v3 weights for FID ({type(exc).__name__}); "
                         "pass a torchvision inception_v3 state dict") from None
    net.fc = torch.nn.Identity()
    return net.eval().to(device)


def _fid(net: torch.nn.Module | None, model, queries, real_images, device) -> float | None:
    """FID of the model's samples for the queries against the real images; None without a network or real images."""
    if net is None or real_images is None:
        return None

    @torch.inference_mode()
    def features(images: torch.Tensor) -> np.ndarray:
        x = to_model_range(images) if images.dtype == torch.uint8 else images
        out = []
        for i in range(0, len(x), 64):
            batch = torch.nn.functional.interpolate(x[i : i + 64].to(device), size=299, mode="bilinear")
            out.append(net(batch).cpu())
        return torch.cat(out).numpy()

    return frechet_distance(features(model.sample(queries, seed=0)), features(real_images))


def _table_entry(cosine: list[float], squared: list[float]) -> dict:
    """Mean ± std over seeds of the two Table-1 figures."""
    cos, cos_sd = mean_std(cosine)
    se, se_sd = mean_std(squared)
    return {"cosine_similarity": cos, "cosine_similarity_std": cos_sd, "squared_error": se, "squared_error_std": se_sd}


BREAKDOWN_ATTRIBUTE = "Male"  # queries split by its sign: the labelled LFW is mostly male


def _breakdown(names, queries, regressed: np.ndarray | None) -> dict | None:
    """Cosine and squared error on the queries with Male > 0 and Male <= 0 (first seed)."""
    if BREAKDOWN_ATTRIBUTE not in names or regressed is None:
        return None
    male = queries[:, names.index(BREAKDOWN_ATTRIBUTE)] > 0
    groups = {"male": male, "female": ~male}
    return {group: {"count": int(mask.sum()),
                    "cosine_similarity": float(cosine_similarity(regressed[mask],
                                                                 queries[mask]).mean()) if mask.any() else None,
                    "squared_error": float(squared_error(regressed[mask],
                                                         queries[mask]).mean()) if mask.any() else None}
            for group, mask in groups.items()}


def _metrics_json(config, names, queries, upper, scores, real_spectrum: dict[str, float]) -> dict:
    rows = []
    for s in scores:
        row = {"model": s.label, "kind": s.kind, "checkpoint": s.path, "train_seed": s.train_seed, "updates": s.updates,
               "recipe": s.recipe, **s.figures,
               "per_attribute_sign_accuracy": dict(zip(names, np.mean(s.sign_accuracy, 0).round(4).tolist())),
               "by_sex": _breakdown(names, queries, s.regressed),
               "per_attribute_squared_error": dict(zip(names, np.mean(s.per_attribute_se, 0).round(5).tolist())),
               "fid": s.fid, "spectrum": {"vs_real": s.spectrum, "mid_band": MID_BAND},
               "condition_slopes": s.condition_slopes,
               "reconstruction": s.reconstruction, "prior_mismatch_nats": s.prior_mismatch}
        if s.control_cosine:
            row["shuffled_query_control"] = _table_entry(s.control_cosine, s.control_squared_error)
        rows.append(row)
    return {
        "queries": {"source": str(config.queries) if config.queries else f"{config.data} split={config.split}",
                    "count": int(len(queries))},
        "seeds": config.seeds,
        "attribute_names": names,
        "upper_bound": None if upper is None else {
            "model": "real images",  # every figure of the real faces against their own labels (ratios: 1)
            **{key: value for key, value in upper["figures"].items() if key in FIGURES},
            "blur_response": upper["blur_response"],
            "shuffled_query_control": upper["shuffled"],
            "by_sex": _breakdown(names, queries, upper["regressed"]),
            "per_attribute_squared_error": dict(zip(names, np.asarray(upper["per_attribute_se"]).round(5).tolist()))},
        "models": rows,
        "real_spectrum": real_spectrum,  # the reference faces' band powers, the denominators of each row's spectrum
        "across_training_seeds": across_training_seeds(rows, MODEL_LABELS),
        "paper_table_1": {k: {"cosine_similarity": v[0], "squared_error": v[1]} for k, v in PAPER_TABLE.items()},
        "fid": ("computed" if config.inception_weights
                else "skipped: no --inception-weights given (nothing is downloaded)"),
    }

