"""One training step's gradients for each model kind, each network receiving only the
gradients of its own loss (Larsen et al. 2016, Algorithm 1; signs derived in losses.py):

    vaegan  Enc: L_prior + L_llike      Dec: gamma * L_llike + L_GAN(gen)     Dis: -L_GAN
            (optional, off in the paper: a weight on L_prior, and a pixel-space term
            pixel_weight * L_pixel in both Enc's and Dec's losses)
    vae     Enc, Dec: L_prior + pixel-wise Gaussian NLL
    gan     Dec: L_GAN(gen)             Dis: -L_GAN

One forward pass is shared by all losses. The VAE/GAN step then does each piece of backward
work once (``vaegan_step``; the straightforward per-loss version it is tested against is
``attrgan.nets.reference_steps``). In units of one network's forward pass over B images
(E, Dec, D), it costs 3E + 7Dec + 15D against 3E + 10Dec + 15D for the reference and
3E + 6Dec + 9D for the usual shortcut of one backward over the summed losses (which mixes
every loss into every network). 15D is the least an exact step can do here: D's batch norm
couples its 3B rows, so each of the three different upstream gradients (L_llike for the
encoder, gamma * L_llike + L_gen for the decoder, -L_GAN for D's weights) needs its own pass
down through all of D's rows.

Batch norm semantics (kept from the reference, and why): D normalises real, reconstructed
and prior images together in one 3B batch, so Dis_l(x) and Dis_l(x_rec) are whitened by the
same statistics (separate passes would whiten each by its own, hiding the differences
L_llike must see). The decoder normalises x_rec's batch and x_p's batch separately (two
calls), so a sample from the prior is decoded exactly as at generation time, and the
encoder's share needs an input-only pass over the x_rec branch alone (B rows, not 2B).

Switches (attrgan.config.LossConfig): ``dis_l`` (Dis_l after or before the 4th conv's BN and
ReLU), ``dis_sees`` (which fakes enter L_GAN: reconstructions and/or prior samples),
``generator`` (non-saturating or the authors' saturating decoder term), ``r1_weight`` (an R1
penalty in D's loss on the updates the trainer marks with ``r1=True``; :func:`r1_grads`),
``dis_augment`` (D's inputs through differentiable random transforms, the noise's draw;
``attrgan.nets.dis_augment``: the step's passes are unchanged, the fakes' upstream gradients
come back through the transforms). Every
step takes ``labelled`` ([B] of 0/1, None = all labelled): the extra FC input of models trained on
unlabelled images too.

With ``model.dis_norm: spectral`` D has no batch norm, so its rows no longer couple: L_llike's
gradient on x_p is then zero, and an exact step could walk D's backward over the x_rec rows only
(2B of the 3B rows for L_llike) or batch its passes together. This step keeps one code path for
both norms: it does the same passes, each a batch-norm layer cheaper (benchmarks/train_step.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from attrgan.config import LossConfig
from attrgan.nets.dis_augment import AugmentDraw, augment_for_dis
from attrgan.nets.losses import bce_of, discriminator_loss, gaussian_nll, generator_loss, kl_prior

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
    dis_augment: AugmentDraw | None = None  # the transforms of D's inputs (loss.dis_augment); None = off


@dataclass
class VAEGANLosses:
    prior: torch.Tensor  # L_prior
    llike: torch.Tensor  # L_llike on Dis_l
    generator: torch.Tensor  # the decoder's L_GAN terms
    discriminator: torch.Tensor  # -L_GAN
    real_logits: torch.Tensor
    fake_logits: torch.Tensor  # the fakes that enter L_GAN (cfg.dis_sees)
    pixel: torch.Tensor | None = None  # pixel-space NLL of the reconstructions (cfg.pixel_weight > 0)

    def logs(self, train_dis: bool, train_dec_gan: bool) -> dict[str, float]:
        real_bce, fake_bce = bce_of(self.real_logits, self.fake_logits)
        pixel = {} if self.pixel is None else {"E/pixel": _item(self.pixel)}
        return {"E/prior": _item(self.prior), "E/llike": _item(self.llike), **pixel, "G/gan": _item(self.generator),
                "D/gan": _item(self.discriminator), "D/real_bce": real_bce, "D/fake_bce": fake_bce,
                "D/trained": float(train_dis), "G/gan_trained": float(train_dec_gan)}


def gan_losses(mu, logvar, logits: torch.Tensor, features: torch.Tensor, cfg: LossConfig,
               x: torch.Tensor | None = None, x_rec: torch.Tensor | None = None) -> VAEGANLosses:
    """The VAE/GAN losses from D's outputs over the batch [x, x_rec, x_prior]. Dis_l(x) is
    L_llike's target: detached. With dis_sees = [prior] (the authors' LFW script) the
    reconstructions still pass through D, for their Dis_l features, but their logits enter no loss.
    With ``cfg.pixel_weight`` > 0, ``x`` and ``x_rec`` give the (unweighted) pixel term."""
    l_real, l_rec, l_prior = logits.chunk(3)
    f_real, f_rec, _ = features.chunk(3)
    fakes = [{"recon": l_rec, "prior": l_prior}[name] for name in cfg.dis_sees]
    return VAEGANLosses(
        prior=kl_prior(mu, logvar), llike=gaussian_nll(f_real.detach(), f_rec),
        generator=generator_loss(*fakes, saturating=cfg.generator == "saturating"),
        discriminator=discriminator_loss(l_real, *fakes), real_logits=l_real, fake_logits=torch.cat(fakes),
        pixel=gaussian_nll(x, x_rec) if cfg.pixel_weight else None)


def _item(t: torch.Tensor) -> float:
    return t.detach().item()


def trainable(net: nn.Module) -> tuple[torch.Tensor, ...]:
    """The parameters a network's optimizer updates, in ``parameters()`` order."""
    return tuple(p for p in net.parameters() if p.requires_grad)


