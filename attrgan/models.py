"""The paper's encoder, decoder and discriminator (Larsen et al. 2016, Table in appendix),
made conditional: the standardized attribute vector y is concatenated into the fully
connected layer of each network, and only there.

For 64x64 images (defaults of :class:`attrgan.config.ModelConfig`):
  Enc: 5x5 conv 64/2, 128/2, 256/2 (BN, ReLU) -> flatten ⊕ y -> FC 2048 (BN, ReLU) -> mu, log sigma^2
  Dec: z ⊕ y -> FC 8*8*256 (BN, ReLU) -> 5x5 convT 256x2, 128x2, 32x2 (BN, ReLU) -> 5x5 conv 3, tanh
  Dis: 5x5 conv 32 (ReLU) -> 5x5 conv 128/2, 256/2, 256/2 (BN, ReLU) -> flatten ⊕ y -> FC 512 (BN, ReLU) -> FC 1
Dis_l, the learned similarity, is the output of the discriminator's 4th conv layer.
Other image sizes keep the layers and change the spatial size at the FC layers.
"""
from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig

KERNEL, PAD = 5, 2


def down_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, KERNEL, 2, PAD, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def up_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, KERNEL, 2, PAD, output_padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def fc_block(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_out, bias=False), nn.BatchNorm1d(n_out), nn.ReLU(inplace=True))


def _check_condition(y: torch.Tensor, batch: int, n_attributes: int) -> None:
    assert y.shape == (batch, n_attributes), f"attribute vector y must be [{batch}, {n_attributes}], got {list(y.shape)}"


class Encoder(nn.Module):
    """q(z | x, y): image and attributes -> (mu, log sigma^2) of the latent code."""

    def __init__(self, cfg: ModelConfig, n_attributes: int) -> None:
        super().__init__()
        self.n_attributes = n_attributes
        channels = [3, *cfg.enc_channels]
        self.convs = nn.Sequential(*[down_block(a, b) for a, b in zip(channels, channels[1:])])
        base = cfg.image_size // 2 ** len(cfg.enc_channels)
        self.fc = fc_block(channels[-1] * base * base + n_attributes, cfg.enc_fc)  # conditioning: flatten ⊕ y
        self.mu = nn.Linear(cfg.enc_fc, cfg.z_dim)
        self.logvar = nn.Linear(cfg.enc_fc, cfg.z_dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_condition(y, x.shape[0], self.n_attributes)
        h = self.convs(x).flatten(1)  # (B, C*base*base)
        h = self.fc(torch.cat([h, y.to(h.dtype)], 1))  # (B, enc_fc)
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """p(x | z, y): latent code and attributes -> image in [-1, 1]."""

    def __init__(self, cfg: ModelConfig, n_attributes: int) -> None:
        super().__init__()
        self.n_attributes = n_attributes
        self.z_dim = cfg.z_dim
        self.base = cfg.image_size // 2 ** len(cfg.dec_channels)
        self.fc_channels = cfg.dec_fc_channels
        self.fc = fc_block(cfg.z_dim + n_attributes, cfg.dec_fc_channels * self.base * self.base)  # conditioning: z ⊕ y
        channels = [cfg.dec_fc_channels, *cfg.dec_channels]
        self.ups = nn.Sequential(*[up_block(a, b) for a, b in zip(channels, channels[1:])])
        self.out = nn.Sequential(nn.Conv2d(channels[-1], 3, KERNEL, 1, PAD), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_condition(y, z.shape[0], self.n_attributes)
        h = self.fc(torch.cat([z, y.to(z.dtype)], 1))  # (B, C*base*base)
        h = h.view(-1, self.fc_channels, self.base, self.base)
        return self.out(self.ups(h))  # (B, 3, S, S)


class Discriminator(nn.Module):
    """D(x, y) -> (logit of "real", Dis_l features of the 4th conv layer)."""

    def __init__(self, cfg: ModelConfig, n_attributes: int) -> None:
        super().__init__()
        self.n_attributes = n_attributes
        self.first = nn.Sequential(nn.Conv2d(3, cfg.dis_first_channels, KERNEL, 1, PAD), nn.ReLU(inplace=True))
        channels = [cfg.dis_first_channels, *cfg.dis_channels]
        self.convs = nn.Sequential(*[down_block(a, b) for a, b in zip(channels, channels[1:])])
        base = cfg.image_size // 2 ** len(cfg.dis_channels)
        self.fc = fc_block(channels[-1] * base * base + n_attributes, cfg.dis_fc)  # conditioning: flatten ⊕ y
        self.logit = nn.Linear(cfg.dis_fc, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_condition(y, x.shape[0], self.n_attributes)
        features = self.convs(self.first(x))  # Dis_l: (B, C, base, base)
        h = self.fc(torch.cat([features.flatten(1), y.to(features.dtype)], 1))
        return self.logit(h).squeeze(1), features


def build_models(cfg: ModelConfig, n_attributes: int) -> dict[str, nn.Module]:
    """The networks a model kind trains: vaegan and vae have an encoder, vaegan and gan a
    discriminator; all three have the decoder."""
    nets: dict[str, nn.Module] = {"decoder": Decoder(cfg, n_attributes)}
    if cfg.kind in ("vaegan", "vae"):
        nets["encoder"] = Encoder(cfg, n_attributes)
    if cfg.kind in ("vaegan", "gan"):
        nets["discriminator"] = Discriminator(cfg, n_attributes)
    for net in nets.values():
        net.apply(init_weights)
    return dict(sorted(nets.items()))


def init_weights(module: nn.Module) -> None:
    """DCGAN-style initialisation: N(0, 0.02) weights, BN scale N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
