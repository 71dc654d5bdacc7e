"""attrgan: conditional VAE/GAN on face attributes (Larsen et al., ICML 2016).

Library API beside the CLI::

    import attrgan
    cfg = attrgan.load_config("configs/lfw32.yaml", ["data.path=data/lfw32"])
    attrgan.train(cfg, "runs/vaegan32")
    model = attrgan.load("runs/vaegan32")
    images = model.sample(attributes, seed=0)

Names are imported lazily, so light modules (e.g. ``attrgan.runtime.device``) load without the models.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"
_EXPORTS = {"Config": "config", "load_config": "config", "ConditionalModel": "nets.loaded", "load": "nets.loaded",
            "train": "training.loop"}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'attrgan' has no attribute {name!r}")