def r1_grads(dis: nn.Module, x: torch.Tensor, y: torch.Tensor, labelled: torch.Tensor | None, cfg: LossConfig,
             scale: Callable = lambda t: t,
             augment: AugmentDraw | None = None) -> tuple[tuple[torch.Tensor, ...], float]:
    """D's gradient of the lazy R1 penalty r1_every * r1_weight / 2 * E_x |grad_x D(x)|^2 on the
    real images (Mescheder et al. 2018; StyleGAN2's lazy form), and the penalty E|grad|^2.

    A forward pass of its own over the B real images, as StyleGAN2 does: with the paper's
    batch-norm D, the gradient is that of the batch's summed logit under the real batch's
    statistics. D's buffers (BN running statistics, the spectral norm's power-iteration
    vectors) are restored afterwards, so the step's own forward pass alone moves them. With
    ``augment`` D sees the real images through those transforms, and the gradient is taken with
    respect to the images before them."""
    saved = [buffer.clone() for buffer in dis.buffers()]
    x = x.detach().requires_grad_()
    logits, _ = dis(augment_for_dis(x, augment), y, labelled)
    (grad_x,) = torch.autograd.grad(logits.float().sum(), x, create_graph=True)
    penalty = grad_x.float().pow(2).flatten(1).sum(1).mean()
    grads = torch.autograd.grad(scale(0.5 * cfg.r1_weight * cfg.r1_every * penalty), trainable(dis),
                                materialize_grads=True)  # the logit's bias does not move grad_x: zero
    with torch.no_grad():
        for buffer, value in zip(dis.buffers(), saved):
            buffer.copy_(value)
    return grads, _item(penalty)


