"""What `--resume` may and may not change: the checkpoint's model kind, image size, network
shapes and training data are fixed (its dataset is fingerprinted by content); its training
settings change only with ``--allow-changes``, which run.json then records with the step."""
from __future__ import annotations

import hashlib
from pathlib import Path

from attrgan.checkpoint import CheckpointError
from attrgan.config import Config, ConfigError, flatten, from_dict, runtime_keys, unread_keys
from data_prep.sources import sha256_of

DATASET_FILES = ("manifest.json", "index.csv", "images.npy")  # what training reads of a dataset
FINGERPRINT_PREFIX = "content-sha256:"


def dataset_fingerprint(root: str | Path) -> str:
    """sha256 over the names and the streamed sha256 (data_prep.sources.sha256_of) of the files
    training reads (manifest.json, index.csv, images.npy): a change to any image or label
    changes it (about 0.2 s for the full LFW at 64x64, docs/performance.md)."""
    parts = [f"{name}:{sha256_of(Path(root) / name)}" for name in DATASET_FILES]
    return FINGERPRINT_PREFIX + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _same_dataset(saved: str | None, root: str | Path, fingerprint: str) -> bool:
    """Checkpoints written before content fingerprints hold the sha256 of manifest.json alone."""
    if saved is None or saved == fingerprint:
        return True
    if saved.startswith(FINGERPRINT_PREFIX):
        return False
    return saved == hashlib.sha256((Path(root) / "manifest.json").read_bytes()).hexdigest()


def changed_settings(saved: dict, config: Config) -> dict[str, list]:
    """Training settings (every config key but the model, data and runtime ones, and those the
    model kind never reads) that differ from the checkpoint's: ``{key: [old, new]}``."""
    old, new = flatten(saved), flatten(config.to_dict())
    free = runtime_keys() | unread_keys(config.model.kind)
    return {key: [old.get(key), value] for key, value in new.items()
            if key.split(".")[0] not in ("model", "data") and key not in free and old.get(key) != value}


def saved_config(previous: dict, path: Path) -> dict:
    """The checkpoint's config with the defaults of keys added since it was written filled in
    (each new key's default keeps what older code did), so that only real differences count."""
    try:
        return from_dict(previous["config"]).to_dict()
    except ConfigError as exc:
        raise CheckpointError(f"{path}: its config does not fit this version of attrgan ({exc})") from None


def check_compatible(previous: dict, config: Config, path: Path, fingerprint: str, allow_changes: bool) -> dict:
    """Refuse a resume that cannot continue this checkpoint; return the allowed setting changes."""
    if previous["kind"] != config.model.kind:
        raise CheckpointError(f"{path}: checkpoint is a {previous['kind']!r} model, the config asks for "
                              f"{config.model.kind!r}")
    if previous["image_size"] != config.model.image_size:
        raise CheckpointError(
            f"{path}: checkpoint is for {previous['image_size']}x{previous['image_size']} images, "
            f"the config for {config.model.image_size}x{config.model.image_size}"
        )
    saved, current, unread = saved_config(previous, path), config.to_dict(), unread_keys(config.model.kind)
    differ = [f"model.{key} {value!r} -> {current['model'][key]!r}" for key, value in saved["model"].items()
              if current["model"][key] != value and f"model.{key}" not in unread]
    if differ:
        raise CheckpointError(f"{path}: the checkpoint's networks differ from the config's model section "
                              f"({', '.join(differ)})")
    saved_data, data = saved["data"], current["data"]
    changed = [f"data.{key}" for key in data if key != "path" and saved_data[key] != data[key]]
    if not _same_dataset(previous.get("dataset_fingerprint"), config.data.path, fingerprint):
        changed.append(f"the dataset files in {config.data.path}")
    if changed:
        raise CheckpointError(f"{path}: --resume with other training data than the checkpoint's ({', '.join(changed)} "
                              "changed); resume with the same data, or start a new run in another --out")
    settings = changed_settings(saved, config)
    if settings and not allow_changes:
        listed = ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in settings.items())
        raise CheckpointError(f"{path}: --resume with other training settings than the checkpoint's ({listed}); "
                              "resume with the same settings, or pass --allow-changes to continue under the new ones")
    return settings
