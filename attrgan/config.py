"""Training configuration: nested dataclasses with defaults, YAML files that hold only
changes, and dotted ``key=value`` overrides that reject unknown keys and wrong types."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MODEL_KINDS = ("vaegan", "vae", "gan")


@dataclass
class ModelConfig:
    kind: str = "vaegan"  # vaegan | vae | gan
    image_size: int = 64  # 32, 64 or 128: the conv stacks end at image_size / 2**len(channels)
    z_dim: int = 128
    enc_channels: list[int] = field(default_factory=lambda: [64, 128, 256])  # each 5x5, stride 2
    enc_fc: int = 2048
    dec_channels: list[int] = field(default_factory=lambda: [256, 128, 32])  # each 5x5 transposed, stride 2
    dec_fc_channels: int = 256  # FC output reshaped to dec_fc_channels x base x base
    dis_first_channels: int = 32  # 5x5, stride 1, ReLU, no BN
    dis_channels: list[int] = field(default_factory=lambda: [128, 256, 256])  # each 5x5, stride 2
    dis_fc: int = 512


@dataclass
class LossConfig:
    gamma: float = 1e-2  # weight of L_llike in the decoder's loss (the paper's gamma)
    vae_pixel_sigma: float = 1.0  # std of the pixel-wise Gaussian of the `vae` baseline
    equilibrium: float | None = None  # stabiliser: gate D/Dec GAN updates around this BCE (None = off)
    margin: float = 0.35


@dataclass
class OptimConfig:
    lr: float = 3e-4  # RMSProp, as in the paper
    alpha: float = 0.9  # RMSProp smoothing constant
    eps: float = 1e-8
    weight_decay: float = 0.0
    lr_decay: float = 1.0  # multiply every learning rate by this after each epoch (1 = off)
    grad_clip: float | None = None


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    max_steps: int | None = None  # stop after this many steps (overrides epochs)
    max_minutes: float | None = None  # also stop once this much wall time is spent (a fixed budget per model)
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"  # fp32 | bf16 | fp16 (fp16 only on CUDA)
    channels_last: bool = False
    threads: int | None = None  # torch intra-op threads on CPU (None = torch default)
    checkpoint_every: int = 500  # steps
    log_every: int = 1  # steps between metrics.csv rows
    sample_every_epoch: bool = True
    progress: bool = True


@dataclass
class DataConfig:
    path: str = ""
    attributes: list[str] | None = None  # subset of attribute names (None = all)
    split: str = "train"


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ConfigError(ValueError):
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
        data = yaml.safe_load(path.read_text()) or {}
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
    value = yaml.safe_load(raw) if raw.strip() else None
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


def validate(config: Config) -> None:
    """Reject values no run could use, with a message naming the key."""
    m, t = config.model, config.train
    if m.kind not in MODEL_KINDS:
        raise ConfigError(f"model.kind must be one of {', '.join(MODEL_KINDS)}, got {m.kind!r}")
    for name, channels in (("enc_channels", m.enc_channels), ("dec_channels", m.dec_channels), ("dis_channels", m.dis_channels)):
        if m.image_size % (2 ** len(channels)) or m.image_size // 2 ** len(channels) < 2:
            raise ConfigError(f"model.{name}: {len(channels)} stride-2 layers do not fit image_size {m.image_size}")
    if t.precision not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"train.precision must be fp32, bf16 or fp16, got {t.precision!r}")
    if t.batch_size < 2:
        raise ConfigError("train.batch_size must be at least 2 (batch norm)")
    if config.loss.gamma < 0:
        raise ConfigError("loss.gamma must be non-negative")
