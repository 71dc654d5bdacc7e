"""Training configuration: nested dataclasses whose fields carry their own rules
(attrgan.config_keys: type, range or choices, recipe or run-time key, the model kinds that read
it, a line of documentation), YAML files that hold only changes, and dotted ``key=value``
overrides that reject unknown keys, wrong types and values out of range."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from attrgan.config_keys import MODEL_KINDS, ConfigError, check, coerce, keys, setting

__all__ = ["MODEL_KINDS", "Config", "ConfigError", "load_config", "from_dict", "validate", "unread_keys",
           "runtime_keys", "recipe_of", "flatten"]

UPSAMPLING = ("transposed", "transposed4", "blur", "resize", "bilinear")  # attrgan.nets.models.upsample_layers
DIS_NORMS = ("batch", "spectral")
AUGMENTS = ("none", "flip", "authors")  # attrgan.data.augment
DIS_AUGMENTS = ("color", "translation", "cutout")  # attrgan.nets.dis_augment
ENCODING, DISCRIMINATING = ("vaegan", "vae"), ("vaegan", "gan")  # the kinds with an encoder, with a D

# Defaults other configs and the CLI share (one place each)
TRACKED_EVAL_EVERY = 250  # train.eval_every when --regressor is given and the config sets none
REGRESSOR_CHANNELS = (64, 128, 256)  # the regressor's convs: the paper's encoder
REGRESSOR_FC = 2048


@dataclass
class ModelConfig:
    kind: str = setting("vaegan", choices=MODEL_KINDS, doc="vaegan, or the baselines vae and gan")
    image_size: int = setting(64, low=1, doc="32, 64 or 128: the conv stacks end at image_size / 2**len(channels)")
    z_dim: int = setting(128, low=1, doc="size of the latent code z")
    enc_channels: list[int] = setting(factory=lambda: [64, 128, 256], low=1, read_by=ENCODING,
                                      doc="encoder conv widths, each 5x5 stride 2")
    enc_fc: int = setting(2048, low=1, read_by=ENCODING, doc="encoder FC width (y joins its input)")
    dec_channels: list[int] = setting(factory=lambda: [256, 128, 32], low=1,
                                      doc="decoder widths, each a x2 step (model.upsample)")
    dec_fc_channels: int = setting(256, low=1, doc="the decoder's FC output is reshaped to this many channels")
    upsample: str = setting("transposed", choices=UPSAMPLING,
                            doc="the decoder's x2 steps: transposed = 5x5 transposed conv (the paper), transposed4 = "
                                "4x4 (even overlap), blur = the paper's then a fixed [1,3,3,1] low-pass, resize = "
                                "nearest x2 then 5x5 conv, bilinear = bilinear x2 then 5x5 conv (Odena et al. 2016)")
    dis_first_channels: int = setting(32, low=1, read_by=DISCRIMINATING, doc="D's first conv: 5x5, stride 1, no BN")
    dis_channels: list[int] = setting(factory=lambda: [128, 256, 256], low=1, read_by=DISCRIMINATING,
                                      doc="D's strided convs, each 5x5 stride 2")
    dis_fc: int = setting(512, low=1, read_by=DISCRIMINATING, doc="D's FC width (y joins its input)")
    dis_norm: str = setting("batch", choices=DIS_NORMS, read_by=DISCRIMINATING,
                            doc="batch: BN after D's strided convs and FC (the paper) | spectral: spectral "
                                "normalisation of every layer of D, no BN (Miyato et al. 2018)")
    labelled_input: bool = setting(False, doc="an input `labelled` beside y in the three FC layers; training sets it "
                                              "when data.unlabelled is use")
    init: str = setting("dcgan", choices=("dcgan", "authors"),
                        doc="dcgan: N(0, 0.02) weights | authors: U(+-1/sqrt(3 fan_in)) (andersbll's code)")
    bn_eps: float = setting(1e-5, low=0, open_low=True, doc="batch-norm epsilon (the authors' code: 1e-6)")


@dataclass
class LossConfig:
    # gamma: our losses are batch means of per-image sums (L_llike summed over Dis_l features, GAN
    # terms over the fake sets), the authors' batch sums of the same terms, and RMSProp is blind to
    # a common scale: so their decoder weighting 1e-6 * L_llike + (1 - 1e-6) * L_GAN is gamma 1e-6 here too.
    gamma: float = setting(0.1, low=0, read_by=("vaegan",), doc="weight of L_llike in the decoder's loss")
    vae_pixel_sigma: float = setting(1.0, low=0, open_low=True, read_by=("vae",),
                                     doc="std of the vae baseline's pixel-wise Gaussian")
    equilibrium: float | None = setting(None, read_by=DISCRIMINATING,
                                        doc="gate D and the decoder's GAN term around this BCE (empty = off)")
    margin: float = setting(0.35, low=0, read_by=DISCRIMINATING, doc="the equilibrium gate's margin")
    dis_l: str = setting("post_bn", choices=("post_bn", "pre_bn"), read_by=("vaegan",),
                         doc="Dis_l after the conv's BN and ReLU | before them (the authors' code)")
    dis_l_layer: int | None = setting(None, read_by=("vaegan",),
                                      doc="D's conv that gives Dis_l, its first conv counting as 1 (empty = the last, "
                                          "the paper's 4th; at 32x32 the 3rd keeps the paper's 8x8 grid)")
    gate_rule: str = setting("either", choices=("either", "both"), read_by=DISCRIMINATING,
                             doc="either: pause D while it wins on real or on fake | both: only while it wins on both")
    prior_weight: float = setting(1.0, low=0, read_by=("vaegan",), doc="weight of L_prior in the encoder's loss (the "
                                                                        "paper: 1)")
    pixel_weight: float = setting(0.0, low=0, read_by=("vaegan",),
                                  doc="weight of a pixel-space Gaussian NLL on reconstructions in the encoder's and "
                                      "decoder's losses (the paper: 0)")
    dis_sees: list[str] = setting(factory=lambda: ["recon", "prior"], choices=("recon", "prior"), read_by=("vaegan",),
                                  doc="the fakes D and the decoder's GAN term use (the authors' LFW script: prior)")
    generator: str = setting("non_saturating", choices=("non_saturating", "saturating"), read_by=DISCRIMINATING,
                             doc="-log D(fake) | log(1 - D(fake) + 1e-3) (the authors' code)")
    r1_weight: float = setting(0.0, low=0, read_by=DISCRIMINATING,
                               doc="R1 penalty r1_weight/2 E|grad_x D(x)|^2 on real images (Mescheder et al. 2018)")
    r1_every: int = setting(1, low=1, read_by=DISCRIMINATING,
                            doc="lazy R1: the penalty x r1_every on every r1_every-th update (StyleGAN2)")
    dis_augment: list[str] = setting(factory=list, choices=DIS_AUGMENTS, empty_list=True, read_by=DISCRIMINATING,
                                     doc="D sees real and generated images through these differentiable transforms "
                                         "(DiffAugment; empty = none)")


@dataclass
class OptimConfig:
    optimizer: str = setting("rmsprop", choices=("rmsprop", "adam"),
                             doc="rmsprop (the paper) | adam (with beta1, beta2; with dis_lr_ratio: TTUR)")
    lr: float = setting(3e-4, low=0, open_low=True, doc="the learning rate (the paper: 3e-4)")
    alpha: float = setting(0.9, low=0, high=1, open_low=True, open_high=True, doc="RMSProp's smoothing constant")
    eps: float = setting(1e-8, low=0, open_low=True, doc="the optimiser's epsilon")
    beta1: float = setting(0.5, low=0, high=1, open_high=True, doc="adam: the gradient average's decay (DCGAN: 0.5)")
    beta2: float = setting(0.999, low=0, high=1, open_high=True, doc="adam: the squared gradient average's decay")
    warmup_steps: int = setting(0, low=0, doc="the learning rate rises linearly over this many first updates (0 = off)")
    weight_decay: float = setting(0.0, low=0, doc="L2 on conv and FC weights only (the authors: 1e-5)")
    schedule: str = setting("exponential", choices=("exponential", "power"),
                            doc="exponential: lr * lr_decay**epoch | power: lr - (t/T)**0.75 (lr - lr_end) (authors)")
    lr_decay: float = setting(1.0, low=0, open_low=True, doc="exponential schedule: factor per epoch (1 = off)")
    lr_decay_every: int | None = setting(None, low=1, doc="exponential schedule per update instead: "
                                                         "lr * lr_decay**(t / lr_decay_every)")
    dis_lr_ratio: float = setting(1.0, low=0, open_low=True, read_by=DISCRIMINATING,
                                  doc="D's learning rate is lr * dis_lr_ratio")
    lr_end: float = setting(1e-7, low=0, open_low=True, doc="power schedule: the learning rate after schedule_steps")
    schedule_steps: int = setting(37500, low=1, doc="power schedule: its horizon T in updates")
    grad_clip: float | None = setting(None, low=0, open_low=True, doc="clip each network's gradient norm (empty = off)")
    ema: float = setting(0.0, low=0, high=1, open_high=True,
                         doc="decay per update of moving averages of the encoder's and decoder's weights, which "
                             "sampling, encoding and editing use (warmed up as min(ema, (1+t)/(10+t)): the second "
                             "term is the smaller until t = (10*ema-1)/(1-ema), 8,990 updates for 0.999; 0 = off)")


@dataclass
class TrainConfig:
    epochs: int = setting(10, low=1, runtime=True, doc="passes over the training images")
    batch_size: int = setting(64, low=2, doc="images per update (batch norm needs 2)")
    max_steps: int | None = setting(None, low=1, runtime=True, doc="stop after this many updates (overrides epochs)")
    max_minutes: float | None = setting(None, low=0, runtime=True, doc="also stop once this much wall time is spent")
    seed: int = setting(0, recipe=False, doc="the networks' initial weights, the batch order and the noise")
    device: str = setting("auto", runtime=True, doc="auto (CUDA when present) | cpu | cuda[:N]")
    precision: str = setting("auto", choices=("auto", "fp32", "bf16", "fp16"), recipe=False,
                             doc="auto: bf16 on CUDA and on CPUs with native bf16, else fp32 | fp16: CUDA only")
    channels_last: bool = setting(False, runtime=True, doc="channels-last memory layout")
    compile: bool | str = setting("auto", choices=("auto", True, False), runtime=True,
                                  doc="torch.compile each network; auto: where measured to pay (CUDA in fp32)")
    threads: int | None = setting(None, low=1, runtime=True, doc="torch intra-op threads on CPU (empty = torch's)")
    checkpoint_every: int = setting(500, low=0, runtime=True, doc="updates between checkpoints")
    snapshot_every: int = setting(0, low=0, runtime=True,
                                  doc="updates between kept copies checkpoint-<step>.pt (0 = off)")
    log_every: int = setting(1, low=1, runtime=True, doc="updates between metrics.csv rows")
    sample_every_epoch: bool = setting(True, runtime=True, doc="write sample grids after each epoch")
    progress: bool = setting(True, runtime=True, doc="a progress bar (plain lines without a terminal)")
    eval_every: int = setting(0, low=0, runtime=True,
                              doc=f"updates between quality checks with --regressor (0 = off; --regressor alone: "
                                  f"{TRACKED_EVAL_EVERY})")
    eval_queries: int = setting(256, low=2, runtime=True, doc="queries (and real images) of each quality check")
    eval_split: str = setting("val", choices=("train", "val", "test"), runtime=True,
                              doc="split of the quality checks: val, so choices made from them never see test")


@dataclass
class DataConfig:
    path: str = setting("", runtime=True, recipe=False, doc="the dataset folder (a prep command's output)")
    attributes: list[str] | None = setting(None, doc="the attributes to condition on (empty = all; [] = none: "
                                                     "unconditional)")
    split: str = setting("train", doc="the split trained on")
    unlabelled: str = setting("use", choices=("use", "skip"),
                              doc="use: also train on unlabelled train images (y = 0, labelled = 0) | skip")
    labelled_share: float | None = setting(None, low=0, high=1, open_low=True,
                                           doc="with unlabelled=use: this share of every batch is labelled images "
                                               "(empty = as drawn)")
    augment: str = setting("none", choices=AUGMENTS,
                           doc="none | flip | authors: flips, small shift/scale/rotation, colour jitter")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


KEYS = {key.path: key for key in keys(Config)}


def unread_keys(kind: str | None) -> frozenset[str]:
    """The dotted config keys (``loss.prior_weight``) that model ``kind`` never reads."""
    return frozenset(path for path, key in KEYS.items() if kind in MODEL_KINDS and kind not in key.rule.read_by)


def runtime_keys() -> frozenset[str]:
    """Keys that say how long, where and how visibly to train: free on ``--resume``."""
    return frozenset(path for path, key in KEYS.items() if key.rule.runtime)


def from_dict(data: dict[str, Any]) -> Config:
    """Build a :class:`Config` from a (possibly partial) nested dict, checking every key."""
    return _built(data or {}, [])


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
    return _built(data, overrides or [])


def _built(data: dict[str, Any], overrides: list[str]) -> Config:
    values: dict[str, Any] = {}
    for section, entries in data.items():
        if section not in {f.name for f in dataclasses.fields(Config)}:
            raise ConfigError(f"unknown config key {section!r}")
        if not isinstance(entries, dict):
            raise ConfigError(f"config key {section!r} must be a mapping")
        for name, value in entries.items():
            values[_known(f"{section}.{name}")] = value
    for item in overrides:
        key, value = _parsed_override(item)
        values[key] = value
    sections: dict[str, dict[str, Any]] = {}
    for path, value in values.items():
        section, name = path.split(".")
        sections.setdefault(section, {})[name] = coerce(value, KEYS[path].hint, path)
    config = Config(**{name: section(**sections.get(name, {})) for name,
                       section in typing.get_type_hints(Config).items()})
    validate(config)
    return config


def _known(path: str) -> str:
    if path not in KEYS:
        raise ConfigError(f"unknown config key {path!r}")
    return path


def _parsed_override(item: str) -> tuple[str, Any]:
    """``train.batch_size=32`` -> ("train.batch_size", 32): the value read as YAML."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not key=value (e.g. train.batch_size=32)")
    key, raw = item.split("=", 1)
    key = _known(key.strip())
    try:
        return key, (yaml.safe_load(raw) if raw.strip() else None)
    except yaml.YAMLError:
        raise ConfigError(f"override {item!r}: the value is not valid YAML (quote strings, e.g. [a, b] for lists)") \
            from None


