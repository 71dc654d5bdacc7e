"""The attribute regression network (paper, Table 1, after Yan et al.'s Attribute2Image):
a CNN with the encoder's architecture mapping an aligned face to the attribute vector,
trained only on real labelled training-split images, early-stopped on the val split.

Beyond the paper (the instrument as strong as the description allows): an ensemble
of members trained with successive seeds (``ensemble``), whose standardized outputs are
averaged, and a test-time flip (``flip_average``: each image and its mirror image averaged).
The Fréchet-distance features stay the first member's on the unflipped image, so that figure
means the same with or without them. Checkpoints written before either existed load as one
member without the flip."""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from attrgan.checkpoint import REGRESSOR_KIND, CheckpointError, load_checkpoint, save_checkpoint
from attrgan.config import REGRESSOR_CHANNELS, REGRESSOR_FC
from attrgan.data.dataset import Dataset, ImageRows, Standardizer, open_dataset, select_attributes, to_model_range
from attrgan.evaluation.metrics import cosine_similarity, r2_per_attribute, squared_error
from attrgan.nets.models import down_block, fc_block, init_weights
from attrgan.runtime.device import resolve_device, resolve_precision
from attrgan.runtime.errors import UserError
from attrgan.runtime.files import atomic_directory, guard_output, write_json
from attrgan.runtime.limits import require
from attrgan.runtime.lock import sole_writer
from attrgan.runtime.progress import progress_bar

REGRESSOR_FILE = "regressor.pt"


@dataclass
class RegressorConfig:
    data: str = ""
    image_size: int = 64
    channels: list[int] = field(default_factory=lambda: list(REGRESSOR_CHANNELS))  # the paper's encoder convs
    fc: int = REGRESSOR_FC
    attributes: list[str] | None = None
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3  # Adam: the regressor is a plain supervised network, not part of the paper's GAN
    weight_decay: float = 1e-4
    patience: int = 5  # epochs without val improvement before stopping
    seed: int = 0  # of the first member; member k trains with seed + k
    ensemble: int = 1  # members, each early-stopped on val; their outputs are averaged
    flip_average: bool = True  # predict each image and its mirror image and average the outputs
    device: str = "auto"
    precision: str = "auto"  # auto (bf16 where native) | fp32 | bf16
    progress: bool = True


class Regressor(nn.Module):
    """image -> (standardized attributes, penultimate features)."""

    def __init__(self, image_size: int, channels: list[int], fc: int, n_attributes: int) -> None:
        super().__init__()
        widths = [3, *channels]
        self.convs = nn.Sequential(*[down_block(a, b) for a, b in zip(widths, widths[1:])])
        base = image_size // 2 ** len(channels)
        self.fc = fc_block(widths[-1] * base * base, fc)
        self.head = nn.Linear(fc, n_attributes)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.fc(self.convs(x).flatten(1))  # (B, fc)
        return self.head(features), features


