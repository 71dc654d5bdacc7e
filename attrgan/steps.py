"""One training step's gradients for each model kind, each network receiving only the
gradients of its own loss (Larsen et al. 2016, Algorithm 1; signs derived in losses.py):

    vaegan  Enc: L_prior + L_llike      Dec: gamma * L_llike + L_GAN(gen)     Dis: -L_GAN
    vae     Enc, Dec: L_prior + pixel-wise Gaussian NLL
    gan     Dec: L_GAN(gen)             Dis: -L_GAN

One forward pass is shared by all losses; the per-network gradients are separate
``autograd.grad`` calls over it, so no loss leaks into a network it must not train.

Switches (attrgan.config.LossConfig): ``dis_l`` (Dis_l after or before the 4th conv's BN and
ReLU), ``dis_sees`` (which fakes enter L_GAN: reconstructions and/or prior samples),
``generator`` (non-saturating or the authors' saturating decoder term). Every step takes
``labelled`` ([B] of 0/1, None = all labelled): the extra FC input of models trained on
unlabelled images too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .config import LossConfig
from .losses import bce_of, discriminator_loss, gaussian_nll, generator_loss, kl_prior

Grads = dict[str, tuple[torch.Tensor, ...] | None]  # network name -> grads (None: no update this step)


@dataclass
class StepResult:
    grads: Grads
    logs: dict[str, float]  # losses and diagnostics; the trainer stops on any NaN/Inf here


@dataclass
class Noise:
    eps: torch.Tensor  # reparameterisation noise [B, z]
    z_prior: torch.Tensor  # prior samples [B, z]
    labelled: torch.Tensor | None = None  # [B] 1 = labelled image, 0 = unlabelled (y = 0); None = all labelled


def _item(t: torch.Tensor) -> float:
    return t.detach().item()


def _params(net: nn.Module) -> tuple[torch.Tensor, ...]:
    return tuple(p for p in net.parameters() if p.requires_grad)


def _grad(loss: torch.Tensor, net: nn.Module, scale: Callable, retain: bool) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(scale(loss), _params(net), retain_graph=retain)


def vaegan_step(nets: dict[str, nn.Module], x, y, noise: Noise, cfg: LossConfig, scale: Callable = lambda t: t) -> StepResult:
    """The conditional VAE/GAN step."""
    enc, dec, dis = nets["encoder"], nets["decoder"], nets["discriminator"]
    labelled = noise.labelled
    mu, logvar = enc(x, y, labelled)
    z = mu + (0.5 * logvar).exp() * noise.eps  # reparameterisation
    x_rec = dec(z, y, labelled)
    x_prior = dec(noise.z_prior, y, labelled)
    # One D pass over real, reconstructed and prior samples: batch norm then normalises
    # Dis_l(x) and Dis_l(x_rec) with the same statistics. Separate passes would whiten each
    # batch by its own statistics, hiding the very differences L_llike must see (a tiny
    # overfitting run then never improves its pixel error). Dis_l(x) is the target: detached.
    # With dis_sees = [prior] (the authors' LFW script) the reconstructions still pass through
    # D, for their Dis_l features, but their logits enter no loss.
    logits, features = dis(torch.cat([x, x_rec, x_prior]), y.repeat(3, 1), _repeat(labelled, 3), dis_l=cfg.dis_l)
    l_real, l_rec, l_prior = logits.chunk(3)
    f_real, f_rec, _ = features.chunk(3)
    fakes = [{"recon": l_rec, "prior": l_prior}[name] for name in cfg.dis_sees]

    l_prior_loss = kl_prior(mu, logvar)
    l_llike = gaussian_nll(f_real.detach(), f_rec)  # learned similarity on Dis_l
    l_dis = discriminator_loss(l_real, *fakes)  # -L_GAN
    l_gen = generator_loss(*fakes, saturating=cfg.generator == "saturating")  # the decoder's terms of L_GAN
    train_dis, train_dec_gan = _equilibrium_gates(l_real, torch.cat(fakes), cfg)

    # Enc: L_prior + L_llike; Dec's share of the same backward is d L_llike / d Dec (weighted by gamma below)
    enc_params, dec_params = _params(enc), _params(dec)
    shared = torch.autograd.grad(scale(l_prior_loss + l_llike), enc_params + dec_params, retain_graph=True)
    enc_grads, dec_llike = shared[: len(enc_params)], shared[len(enc_params):]
    dec_grads = tuple(cfg.gamma * g for g in dec_llike)
    if train_dec_gan:
        dec_gan = torch.autograd.grad(scale(l_gen), dec_params, retain_graph=True)
        dec_grads = tuple(a + b for a, b in zip(dec_grads, dec_gan))
    dis_grads = _grad(l_dis, dis, scale, retain=False) if train_dis else None

    real_bce, fake_bce = bce_of(l_real, torch.cat(fakes))
    return StepResult(
        grads={"encoder": enc_grads, "decoder": dec_grads, "discriminator": dis_grads},
        logs={
            "E/prior": _item(l_prior_loss), "E/llike": _item(l_llike), "G/gan": _item(l_gen), "D/gan": _item(l_dis),
            "D/real_bce": real_bce, "D/fake_bce": fake_bce,
            "D/trained": float(train_dis), "G/gan_trained": float(train_dec_gan),
        },
    )


def vae_step(nets: dict[str, nn.Module], x, y, noise: Noise, cfg: LossConfig, scale: Callable = lambda t: t) -> StepResult:
    """The conditional VAE baseline: pixel-wise Gaussian likelihood."""
    enc, dec = nets["encoder"], nets["decoder"]
    mu, logvar = enc(x, y, noise.labelled)
    x_rec = dec(mu + (0.5 * logvar).exp() * noise.eps, y, noise.labelled)
    l_prior_loss = kl_prior(mu, logvar)
    l_pixel = gaussian_nll(x, x_rec, cfg.vae_pixel_sigma)
    enc_params, dec_params = _params(enc), _params(dec)
    grads = torch.autograd.grad(scale(l_prior_loss + l_pixel), enc_params + dec_params)
    return StepResult(
        grads={"encoder": grads[: len(enc_params)], "decoder": grads[len(enc_params):]},
        logs={"E/prior": _item(l_prior_loss), "G/pixel": _item(l_pixel)},
    )


def gan_step(nets: dict[str, nn.Module], x, y, noise: Noise, cfg: LossConfig, scale: Callable = lambda t: t) -> StepResult:
    """The conditional GAN baseline (same decoder and discriminator, no encoder)."""
    dec, dis = nets["decoder"], nets["discriminator"]
    x_prior = dec(noise.z_prior, y, noise.labelled)
    logits, _ = dis(torch.cat([x, x_prior]), y.repeat(2, 1), _repeat(noise.labelled, 2))  # one batch, as in vaegan_step
    l_real, l_fake = logits.chunk(2)
    l_dis = discriminator_loss(l_real, l_fake)
    l_gen = generator_loss(l_fake, saturating=cfg.generator == "saturating")
    train_dis, train_gen = _equilibrium_gates(l_real, l_fake, cfg)
    dec_grads = _grad(l_gen, dec, scale, retain=True) if train_gen else None
    dis_grads = _grad(l_dis, dis, scale, retain=False) if train_dis else None
    real_bce, fake_bce = bce_of(l_real, l_fake)
    return StepResult(
        grads={"decoder": dec_grads, "discriminator": dis_grads},
        logs={"G/gan": _item(l_gen), "D/gan": _item(l_dis), "D/real_bce": real_bce, "D/fake_bce": fake_bce,
              "D/trained": float(train_dis), "G/gan_trained": float(train_gen)},
    )


STEPS = {"vaegan": vaegan_step, "vae": vae_step, "gan": gan_step}


def _repeat(labelled: torch.Tensor | None, times: int) -> torch.Tensor | None:
    return None if labelled is None else labelled.repeat(times)


def _equilibrium_gates(real_logits: torch.Tensor, fake_logits: torch.Tensor, cfg: LossConfig) -> tuple[bool, bool]:
    """Equilibrium gating (a stabiliser of public VAE/GAN reimplementations, e.g.
    lucabergamini/VAEGAN-PYTORCH): pause D while it is clearly winning (a BCE below
    equilibrium - margin) and pause the decoder's GAN term while D is clearly losing
    (above equilibrium + margin); if both would pause, train both. Off when equilibrium is None."""
    if cfg.equilibrium is None:
        return True, True
    real_bce, fake_bce = bce_of(real_logits, fake_logits)
    low, high = cfg.equilibrium - cfg.margin, cfg.equilibrium + cfg.margin
    train_dis = not (real_bce < low or fake_bce < low)
    train_gen = not (real_bce > high or fake_bce > high)
    if not (train_dis or train_gen):
        return True, True
    return train_dis, train_gen