def flatten(section: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"loss": {"gamma": 0.1}}`` -> ``{"loss.gamma": 0.1}``."""
    flat: dict[str, Any] = {}
    for key, value in section.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def validate(config: Config) -> None:
    """Reject values no run could use, with a message naming the key and its range: each key by
    its own rule, then the rules that tie keys together."""
    for path, value in flatten(config.to_dict()).items():
        check(KEYS[path], value)
    m = config.model
    for name, channels in (("enc_channels", m.enc_channels), ("dec_channels", m.dec_channels),
                           ("dis_channels", m.dis_channels)):
        if m.image_size % (2 ** len(channels)) or m.image_size // 2 ** len(channels) < 2:
            raise ConfigError(f"model.{name}: {len(channels)} stride-2 layers do not fit image_size {m.image_size}")
    layer = config.loss.dis_l_layer
    if layer is not None and not 2 <= layer <= len(m.dis_channels) + 1:
        raise ConfigError(f"loss.dis_l_layer must be 2..{len(m.dis_channels) + 1} (a strided conv of D), got {layer}")


def recipe_of(config: dict) -> str:
    """A short fingerprint of what a run trains: every recipe key (attrgan.config_keys.Rule.recipe
    and not a run-time key: the model, losses, optimiser, data options and batch size), without
    the keys its model kind never reads (``unread_keys``); runs that differ only in the others
    (the seed, the dataset's folder, device, threads, budget) group together as training seeds.
    Keys at their default are left out, so a run saved before a key existed and one that leaves it
    at its default share a recipe."""
    skipped = unread_keys(config.get("model", {}).get("kind")) | runtime_keys()
    flat = flatten(config)
    recipe = {path: flat[path] for path, key in KEYS.items()
              if key.rule.recipe and not key.rule.runtime and path not in skipped and path in flat
              and flat[path] != key.default}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:8]
