"""Training configuration: nested dataclasses with defaults, YAML files that hold only
changes, and dotted ``key=value`` overrides that reject unknown keys and wrong types."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from attrgan.runtime.errors import UserError

MODEL_KINDS = ("vaegan", "vae", "gan")


UPSAMPLING = ("transposed", "transposed4", "blur", "resize", "bilinear")  # the decoder's x2 steps (model.upsample; attrgan.nets.models.upsample_layers)
DIS_NORMS = ("batch", "spectral")  # the discriminator's normalisation (model.dis_norm)

# Keys each model kind never reads (attrgan/nets/steps.py, attrgan/nets/models.py): runs that differ only
# in them train the same model (one recipe in eval's training-seed groups; free on --resume).
_DIS_LOSS = ("equilibrium", "margin", "gate_rule", "generator", "r1_weight", "r1_every")
_UNREAD = {
    "vae": {"loss": ("gamma", "dis_l", "dis_l_layer", "prior_weight", "pixel_weight", "dis_sees", *_DIS_LOSS),
            "model": ("dis_first_channels", "dis_channels", "dis_fc", "dis_norm"), "optim": ("dis_lr_ratio",)},
    "gan": {"loss": ("gamma", "vae_pixel_sigma", "dis_l", "dis_l_layer", "prior_weight", "pixel_weight", "dis_sees"),
            "model": ("enc_channels", "enc_fc")},
    "vaegan": {"loss": ("vae_pixel_sigma",)},
}


def unread_keys(kind: str | None) -> frozenset[str]:
    """The dotted config keys (``loss.prior_weight``) that model ``kind`` never reads."""
    return frozenset(f"{section}.{key}" for section, keys in _UNREAD.get(kind, {}).items() for key in keys)


@dataclass
class ModelConfig:
    kind: str = "vaegan"  # vaegan | vae | gan
    image_size: int = 64  # 32, 64 or 128: the conv stacks end at image_size / 2**len(channels)
    z_dim: int = 128
    enc_channels: list[int] = field(default_factory=lambda: [64, 128, 256])  # each 5x5, stride 2
    enc_fc: int = 2048
    dec_channels: list[int] = field(default_factory=lambda: [256, 128, 32])  # each 5x5 transposed, stride 2
    dec_fc_channels: int = 256  # FC output reshaped to dec_fc_channels x base x base
    upsample: str = "transposed"  # decoder's x2 steps: transposed = 5x5 transposed conv, stride 2 (the paper) | transposed4 = 4x4 transposed, stride 2 (even overlap) | blur = the paper's, then a fixed [1,3,3,1] low-pass | resize = nearest x2, then 5x5 conv | bilinear = bilinear x2, then 5x5 conv (Odena et al. 2016)
    dis_first_channels: int = 32  # 5x5, stride 1, ReLU, no BN
    dis_channels: list[int] = field(default_factory=lambda: [128, 256, 256])  # each 5x5, stride 2
    dis_fc: int = 512
    dis_norm: str = "batch"  # batch: BN after D's strided convs and FC (the paper) | spectral: no BN, spectral normalisation of every conv and FC layer of D (Miyato et al. 2018)
    labelled_input: bool = False  # one input `labelled` beside y in the three FC layers (widths + 1); train sets it when data.unlabelled=use
    init: str = "dcgan"  # dcgan: N(0, 0.02) | authors: U(±1/sqrt(3·fan_in)) weights (andersbll's code)
    bn_eps: float = 1e-5  # batch-norm epsilon (PyTorch default; the authors' code: 1e-6)


@dataclass
class LossConfig:
    # Weight of L_llike in the decoder's loss (the paper's gamma). Our losses are batch means of
    # per-image sums (L_llike summed over Dis_l features; GAN terms summed over the fake sets), the
    # authors' are batch sums of the same per-image terms, and RMSProp is blind to a common scale:
    # so the authors' decoder weighting 1e-6 * L_llike + (1 - 1e-6) * L_GAN is gamma = 1e-6 here too.
    gamma: float = 1e-1
    vae_pixel_sigma: float = 1.0  # std of the pixel-wise Gaussian of the `vae` baseline
    equilibrium: float | None = None  # stabiliser: gate D/Dec GAN updates around this BCE (None = off)
    margin: float = 0.35
    dis_l: str = "post_bn"  # Dis_l = the 4th conv's output after its BN and ReLU | pre_bn: before them (authors' code)
    dis_l_layer: int | None = None  # D's conv layer that gives Dis_l, its first conv counting as 1 (None = the last, the paper's 4th; at 32x32 the 3rd keeps the paper's 8x8 grid)
    gate_rule: str = "either"  # equilibrium gate: either = pause D while it wins on real or on fake (public ports) | both = only while it wins on both (and pause the decoder's GAN term only while D loses on both)
    prior_weight: float = 1.0  # weight of L_prior in the encoder's loss (the paper: 1)
    pixel_weight: float = 0.0  # weight of a pixel-space unit-variance Gaussian NLL on reconstructions, added to the encoder's and decoder's losses (the paper: 0)
    dis_sees: list[str] = field(default_factory=lambda: ["recon", "prior"])  # fakes D and the decoder's GAN term use; authors' LFW script: [prior]
    generator: str = "non_saturating"  # -log D(fake) | saturating: log(1 - D(fake) + 1e-3) (authors' code)
    r1_weight: float = 0.0  # R1 penalty r1_weight/2 * E|grad_x D(x)|^2 on real images in D's loss (Mescheder et al. 2018; the paper: 0)
    r1_every: int = 1  # lazy R1: the penalty, times r1_every, on every r1_every-th update only (StyleGAN2)


@dataclass
class OptimConfig:
    lr: float = 3e-4  # RMSProp, as in the paper
    alpha: float = 0.9  # RMSProp smoothing constant
    eps: float = 1e-8
    weight_decay: float = 0.0  # L2 on conv and FC weights only (not biases, not BN); authors: 1e-5
    schedule: str = "exponential"  # exponential: lr * lr_decay**epoch | power: lr - (t/T)**0.75 * (lr - lr_end), t in updates (authors' annealer)
    lr_decay: float = 1.0  # exponential schedule: multiply every learning rate by this after each epoch (1 = off)
    lr_decay_every: int | None = None  # exponential schedule per update instead: lr * lr_decay**(t / lr_decay_every), t in updates (None = per epoch)
    dis_lr_ratio: float = 1.0  # the discriminator's learning rate is lr * dis_lr_ratio (a slower D below 1)
    lr_end: float = 1e-7  # power schedule: the learning rate after schedule_steps updates
    schedule_steps: int = 37500  # power schedule: its horizon T in updates (authors: 150 epochs x 250 batches)
    grad_clip: float | None = None
    ema: float = 0.0  # decay per update of moving averages of the encoder's and decoder's weights, which sampling, encoding and editing use (warmed up as min(ema, (1+t)/(10+t)); attrgan.training.averages); 0 = off (the paper)


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    max_steps: int | None = None  # stop after this many steps (overrides epochs)
    max_minutes: float | None = None  # also stop once this much wall time is spent (a fixed budget per model)
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto (bf16 on CUDA and on CPUs with native bf16, else fp32) | fp32 | bf16 | fp16 (CUDA)
    channels_last: bool = False
    compile: bool | str = "auto"  # torch.compile each network: true | false | auto (where measured to pay: CUDA in fp32, docs/performance.md)
    threads: int | None = None  # torch intra-op threads on CPU (None = torch default)
    checkpoint_every: int = 500  # steps
    snapshot_every: int = 0  # updates between kept copies checkpoint-<step>.pt beside checkpoint.pt; 0 = off
    log_every: int = 1  # steps between metrics.csv rows
    sample_every_epoch: bool = True
    progress: bool = True
    eval_every: int = 0  # updates between quality checks (Fréchet distance, cosine, grid) with --regressor; 0 = off
    eval_queries: int = 256  # fixed queries (and real images) of eval_split in each quality check
    eval_split: str = "val"  # split of the tracked quality checks: val, so choices made from the curves never see test


@dataclass
class DataConfig:
    path: str = ""
    attributes: list[str] | None = None  # subset of attribute names (None = all; [] = none: unconditional)
    split: str = "train"
    unlabelled: str = "use"  # use: train also on unlabelled train-split images (y = 0, labelled = 0) | skip
    labelled_share: float | None = None  # with unlabelled=use: this share of every batch is labelled images (None = as drawn, ~18% on LFW)
    augment: str = "none"  # none | flip | authors: flips, small shift/scale/rotation, gamma/contrast/hue jitter


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ConfigError(UserError):
    """An unknown key, a wrong type or an invalid value in a config or override."""


def from_dict(data: dict[str, Any]) -> Config:
    """Build a :class:`Config` from a (possibly partial) nested dict, checking every key."""
    config = Config()
    _merge(config, data or {}, prefix="")
    validate(config)
    return config


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Defaults, then the YAML file at ``path`` (if any), then ``key=value`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config file must be a mapping of sections")
    config = Config()
    _merge(config, data, prefix="")
    for item in overrides or []:
        apply_override(config, item)
    validate(config)
    return config


def apply_override(config: Config, item: str) -> None:
    """Apply one dotted override such as ``train.batch_size=32`` or ``model.enc_channels=[32,64]``."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not key=value (e.g. train.batch_size=32)")
    key, raw = item.split("=", 1)
    *parents, leaf = key.strip().split(".")
    target: Any = config
    for part in parents:
        if not dataclasses.is_dataclass(target) or not hasattr(target, part):
            raise ConfigError(f"unknown config key {key!r}")
        target = getattr(target, part)
    if not dataclasses.is_dataclass(target) or leaf not in {f.name for f in dataclasses.fields(target)}:
        raise ConfigError(f"unknown config key {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        raise ConfigError(f"override {item!r}: the value is not valid YAML (quote strings, e.g. [a, b] for lists)") from None
    setattr(target, leaf, _coerce(target, leaf, value, key))


def _merge(target: Any, data: dict[str, Any], prefix: str) -> None:
    names = {f.name: f for f in dataclasses.fields(target)}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key {path!r}")
        current = getattr(target, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {path!r} must be a mapping")
            _merge(current, value, prefix=f"{path}.")
        else:
            setattr(target, key, _coerce(target, key, value, path))


def _coerce(target: Any, name: str, value: Any, path: str) -> Any:
    """Check ``value`` against the type of the default; ints are accepted for floats."""
    default = getattr(target, name)
    annotation = str({f.name: f.type for f in dataclasses.fields(target)}[name])
    if value is None:
        if "None" in annotation:
            return None
        raise ConfigError(f"config key {path!r} cannot be empty")
    if "list" in annotation:
        if not isinstance(value, list) or not all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"config key {path!r} must be a list, got {value!r}")
        return value
    kinds = tuple(kind for part in annotation.split("|") if (kind := _type_from_annotation(part.strip())))
    if len(kinds) > 1 and isinstance(value, kinds):  # a union such as train.compile: bool | str
        return value
    expected = type(default) if default is not None else _type_from_annotation(annotation)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is float and isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
        try:
            return float(value)
        except ValueError:
            pass
    if expected is not None and not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise ConfigError(f"config key {path!r} must be {expected.__name__}, got {value!r}")
    return value


def _type_from_annotation(annotation: str) -> type | None:
    for name, kind in (("float", float), ("int", int), ("str", str), ("bool", bool)):
        if annotation.startswith(name):
            return kind
    return None


def flatten(section: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"loss": {"gamma": 0.1}}`` -> ``{"loss.gamma": 0.1}``."""
    flat: dict[str, Any] = {}
    for key, value in section.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


POSITIVE_INTS = ("model.image_size", "model.z_dim", "model.enc_fc", "model.dec_fc_channels", "model.dis_first_channels",
                 "model.dis_fc", "train.threads")


def validate(config: Config) -> None:
    """Reject values no run could use, with a message naming the key and its range."""
    for key, value in flatten(config.to_dict()).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        if key in POSITIVE_INTS and value is not None and value < 1:
            raise ConfigError(f"{key} must be >= 1, got {value!r}")
        if key.endswith("_channels") and isinstance(value, list) and not (value and all(isinstance(c, int) and c >= 1 for c in value)):
            raise ConfigError(f"{key} must be a non-empty list of integers >= 1, got {value!r}")
    m, t = config.model, config.train
    if m.kind not in MODEL_KINDS:
        raise ConfigError(f"model.kind must be one of {', '.join(MODEL_KINDS)}, got {m.kind!r}")
    for name, channels in (("enc_channels", m.enc_channels), ("dec_channels", m.dec_channels), ("dis_channels", m.dis_channels)):
        if m.image_size % (2 ** len(channels)) or m.image_size // 2 ** len(channels) < 2:
            raise ConfigError(f"model.{name}: {len(channels)} stride-2 layers do not fit image_size {m.image_size}")
    if t.precision not in ("auto", "fp32", "bf16", "fp16"):
        raise ConfigError(f"train.precision must be auto, fp32, bf16 or fp16, got {t.precision!r}")
    if not (t.compile == "auto" or isinstance(t.compile, bool)):
        raise ConfigError(f"train.compile must be auto, true or false, got {t.compile!r}")
    if t.batch_size < 2:
        raise ConfigError("train.batch_size must be at least 2 (batch norm)")
    loss, optim, data = config.loss, config.optim, config.data
    for key, value in (("loss.gamma", loss.gamma), ("loss.pixel_weight", loss.pixel_weight),
                       ("loss.prior_weight", loss.prior_weight), ("loss.r1_weight", loss.r1_weight)):
        if not value >= 0:
            raise ConfigError(f"{key} must be non-negative, got {value!r}")
    if loss.dis_l_layer is not None and not 2 <= loss.dis_l_layer <= len(m.dis_channels) + 1:
        raise ConfigError(f"loss.dis_l_layer must be 2..{len(m.dis_channels) + 1} (a strided conv of D), got {loss.dis_l_layer}")
    choices = {
        "model.init": (m.init, ("dcgan", "authors")), "model.upsample": (m.upsample, UPSAMPLING),
        "model.dis_norm": (m.dis_norm, DIS_NORMS),
        "loss.dis_l": (loss.dis_l, ("post_bn", "pre_bn")),
        "loss.gate_rule": (loss.gate_rule, ("either", "both")),
        "loss.generator": (loss.generator, ("non_saturating", "saturating")),
        "optim.schedule": (optim.schedule, ("exponential", "power")),
        "data.unlabelled": (data.unlabelled, ("use", "skip")), "data.augment": (data.augment, ("none", "flip", "authors")),
        "train.eval_split": (t.eval_split, ("train", "val", "test")),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)}, got {value!r}")
    if not loss.dis_sees or set(loss.dis_sees) - {"recon", "prior"} or len(set(loss.dis_sees)) != len(loss.dis_sees):
        raise ConfigError(f"loss.dis_sees must be a non-empty list of recon and/or prior, got {loss.dis_sees!r}")
    for key, value in (("optim.lr", optim.lr), ("optim.lr_end", optim.lr_end), ("optim.lr_decay", optim.lr_decay),
                       ("optim.eps", optim.eps), ("optim.dis_lr_ratio", optim.dis_lr_ratio)):
        if not value > 0:
            raise ConfigError(f"{key} must be positive, got {value!r}")
    if not 0 <= optim.ema < 1:
        raise ConfigError(f"optim.ema (the weight averages' decay per update) must be in [0, 1), got {optim.ema!r}")
    if not 0 < optim.alpha < 1:
        raise ConfigError(f"optim.alpha (RMSProp's smoothing constant) must be in (0, 1), got {optim.alpha!r}")
    for key, value in (("model.bn_eps", m.bn_eps), ("loss.vae_pixel_sigma", loss.vae_pixel_sigma)):
        if not value > 0:
            raise ConfigError(f"{key} must be positive, got {value!r}")
    if data.labelled_share is not None and not 0 < data.labelled_share <= 1:
        raise ConfigError(f"data.labelled_share must be in (0, 1] (or empty), got {data.labelled_share!r}")
    if loss.margin < 0:
        raise ConfigError(f"loss.margin must be >= 0, got {loss.margin!r}")
    if optim.weight_decay < 0 or (optim.grad_clip is not None and optim.grad_clip <= 0):
        raise ConfigError("optim.weight_decay must be >= 0 and optim.grad_clip > 0 (or empty)")
    for key, value, low in (("optim.schedule_steps", optim.schedule_steps, 1), ("loss.r1_every", loss.r1_every, 1),
                            ("optim.lr_decay_every", optim.lr_decay_every, 1),
                            ("train.log_every", t.log_every, 1),
                            ("train.eval_every", t.eval_every, 0), ("train.eval_queries", t.eval_queries, 2),
                            ("train.epochs", t.epochs, 1), ("train.max_steps", t.max_steps, 1),
                            ("train.checkpoint_every", t.checkpoint_every, 0), ("train.snapshot_every", t.snapshot_every, 0), ("train.max_minutes", t.max_minutes, 0)):
        if value is not None and value < low:
            raise ConfigError(f"{key} must be >= {low}, got {value!r}")


def recipe_of(config: dict) -> str:
    """A short fingerprint of what a run trains (model, losses, optimiser, data options, batch
    size); the seed, the dataset's folder, the run-time options (device, threads, budget) and
    the keys its model kind never reads (``unread_keys``) are left out, so runs that differ
    only in those group together as training seeds."""
    unread = unread_keys(config.get("model", {}).get("kind"))
    sections = {name: {k: v for k, v in (config.get(name) or {}).items() if f"{name}.{k}" not in unread}
                for name in ("model", "loss", "optim")}
    data = {k: v for k, v in config.get("data", {}).items() if k != "path"}
    recipe = {**sections, "data": data, "batch_size": config.get("train", {}).get("batch_size")}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:8]