@dataclass(frozen=True)
class Outputs:
    """What each regressor output means: for a binary attribute (the manifest's kind: -1/1 or
    0/1) a logit trained with binary cross-entropy, turned into the expected raw value
    ``low + (high - low) * sigmoid``; for a continuous one the standardized value (MSE)."""

    binary: np.ndarray  # bool [A]
    low: np.ndarray  # float32 [A]: a binary attribute's absent value (unused for continuous ones)
    high: np.ndarray  # its present value

    @classmethod
    def of(cls, names: list[str], kinds: dict[str, str], values: np.ndarray) -> "Outputs":
        """From the dataset's attribute kinds and the train split's raw ``values`` [N, A]."""
        binary = np.array([kinds.get(name) == "binary" for name in names], dtype=bool)
        low = np.where(binary, values.min(0) if len(values) else 0, 0).astype(np.float32)
        high = np.where(binary, values.max(0) if len(values) else 1, 1).astype(np.float32)
        return cls(binary, low, high)

    @classmethod
    def continuous(cls, count: int) -> "Outputs":
        """Every output standardized (regressors saved before binary heads existed)."""
        return cls(np.zeros(count, bool), np.zeros(count, np.float32), np.ones(count, np.float32))

    def targets(self, raw: np.ndarray, scaler: Standardizer) -> torch.Tensor:
        """Training targets: 0/1 for binary attributes, standardized values for the others."""
        present = (raw > (self.low + self.high) / 2).astype(np.float32)
        return torch.from_numpy(np.where(self.binary, present, scaler.transform(raw)).astype(np.float32))

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean over every output: BCE with logits on binary columns, squared error on the others."""
        binary = torch.from_numpy(self.binary).to(outputs.device)
        bce = nn.functional.binary_cross_entropy_with_logits(outputs, targets, reduction="none")
        return torch.where(binary, bce, (outputs - targets) ** 2).mean()

    def to_raw(self, outputs: np.ndarray, scaler: Standardizer) -> np.ndarray:
        """Raw-unit predictions: binary columns as expected values between low and high."""
        expected = self.low + (self.high - self.low) / (1 + np.exp(-np.clip(outputs, -60, 60)))
        return np.where(self.binary, expected, scaler.inverse(outputs)).astype(np.float32)

    def to_dict(self, names: list[str]) -> dict:
        return {"binary_outputs": {n: [float(lo), float(hi)] for n, b, lo, hi in
                                   zip(names, self.binary, self.low, self.high) if b}}

    @classmethod
    def from_dict(cls, payload: dict) -> "Outputs":
        names, binary = payload["attribute_names"], payload.get("binary_outputs", {})
        outputs = cls.continuous(len(names))
        for j, name in enumerate(names):
            if name in binary:
                outputs.binary[j], (outputs.low[j], outputs.high[j]) = True, binary[name]
        return outputs


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips, shifts of up to 1/16 of the side, and brightness/contrast jitter."""
    batch, _, size, _ = x.shape
    flip = torch.rand(batch, generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad = max(1, size // 16)
    padded = nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
    dx, dy = torch.randint(0, 2 * pad + 1, (2,), generator=generator).tolist()
    x = padded[:, :, dy : dy + size, dx : dx + size]
    brightness = (torch.rand(batch, 1, 1, 1, generator=generator) - 0.5) * 0.2
    contrast = 1 + (torch.rand(batch, 1, 1, 1, generator=generator) - 0.5) * 0.2
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * contrast + mean + brightness).clamp(-1, 1)


@torch.no_grad()
def predict(models: "list[Regressor]", images: "torch.Tensor | ImageRows", device: torch.device, batch: int = 256,
            precision: str = "fp32", flip: bool = False):
    """Standardized predictions (the mean over ``models``, and with ``flip`` over each image and
    its mirror image) and the first model's features of the unflipped images, for uint8 or
    [-1, 1] float images."""
    outs, feats = [], []
    for model in models:
        model.eval()
    for i in range(0, len(images), batch):
        x = images[i : i + batch]
        x = (to_model_range(x) if x.dtype == torch.uint8 else x).to(device)
        views = [x, x.flip(3)] if flip else [x]
        total = None
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            for k, model in enumerate(models):
                for v, view in enumerate(views):
                    out, f = model(view)
                    total = out.float() if total is None else total + out.float()
                    if k == 0 and v == 0:
                        feats.append(f.float().cpu())
        outs.append((total / (len(models) * len(views))).cpu())
    return torch.cat(outs).numpy(), torch.cat(feats).numpy()


def score(raw_predicted: np.ndarray, raw_target: np.ndarray) -> dict:
    """The Table-1 figures of predictions against targets, in raw units."""
    return {
        "cosine_similarity": float(cosine_similarity(raw_predicted, raw_target).mean()),
        "squared_error": float(squared_error(raw_predicted, raw_target).mean()),
        "count": int(len(raw_target)),
    }


def check_regressor_config(config: RegressorConfig) -> None:
    """Refuse options no training could use, each with its range."""
    if config.precision not in ("auto", "fp32", "bf16"):
        raise UserError(f"--precision must be auto, fp32 or bf16, got {config.precision!r}")
    require("--image-size", config.image_size, 8)
    if config.image_size % 2 ** len(config.channels) or config.image_size // 2 ** len(config.channels) < 1:
        raise UserError(f"--channels: {len(config.channels)} stride-2 layers do not fit --image-size "
                        f"{config.image_size}")
    for name, value, low in (("--fc", config.fc, 1), ("--epochs", config.epochs, 1),
                             ("--batch-size", config.batch_size, 2),
                             ("--ensemble", config.ensemble, 1),
                             ("--patience", config.patience, 1), *(("--channels", c, 1) for c in config.channels)):
        require(name, value, low)
    require("--lr", config.lr, 0, open_low=True)
    require("weight_decay", config.weight_decay, 0)


def train_regressor(config: RegressorConfig, out: str | Path, force: bool = False) -> dict:
    """Train, early-stop on val, evaluate on test; write ``out/regressor.pt`` and
    ``out/metrics.json`` (atomically: an existing ``out`` is replaced only with ``force``, and
    only once the new regressor is complete); return the metrics."""
    out = Path(out)
    guard_output(out, [config.data], force)
    check_regressor_config(config)
    with sole_writer(out):
        return _train_regressor(config, out, force)


def _train_regressor(config: RegressorConfig, out: Path, force: bool) -> dict:
    """The work of :func:`train_regressor`, its output guarded, its options checked, and locked."""
    device = resolve_device(config.device)
    config.precision = resolve_precision(config.precision, device)
    dataset = open_dataset(config.data)
    names = select_attributes(dataset.attribute_names, config.attributes)
    splits = {s: dataset.rows(s) for s in ("train", "val", "test")}
    if len(splits["train"]) < 2:
        raise UserError(f"{config.data}: fewer than 2 labelled train images")
    train_values = dataset.attributes(splits["train"], names)
    scaler = Standardizer.fit(names, train_values)
    outputs = Outputs.of(names, dataset.manifest.get("attribute_kinds", {}), train_values)
    tensors = {s: (ImageRows(dataset, r, config.image_size), outputs.targets(dataset.attributes(r, names), scaler))
               for s, r in splits.items()}
    started = time.perf_counter()
    members, member_metrics = [], []
    for k in range(config.ensemble):
        model, record = _train_member(config, config.seed + k, tensors, outputs, device, len(names),
                                      label=f"train-regressor {k + 1}/{config.ensemble}" if config.ensemble > 1
                                      else "train-regressor")
        if len(splits["val"]):
            record["val"] = evaluate_on_split([model], dataset, splits["val"], scaler, outputs,
                                              config, device, flip=False)
        members.append(model)
        member_metrics.append(record)
    first = member_metrics[0]
    metrics = {"best_epoch": first["best_epoch"], "val_loss": first["val_loss"], "history": first["history"],
               "members": member_metrics, "train_seconds": round(time.perf_counter() - started, 1)}
    for split in ("val", "test"):
        if len(splits[split]):
            metrics[split] = evaluate_on_split(members, dataset, splits[split], scaler, outputs, config, device,
                                               flip=config.flip_average)
    with atomic_directory(out, force=force) as tmp:
        save_checkpoint(tmp / REGRESSOR_FILE, {
            "kind": REGRESSOR_KIND, "config": asdict(config), "image_size": config.image_size,
            **scaler.to_dict(), **outputs.to_dict(names), "flip_average": config.flip_average,
            "nets": {_member_key(k): model.state_dict() for k, model in enumerate(members)},
            "metrics": _json_safe(metrics),
        })
        write_json(tmp / "metrics.json", metrics)
    return metrics


def _member_key(k: int) -> str:
    """The checkpoint's name of member k: ``regressor`` for the first (as before ensembles), then regressor_1, ..."""
    return "regressor" if k == 0 else f"regressor_{k}"


def _train_member(config: RegressorConfig, seed: int, tensors: dict, outputs: Outputs, device, n_attributes: int,
                  label: str) -> tuple[Regressor, dict]:
    """One regressor trained with Adam and a cosine schedule, early-stopped on the val loss;
    returns it at its best epoch and its record (best epoch, val loss, history)."""
    torch.manual_seed(seed)
    model = Regressor(config.image_size, config.channels, config.fc, n_attributes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, config.epochs))
    generator = torch.Generator().manual_seed(seed)
    images, targets = tensors["train"]
    batch = min(config.batch_size, len(images))
    best = (math.inf, -1, copy.deepcopy(model.state_dict()))
    history = []
    bar = progress_bar(config.progress, iterable=range(config.epochs), desc=label, unit="epoch")
    for epoch in bar:
        model.train()
        order = torch.randperm(len(images), generator=generator)
        losses = []
        for i in range(0, len(order) - batch + 1, batch):
            idx = order[i : i + batch]
            x = augment(to_model_range(images[idx]), generator).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16"):
                prediction, _ = model(x)
            loss = outputs.loss(prediction.float(), targets[idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        schedule.step()
        val_loss = _val_loss(model, tensors["val"], outputs, device, config.precision) if len(tensors["val"][0]) \
            else float(np.mean(losses))
        history.append({"epoch": epoch, "train_mse": float(np.mean(losses)), "val_mse": val_loss})
        # shown at the next redraw
        bar.set_postfix(train=f"{np.mean(losses):.3f}", val=f"{val_loss:.3f}", refresh=False)
        if val_loss < best[0]:
            best = (val_loss, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= config.patience:
            break
    model.load_state_dict(best[2])
    return model, {"seed": seed, "best_epoch": best[1], "val_loss": best[0], "history": history}


def evaluate_on_split(models: "list[Regressor]", dataset: Dataset, rows, scaler: Standardizer, outputs: Outputs,
                      config: RegressorConfig, device, flip: bool) -> dict:
    """Cosine, squared error and per-attribute R² of the regressor (``models`` averaged, with
    ``flip`` over mirror images too) on real images of ``rows``; for binary attributes also the
    accuracy (regressed and true value on the same side)."""
    predicted, _ = predict(models, ImageRows(dataset, rows, config.image_size), device, precision=config.precision,
                           flip=flip)
    raw_pred, raw_true = outputs.to_raw(predicted, scaler), dataset.attributes(rows, scaler.names)
    result = score(raw_pred, raw_true)
    result["r2"] = dict(zip(scaler.names, np.round(r2_per_attribute(raw_pred, raw_true), 4).tolist()))
    if outputs.binary.any():
        middle = (outputs.low + outputs.high) / 2
        correct = ((raw_pred > middle) == (raw_true > middle)).mean(0)
        result["accuracy"] = {n: round(float(c), 4) for n, c, b in zip(scaler.names, correct, outputs.binary) if b}
        result["mean_accuracy"] = round(float(correct[outputs.binary].mean()), 4)
    return result


def _val_loss(model, split_tensors, outputs: Outputs, device, precision) -> float:
    images, targets = split_tensors
    predicted, _ = predict([model], images, device, precision=precision)
    return float(outputs.loss(torch.from_numpy(predicted), targets))


def _json_safe(metrics: dict) -> dict:
    """Checkpoint-safe copy (weights_only loading accepts plain containers of numbers and strings)."""
    return json.loads(json.dumps(metrics))


@dataclass
class LoadedRegressor:
    models: list[Regressor]  # the ensemble's members (one for a plain regressor)
    scaler: Standardizer
    image_size: int
    path: Path
    outputs: Outputs
    flip_average: bool = False

    def check_fits(self, names: list[str] | None, image_size: int, model: str) -> None:
        """Refuse to score a model that conditions on other attributes or makes another image
        size (``names`` None: checked on size only, as for an unconditional model)."""
        if names is not None and list(names) != self.scaler.names:
            raise CheckpointError(f"{model}: the model's attribute names differ from the regressor's ({self.path})")
        if image_size != self.image_size:
            raise CheckpointError(f"{model}: the model makes {image_size}x{image_size} images, the regressor reads "
                                  f"{self.image_size}x{self.image_size} ({self.path})")

    def predict_raw(self, images: torch.Tensor, device: torch.device, precision: str = "fp32"):
        """Raw-unit attribute predictions and the Fréchet features of uint8 or [-1, 1] images."""
        for model in self.models:
            model.to(device)
        predicted, features = predict(self.models, images, device, precision=precision, flip=self.flip_average)
        return self.outputs.to_raw(predicted, self.scaler), features


def load_regressor(path: str | Path) -> LoadedRegressor:
    """Load a regressor checkpoint (file or run directory); refuse generator checkpoints."""
    path = Path(path)
    file = path / REGRESSOR_FILE if path.is_dir() else path
    if path.is_dir() and not file.exists():
        raise CheckpointError(f"{path}: no {REGRESSOR_FILE} here (train one with `attrgan train-regressor`)")
    payload = load_checkpoint(file, expect_kinds=(REGRESSOR_KIND,),
                              what="a regressor written by train-regressor")
    cfg = payload["config"]
    models = []
    for k in range(len(payload["nets"])):
        model = Regressor(cfg["image_size"], cfg["channels"], cfg["fc"], len(payload["attribute_names"]))
        model.load_state_dict(payload["nets"][_member_key(k)])
        models.append(model.eval())
    return LoadedRegressor(models, Standardizer.from_dict(payload), payload["image_size"], file,
                           Outputs.from_dict(payload), flip_average=bool(payload.get("flip_average", False)))
