"""The paper's encoder, decoder and discriminator (Larsen et al. 2016, Table in appendix),
made conditional: the standardized attribute vector y is concatenated into the fully
connected layer of each network, and only there.

For 64x64 images (defaults of :class:`attrgan.config.ModelConfig`):
  Enc: 5x5 conv 64/2, 128/2, 256/2 (BN, ReLU) -> flatten ⊕ y -> FC 2048 (BN, ReLU) -> mu, log sigma^2
  Dec: z ⊕ y -> FC 8*8*256 (BN, ReLU) -> 5x5 convT 256x2, 128x2, 32x2 (BN, ReLU) -> 5x5 conv 3, tanh
       (``model.upsample`` replaces each convT x2 by an x2 step that cannot make a checkerboard
       from flat weights; ours, not the paper's: see :func:`up_block`)
  Dis: 5x5 conv 32 (ReLU) -> 5x5 conv 128/2, 256/2, 256/2 (BN, ReLU) -> flatten ⊕ y -> FC 512 (BN, ReLU) -> FC 1
       (``model.dis_norm: spectral``: no BN in D, every conv and FC layer spectrally normalised
       (Miyato et al. 2018); ours, not the paper's: a D that stays Lipschitz can keep training
       without the equilibrium gate. Dis_l is then read through a parameter-free batch
       standardisation, :func:`dis_l_readout`, so L_llike keeps its scale)
Dis_l, the learned similarity, is the output of the discriminator's 4th conv layer, taken
after its BN and ReLU (``post_bn``, ours) or before them (``pre_bn``, the authors' code);
``loss.dis_l_layer`` can move it (at 32x32 the 4th conv is a 4x4 map, the 3rd keeps the
paper's 8x8 feature grid).
Other image sizes keep the layers and change the spatial size at the FC layers.

With ``labelled_input`` (set when training also uses unlabelled images) every FC input also
gets one column ``labelled`` in {0, 1} beside y, so the three FC layers are one input wider;
it defaults to 1 (a labelled query) wherever a caller gives none, so generation and
evaluation always condition as labelled.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from attrgan.config import ModelConfig
from attrgan.runtime.errors import UserError

KERNEL, PAD = 5, 2


def down_block(c_in: int, c_out: int, bn_eps: float = 1e-5, norm: str = "batch") -> nn.Sequential:
    """A 5x5 conv of stride 2, then BN (or, with ``norm="spectral"``, a spectrally normalised
    conv and no BN: an Identity keeps the (conv, norm, ReLU) layout Dis_l reads) and ReLU."""
    conv = nn.Conv2d(c_in, c_out, KERNEL, 2, PAD, bias=False)
    return nn.Sequential(*normalised(conv, nn.BatchNorm2d(c_out, eps=bn_eps), norm), nn.ReLU(inplace=True))


def normalised(layer: nn.Module, batch_norm: nn.Module, norm: str) -> tuple[nn.Module, nn.Module]:
    """(layer, batch_norm) for ``norm="batch"``; (spectral_norm(layer), Identity) for ``"spectral"``."""
    return (layer, batch_norm) if norm == "batch" else (spectral_if(layer, norm), nn.Identity())


def spectral_if(layer: nn.Module, norm: str) -> nn.Module:
    """``layer`` spectrally normalised for ``norm="spectral"``, as it is otherwise."""
    return spectral_norm(layer) if norm == "spectral" else layer


class Blur(nn.Module):
    """A fixed, depthwise [1, 3, 3, 1] ⊗ [1, 3, 3, 1] / 64 low-pass of stride 1 (as in
    StyleGAN2's upsampling). Its response is zero at the Nyquist frequency, so it removes a
    period-2 checkerboard entirely. Padding (2, 1) per axis: the paper's transposed conv
    (padding 2) centres input pixel i at output 2i, and this filter moves it by half a pixel
    to 2i + 0.5, where a x2 resize puts it."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
        kernel = torch.outer(taps, taps) / taps.sum() ** 2
        self.register_buffer("kernel", kernel.expand(channels, 1, 4, 4).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (2, 1, 2, 1)), self.kernel.to(x.dtype), groups=x.shape[1])


def upsample_layers(c_in: int, c_out: int, upsample: str) -> tuple[nn.Module, ...]:
    """The x2 step of ``model.upsample``, without BN and ReLU:
    - transposed: a 5x5 transposed conv of stride 2 (the paper). Its kernel overlaps unevenly
      (3 taps on one output pixel, 2 on its neighbour per axis), which lets a period-2
      checkerboard through for free (Odena et al. 2016);
    - transposed4: a 4x4 transposed conv of stride 2, padding 1: every output pixel gets 2 taps
      per axis (even overlap), the DCGAN decoder's kernel;
    - blur: the paper's 5x5 transposed conv followed by the fixed [1, 3, 3, 1] low-pass (:class:`Blur`);
    - resize: nearest-neighbour x2, then a 5x5 conv;
    - bilinear: bilinear x2, then a 5x5 conv.
    Every form but the paper's maps a flat input through flat weights to a flat output."""
    if upsample in ("transposed", "blur"):
        transposed = nn.ConvTranspose2d(c_in, c_out, KERNEL, 2, PAD, output_padding=1, bias=False)
        return (transposed, Blur(c_out)) if upsample == "blur" else (transposed,)
    if upsample == "transposed4":
        return (nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),)
    mode = {"resize": "nearest", "bilinear": "bilinear"}[upsample]
    return nn.Upsample(scale_factor=2, mode=mode), nn.Conv2d(c_in, c_out, KERNEL, 1, PAD, bias=False)