def with_r1(dis_grads, dis: nn.Module, x, y, noise: Noise, cfg: LossConfig, r1: bool, scale: Callable,
            logs: dict) -> tuple | None:
    """D's gradients plus the R1 penalty's, on the updates where D trains and ``r1`` is set
    (logged as ``D/r1``); unchanged otherwise."""
    if dis_grads is None or not r1 or not cfg.r1_weight:
        return dis_grads
    penalty_grads, logs["D/r1"] = r1_grads(dis, x, y, noise.labelled, cfg, scale, noise.dis_augment)
    return tuple(g + p for g, p in zip(dis_grads, penalty_grads))


def vaegan_step(nets: dict[str, nn.Module], x, y, noise: Noise, cfg: LossConfig, scale: Callable = lambda t: t,
                r1: bool = False) -> StepResult:
    """The conditional VAE/GAN step, each piece of backward work done once (module docstring)."""
    enc, dec, dis = nets["encoder"], nets["decoder"], nets["discriminator"]
    labelled = noise.labelled
    mu, logvar = enc(x, y, labelled)
    z = mu + (0.5 * logvar).exp() * noise.eps  # reparameterisation
    x_rec, x_prior = dec(z, y, labelled), dec(noise.z_prior, y, labelled)
    # D reads a detached copy of the fakes: its backward passes stop there, and the decoder
    # is then walked once with the sum of the upstream gradients it must receive.
    fakes = torch.cat([x_rec, x_prior]).detach().requires_grad_()
    logits, features = dis(augment_for_dis(torch.cat([x, fakes]), noise.dis_augment), y.repeat(3, 1),
                           repeat_flags(labelled, 3), dis_l=cfg.dis_l, dis_l_layer=cfg.dis_l_layer)
    losses = gan_losses(mu, logvar, logits, features, cfg, x, fakes[: len(x)])
    train_dis, train_dec_gan = equilibrium_gates(losses.real_logits, losses.fake_logits, cfg)

    # Through D, input only: dL_llike/d(x_rec, x_p) (x_p too: D's batch norm couples the rows),
    # then dL_gen/d(x_rec, x_p); then D's weights from -L_GAN alone.
    (llike_up,) = torch.autograd.grad(scale(losses.llike), fakes, retain_graph=True)
    decoder_up, encoder_up = cfg.gamma * llike_up, llike_up[: len(x)]
    if losses.pixel is not None:  # pixel_weight * L_pixel: the same upstream for the encoder and the decoder
        (pixel_up,) = torch.autograd.grad(scale(cfg.pixel_weight * losses.pixel), fakes)  # a graph apart from D's
        decoder_up, encoder_up = decoder_up + pixel_up, encoder_up + pixel_up[: len(x)]
    if train_dec_gan:
        (gan_up,) = torch.autograd.grad(scale(losses.generator), fakes, retain_graph=train_dis)
        decoder_up = decoder_up + gan_up
    dis_grads = torch.autograd.grad(scale(losses.discriminator), trainable(dis)) if train_dis else None
    # Encoder: L_llike (and the pixel term) reach it through z (an input-only pass over the x_rec
    # branch), L_prior directly.
    (llike_z,) = torch.autograd.grad(x_rec, z, grad_outputs=encoder_up, retain_graph=True)
    enc_grads = torch.autograd.grad([scale(cfg.prior_weight * losses.prior), z], trainable(enc),
                                    grad_outputs=[None, llike_z])
    # Decoder: one backward over both branches with gamma * L_llike's and L_gen's upstreams summed.
    dec_grads = torch.autograd.grad([x_rec, x_prior], trainable(dec), grad_outputs=list(decoder_up.split(len(x))))
    logs = losses.logs(train_dis, train_dec_gan)
    dis_grads = with_r1(dis_grads, dis, x, y, noise, cfg, r1, scale, logs)
    return StepResult({"encoder": enc_grads, "decoder": dec_grads, "discriminator": dis_grads}, logs)


