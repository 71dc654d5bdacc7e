"""attrgan: conditional VAE/GAN on face attributes (Larsen et al., ICML 2016)."""
__version__ = "0.1.0"
