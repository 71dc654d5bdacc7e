"""attrgan: conditional VAE/GAN on face attributes (Larsen et al., ICML 2016).

Library API beside the CLI::

    import attrgan
    cfg = attrgan.load_config("configs/lfw32.yaml", ["data.path=data/lfw32"])
    attrgan.train(cfg, "runs/vaegan32")
    model = attrgan.load("runs/vaegan32")
    images = model.sample(attributes, seed=0)
"""
__version__ = "0.1.0"

from .config import Config, load_config  # noqa: E402
from .generator import ConditionalModel, load  # noqa: E402
from .train import train  # noqa: E402

__all__ = ["Config", "ConditionalModel", "load", "load_config", "train", "__version__"]