def vae_step(nets: dict[str, nn.Module], x, y, noise: Noise, cfg: LossConfig, scale: Callable = lambda t: t,
             r1: bool = False) -> StepResult:
    """The conditional VAE baseline: pixel-wise Gaussian likelihood (no D: ``r1`` is unused)."""
    enc, dec = nets["encoder"], nets["decoder"]
    mu, logvar = enc(x, y, noise.labelled)
    x_rec = dec(mu + (0.5 * logvar).exp() * noise.eps, y, noise.labelled)
    l_prior_loss = kl_prior(mu, logvar)
    l_pixel = gaussian_nll(x, x_rec, cfg.vae_pixel_sigma)
    enc_params, dec_params = trainable(enc), trainable(dec)
    grads = torch.autograd.grad(scale(l_prior_loss + l_pixel), enc_params + dec_params)
    return StepResult(
        grads={"encoder": grads[: len(enc_params)], "decoder": grads[len(enc_params):]},
        logs={"E/prior": _item(l_prior_loss), "G/pixel": _item(l_pixel)},
    )


def gan_step(nets: dict[str, nn.Module], x, y, noise: Noise, cfg: LossConfig, scale: Callable = lambda t: t,
             r1: bool = False) -> StepResult:
    """The conditional GAN baseline (same decoder and discriminator, no encoder)."""
    dec, dis = nets["decoder"], nets["discriminator"]
    x_prior = dec(noise.z_prior, y, noise.labelled)
    # one batch, as in vaegan_step
    logits, _ = dis(augment_for_dis(torch.cat([x, x_prior]), noise.dis_augment), y.repeat(2, 1),
                    repeat_flags(noise.labelled, 2))
    l_real, l_fake = logits.chunk(2)
    l_dis = discriminator_loss(l_real, l_fake)
    l_gen = generator_loss(l_fake, saturating=cfg.generator == "saturating")
    train_dis, train_gen = equilibrium_gates(l_real, l_fake, cfg)
    dec_grads = torch.autograd.grad(scale(l_gen), trainable(dec), retain_graph=True) if train_gen else None
    dis_grads = torch.autograd.grad(scale(l_dis), trainable(dis)) if train_dis else None
    real_bce, fake_bce = bce_of(l_real, l_fake)
    logs = {"G/gan": _item(l_gen), "D/gan": _item(l_dis), "D/real_bce": real_bce, "D/fake_bce": fake_bce,
            "D/trained": float(train_dis), "G/gan_trained": float(train_gen)}
    dis_grads = with_r1(dis_grads, dis, x, y, noise, cfg, r1, scale, logs)
    return StepResult(grads={"decoder": dec_grads, "discriminator": dis_grads}, logs=logs)


STEPS = {"vaegan": vaegan_step, "vae": vae_step, "gan": gan_step}


def repeat_flags(labelled: torch.Tensor | None, times: int) -> torch.Tensor | None:
    return None if labelled is None else labelled.repeat(times)


def equilibrium_gates(real_logits: torch.Tensor, fake_logits: torch.Tensor, cfg: LossConfig) -> tuple[bool, bool]:
    """Equilibrium gating (a stabiliser of public VAE/GAN reimplementations, e.g.
    lucabergamini/VAEGAN-PYTORCH): pause D while it is clearly winning (a BCE below
    equilibrium - margin) and pause the decoder's GAN term while D is clearly losing
    (above equilibrium + margin); if both would pause, train both. Off when equilibrium is None.

    ``gate_rule`` either (the public ports): D pauses when *either* BCE is low, so a D that wins
    on fakes while losing on real faces is frozen for good; both: D pauses only while both of
    its BCEs are low, and the decoder's GAN term only while both are high."""
    if cfg.equilibrium is None:
        return True, True
    real_bce, fake_bce = bce_of(real_logits, fake_logits)
    low, high = cfg.equilibrium - cfg.margin, cfg.equilibrium + cfg.margin
    side = any if cfg.gate_rule == "either" else all
    train_dis = not side(bce < low for bce in (real_bce, fake_bce))
    train_gen = not side(bce > high for bce in (real_bce, fake_bce))
    if not (train_dis or train_gen):
        return True, True
    return train_dis, train_gen
