"""A trained conditional model loaded for use: sampling, encoding, reconstructing.

``attrgan.load(run_dir)`` returns a :class:`ConditionalModel`; all methods take and return
attributes in raw units (the checkpoint's training-split mean/std standardize them)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from attrgan.checkpoint import GENERATOR_KINDS, load_checkpoint
from attrgan.config import from_dict, recipe_of
from attrgan.data.dataset import ImageRows, Standardizer, to_model_range
from attrgan.nets.models import build_models
from attrgan.runtime.errors import UserError


@dataclass
class ConditionalModel:
    kind: str
    nets: dict[str, nn.Module]
    scaler: Standardizer
    image_size: int
    z_dim: int
    path: Path
    device: torch.device = torch.device("cpu")
    training_data: str | None = None  # the dataset directory the model was trained on
    train_seed: int | None = None  # the config's train.seed
    updates: int | None = None  # training updates done when the checkpoint was written
    recipe: str | None = None  # attrgan.config.recipe_of the training config

    @property
    def attribute_names(self) -> list[str]:
        return self.scaler.names

    @property
    def has_encoder(self) -> bool:
        return "encoder" in self.nets

    def to(self, device: torch.device | str) -> "ConditionalModel":
        self.device = torch.device(device)
        for net in self.nets.values():
            net.to(self.device)
        return self

    def condition(self, raw_attributes: np.ndarray) -> torch.Tensor:
        """Raw attribute vectors ``[N, A]`` -> the standardized y the networks see (finite values only)."""
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, as one error
            y = self.scaler.transform(np.asarray(raw_attributes, np.float32))
        if not np.isfinite(y).all():
            bad = sorted({self.attribute_names[j] for j in np.argwhere(~np.isfinite(y))[:, -1]})
            raise UserError(f"attribute values must be finite; got NaN or Inf for {', '.join(bad)}")
        return torch.from_numpy(y).to(self.device)

    @torch.inference_mode()
    def decode(self, z: torch.Tensor, raw_attributes: np.ndarray, batch: int = 512) -> torch.Tensor:
        """Images in [-1, 1] ``[N, 3, S, S]`` for latent codes and raw attributes."""
        y = self.condition(raw_attributes)
        if not torch.isfinite(z).all():
            raise UserError("latent codes must be finite; an edit strength this large overflows the code")
        dec = self.nets["decoder"]
        images = torch.cat([dec(z[i : i + batch].to(self.device), y[i : i + batch]) for i in range(0, len(z), batch)])
        if not torch.isfinite(images).all():
            raise UserError("the decoder gave non-finite pixels for these codes (an edit strength this large "
                             "overflows the network); nothing was written")
        return images

    def sample(self, raw_attributes: np.ndarray, seed: int = 0) -> torch.Tensor:
        """One sample per attribute row with z ~ N(0, I) from a seeded generator."""
        z = torch.randn(len(raw_attributes), self.z_dim, generator=torch.Generator().manual_seed(seed))
        return self.decode(z, raw_attributes)

    @torch.inference_mode()
    def posterior(self, images: torch.Tensor | ImageRows, raw_attributes: np.ndarray,
                  batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's Gaussian q(z | x, y) of uint8 or [-1, 1] images (a tensor, or anything
        sliced into batches, like attrgan.data.dataset.ImageRows): means and log-variances."""
        if not self.has_encoder:
            raise UserError(f"{self.path}: a {self.kind!r} model has no encoder; use a vaegan or vae checkpoint")
        y, enc = self.condition(raw_attributes), self.nets["encoder"]
        parts = []
        for i in range(0, max(len(images), 1), batch):  # one (empty) pass for no images
            x = images[i : i + batch]
            x = to_model_range(x) if x.dtype == torch.uint8 else x
            parts.append(enc(x.to(self.device), y[i : i + batch]))
        mu, logvar = zip(*parts)
        return torch.cat(mu), torch.cat(logvar)

    def encode(self, images: torch.Tensor | ImageRows, raw_attributes: np.ndarray) -> torch.Tensor:
        """Encoder means (the paper's latent codes) of uint8 or [-1, 1] images, batched as :meth:`posterior`."""
        return self.posterior(images, raw_attributes)[0]

    def reconstruct(self, images: torch.Tensor, raw_attributes: np.ndarray) -> torch.Tensor:
        return self.decode(self.encode(images, raw_attributes), raw_attributes)


def load(path: str | Path, device: str | torch.device = "cpu") -> ConditionalModel:
    """Load a trained conditional model from a run directory, a checkpoint file or the name of a
    bundled model (``attrgan.load("lfw32")``)."""
    payload = load_checkpoint(path, expect_kinds=GENERATOR_KINDS)
    config = from_dict(payload["config"])
    nets = {name: net for name, net in build_models(config.model, len(payload["attribute_names"])).items()
            if name in payload["nets"]}  # a bundled model keeps only what sampling and encoding read
    for name, net in nets.items():  # the weight averages (optim.ema) where the run kept them
        net.load_state_dict(payload.get("averages", {}).get(name, payload["nets"][name]))
        net.eval()
    model = ConditionalModel(payload["kind"], nets, Standardizer.from_dict(payload), payload["image_size"],
                             config.model.z_dim, Path(path), training_data=config.data.path or None,
                             train_seed=config.train.seed, updates=payload.get("step"),
                             recipe=recipe_of(config.to_dict()))  # defaults filled: keys added later match
    return model.to(device)
