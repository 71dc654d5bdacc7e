"""The compact copy of a trained model that ships inside the package (attrgan.bundle): only the
networks that sampling, encoding and editing read (the encoder and decoder, their weight
averages where the run kept them; no discriminator, optimiser or RNG state, nor the path of the
dataset it was trained on), and every member of its regressor, in half precision."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from attrgan import bundle
from attrgan.bundle import CATALOGUE, ROLES, catalogue, sha256_of_file
from attrgan.checkpoint import REGRESSOR_KIND, load_checkpoint, save_torch_file
from attrgan.runtime.files import write_json

SAMPLING_NETS = ("encoder", "decoder")  # what sample, encode, reconstruct and edit read
KINDS = {"generator": (("vaegan", "vae"), "a conditional VAE/GAN or VAE checkpoint"),
         "regressor": ((REGRESSOR_KIND,), "a regressor written by train-regressor")}
TRAINING_ONLY = ("nets", "averages", "optimizers", "schedulers", "rng")  # left out (nets: rewritten)


def compact(payload: dict[str, Any], role: str) -> dict[str, Any]:
    """What ships of a checkpoint: the sampling networks (their averages where kept) of a
    generator, every member of a regressor, floating tensors in half precision."""
    if role == "generator":
        averages = payload.get("averages", {})
        nets = {name: averages.get(name, payload["nets"][name]) for name in SAMPLING_NETS if name in payload["nets"]}
    else:
        nets = payload["nets"]
    kept = {key: value for key, value in payload.items() if key not in TRAINING_ONLY}
    if role == "generator":  # the exporter's dataset folder means nothing where the package is installed
        kept["config"] = {**kept["config"], "data": {**kept["config"].get("data", {}), "path": ""}}
    return {**kept, "nets": {name: {key: value.half() if value.is_floating_point() else value
                                    for key, value in state.items()} for name, state in nets.items()}}


def export(name: str, card: str, generator: Path, regressor: Path, folder: Path | None = None) -> dict[str, Any]:
    """Write bundled model ``name`` (compact copies of the ``generator`` and ``regressor``
    checkpoints: run folders or files) into ``folder`` and record it in its catalogue; returns the entry."""
    folder = folder or bundle.BUNDLE_DIR
    compacts = {role: compact(load_checkpoint(source, expect_kinds=KINDS[role][0], what=KINDS[role][1]), role)
                for role, source in zip(ROLES, (generator, regressor))}  # both checked before anything is written
    entry: dict[str, Any] = {"card": card}
    for role, payload in compacts.items():
        out = folder / f"{name}.{role}.pt"
        save_torch_file(out, payload)
        entry[role] = {"file": out.name, "sha256": sha256_of_file(out), "bytes": out.stat().st_size}
    write_json(folder / CATALOGUE, {**catalogue(folder), name: entry})
    return entry