def up_block(c_in: int, c_out: int, bn_eps: float = 1e-5, upsample: str = "transposed") -> nn.Sequential:
    """One x2 step of the decoder (:func:`upsample_layers`), then BN and ReLU."""
    return nn.Sequential(*upsample_layers(c_in, c_out, upsample),
                         nn.BatchNorm2d(c_out, eps=bn_eps), nn.ReLU(inplace=True))


def fc_block(n_in: int, n_out: int, bn_eps: float = 1e-5, norm: str = "batch") -> nn.Sequential:
    fc = nn.Linear(n_in, n_out, bias=norm != "batch")  # BN's shift stands in for the bias
    return nn.Sequential(*normalised(fc, nn.BatchNorm1d(n_out, eps=bn_eps), norm), nn.ReLU(inplace=True))


class Conditioning(nn.Module):
    """Builds the FC layers' extra input: y, plus the ``labelled`` column when the model has one."""

    def __init__(self, n_attributes: int, labelled_input: bool) -> None:
        super().__init__()
        self.n_attributes, self.labelled_input = n_attributes, labelled_input
        self.width = n_attributes + int(labelled_input)

    def forward(self, y: torch.Tensor, batch: int, labelled: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
        if y.shape != (batch, self.n_attributes):
            raise UserError(f"attribute vector y must be [{batch}, {self.n_attributes}], got {list(y.shape)}")
        if not self.labelled_input:
            return y.to(dtype)
        flag = torch.ones(batch, 1, dtype=dtype,
                          device=y.device) if labelled is None else labelled.reshape(batch, 1).to(dtype)
        return torch.cat([y.to(dtype), flag], 1)


class Encoder(nn.Module):
    """q(z | x, y): image and attributes -> (mu, log sigma^2) of the latent code."""

    def __init__(self, cfg: ModelConfig, n_attributes: int) -> None:
        super().__init__()
        self.condition = Conditioning(n_attributes, cfg.labelled_input)
        channels = [3, *cfg.enc_channels]
        self.convs = nn.Sequential(*[down_block(a, b, cfg.bn_eps) for a, b in zip(channels, channels[1:])])
        base = cfg.image_size // 2 ** len(cfg.enc_channels)
        self.fc = fc_block(channels[-1] * base * base + self.condition.width, cfg.enc_fc, cfg.bn_eps)  # flatten ⊕ y
        self.mu = nn.Linear(cfg.enc_fc, cfg.z_dim)
        self.logvar = nn.Linear(cfg.enc_fc, cfg.z_dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor,
                labelled: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.convs(x).flatten(1)  # (B, C*base*base)
        h = self.fc(torch.cat([h, self.condition(y, x.shape[0], labelled, h.dtype)], 1))  # (B, enc_fc)
        return self.mu(h), self.logvar(h)


class Decoder(nn.Module):
    """p(x | z, y): latent code and attributes -> image in [-1, 1]."""

    def __init__(self, cfg: ModelConfig, n_attributes: int) -> None:
        super().__init__()
        self.condition = Conditioning(n_attributes, cfg.labelled_input)
        self.z_dim = cfg.z_dim
        self.base = cfg.image_size // 2 ** len(cfg.dec_channels)
        self.fc_channels = cfg.dec_fc_channels
        # z ⊕ y
        self.fc = fc_block(cfg.z_dim + self.condition.width, cfg.dec_fc_channels * self.base * self.base, cfg.bn_eps)
        channels = [cfg.dec_fc_channels, *cfg.dec_channels]
        self.ups = nn.Sequential(*[up_block(a, b, cfg.bn_eps, cfg.upsample) for a, b in zip(channels, channels[1:])])
        self.out = nn.Sequential(nn.Conv2d(channels[-1], 3, KERNEL, 1, PAD), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor, labelled: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(torch.cat([z, self.condition(y, z.shape[0], labelled, z.dtype)], 1))  # (B, C*base*base)
        h = h.view(-1, self.fc_channels, self.base, self.base)
        return self.out(self.ups(h))  # (B, 3, S, S)


class Discriminator(nn.Module):
    """D(x, y) -> (logit of "real", Dis_l features of the 4th conv layer)."""

    def __init__(self, cfg: ModelConfig, n_attributes: int) -> None:
        super().__init__()
        self.condition = Conditioning(n_attributes, cfg.labelled_input)
        norm = cfg.dis_norm
        self.first = nn.Sequential(spectral_if(nn.Conv2d(3, cfg.dis_first_channels, KERNEL, 1, PAD), norm),
                                   nn.ReLU(inplace=True))
        channels = [cfg.dis_first_channels, *cfg.dis_channels]
        self.convs = nn.Sequential(*[down_block(a, b, cfg.bn_eps, norm) for a, b in zip(channels, channels[1:])])
        base = cfg.image_size // 2 ** len(cfg.dis_channels)
        # flatten ⊕ y
        self.fc = fc_block(channels[-1] * base * base + self.condition.width, cfg.dis_fc, cfg.bn_eps, norm)
        self.logit = spectral_if(nn.Linear(cfg.dis_fc, 1), norm)

    def forward(self, x: torch.Tensor, y: torch.Tensor, labelled: torch.Tensor | None = None,
                dis_l: str = "post_bn", dis_l_layer: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (logit, Dis_l). Dis_l is the output of conv layer ``dis_l_layer`` (D's first,
        stride-1 conv counts as 1; None: the last, the paper's 4th), after (post_bn) or before
        (pre_bn) its BN and ReLU (with ``dis_norm: spectral``: after or before its ReLU)."""
        split = len(self.convs) - 1 if dis_l_layer is None else dis_l_layer - 2  # index of that layer in self.convs
        if not 0 <= split < len(self.convs):
            raise UserError(f"dis_l_layer must be 2..{len(self.convs) + 1}, got {dis_l_layer}")
        h = self.convs[:split](self.first(x))
        conv, bn, relu = self.convs[split]
        pre = conv(h)
        if isinstance(bn, nn.BatchNorm2d):
            post = relu(bn(pre))  # not in place on `pre`: BN returns a new tensor
            features = pre if dis_l == "pre_bn" else post  # Dis_l: (B, C, S', S')
        else:  # spectral: Dis_l read through a parameter-free batch standardisation (see dis_l_readout)
            post = F.relu(pre)  # not in place: dis_l_readout reads `pre`
            features = dis_l_readout(pre, dis_l)

        h = self.convs[split + 1:](post)  # (B, C, base, base)
        h = self.fc(torch.cat([h.flatten(1), self.condition(y, x.shape[0], labelled, h.dtype)], 1))
        return self.logit(h).squeeze(1), features


def dis_l_readout(pre: torch.Tensor, dis_l: str) -> torch.Tensor:
    """Dis_l of a spectrally normalised D: its conv output standardised per channel over the batch
    (no parameters, nothing learnt, outside D's path to its logit), then ReLU for ``post_bn``.
    Without it L_llike (a unit-variance Gaussian on the features, the paper's eq. 9) measured
    0.4 at the first updates on real LFW against ~1,000 behind batch norm, and would vanish
    beside L_prior and the GAN terms; with it Dis_l has the batch-norm D's scale."""
    standardised = F.batch_norm(pre, None, None, training=True)
    return standardised if dis_l == "pre_bn" else F.relu(standardised)


def build_models(cfg: ModelConfig, n_attributes: int) -> dict[str, nn.Module]:
    """The networks a model kind trains: vaegan and vae have an encoder, vaegan and gan a
    discriminator; all three have the decoder."""
    nets: dict[str, nn.Module] = {"decoder": Decoder(cfg, n_attributes)}
    if cfg.kind in ("vaegan", "vae"):
        nets["encoder"] = Encoder(cfg, n_attributes)
    if cfg.kind in ("vaegan", "gan"):
        nets["discriminator"] = Discriminator(cfg, n_attributes)
    init = init_weights if cfg.init == "dcgan" else init_weights_authors
    for net in nets.values():
        net.apply(init)
    return dict(sorted(nets.items()))


WEIGHTED_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def init_weights(module: nn.Module) -> None:
    """DCGAN-style initialisation: N(0, 0.02) weights, BN scale N(1, 0.02)."""
    if isinstance(module, WEIGHTED_LAYERS):
        _fill_weight(module, lambda w: nn.init.normal_(w, 0.0, 0.02))
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def init_weights_authors(module: nn.Module) -> None:
    """The authors' filler: weights U(±1/sqrt(3·fan_in)), zero biases, BN scale 1 and shift 0."""
    if isinstance(module, WEIGHTED_LAYERS):
        fan_in = nn.init._calculate_fan_in_and_fan_out(module.weight)[0 if not isinstance(module,
                                                                                          nn.ConvTranspose2d) else 1]
        bound = 1.0 / (3.0 * fan_in) ** 0.5
        _fill_weight(module, lambda w: nn.init.uniform_(w, -bound, bound))
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def weight_parameter(module: nn.Module) -> nn.Parameter:
    """A layer's trained weight: the raw weight of a spectrally normalised layer, else ``weight``."""
    return module.parametrizations.weight.original if parametrize.is_parametrized(module, "weight") else module.weight


def _fill_weight(module: nn.Module, fill) -> None:
    """Fill a layer's weight in place; a spectrally normalised layer gets its raw weight
    filled and its normalisation registered anew, so the power iteration starts from it."""
    if not parametrize.is_parametrized(module, "weight"):
        fill(module.weight)
        return
    parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
    fill(module.weight)
    spectral_norm(module)
