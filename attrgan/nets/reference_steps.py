"""The straightforward VAE/GAN step: one ``autograd.grad`` call per loss over a shared
forward pass (the step attrgan trained with until the exact fast step in ``steps.py``).

It is kept as the reference that tests hold the fast step to (every network's gradient,
every loss variant) and that ``benchmarks/train_step.py`` times beside it. It does work
twice: the encoder and the decoder are each backpropagated for their own weighting of
L_llike, the decoder once more for its GAN term, and D's 3B batch is walked by each backward pass.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from attrgan.config import LossConfig
from attrgan.nets.dis_augment import augment_for_dis
from attrgan.nets.steps import Noise, StepResult, equilibrium_gates, gan_losses, repeat_flags, trainable, with_r1


def vaegan_step_reference(nets: dict[str, nn.Module], x, y, noise: Noise, cfg: LossConfig,
                          scale: Callable = lambda t: t, r1: bool = False) -> StepResult:
    """The conditional VAE/GAN step, three backward passes over one forward pass."""
    enc, dec, dis = nets["encoder"], nets["decoder"], nets["discriminator"]
    labelled = noise.labelled
    mu, logvar = enc(x, y, labelled)
    z = mu + (0.5 * logvar).exp() * noise.eps
    x_rec, x_prior = dec(z, y, labelled), dec(noise.z_prior, y, labelled)
    logits, features = dis(augment_for_dis(torch.cat([x, x_rec, x_prior]), noise.dis_augment), y.repeat(3, 1),
                           repeat_flags(labelled, 3), dis_l=cfg.dis_l, dis_l_layer=cfg.dis_l_layer)
    losses = gan_losses(mu, logvar, logits, features, cfg, x, x_rec)
    train_dis, train_dec_gan = equilibrium_gates(losses.real_logits, losses.fake_logits, cfg)

    enc_params, dec_params = trainable(enc), trainable(dec)
    pixel = 0.0 if losses.pixel is None else cfg.pixel_weight * losses.pixel
    enc_grads = torch.autograd.grad(scale(cfg.prior_weight * losses.prior + losses.llike + pixel), enc_params,
                                    retain_graph=True)
    dec_grads = torch.autograd.grad(scale(cfg.gamma * losses.llike + pixel), dec_params, retain_graph=True)
    if train_dec_gan:
        dec_gan = torch.autograd.grad(scale(losses.generator), dec_params, retain_graph=True)
        dec_grads = tuple(a + b for a, b in zip(dec_grads, dec_gan))
    dis_grads = torch.autograd.grad(scale(losses.discriminator), trainable(dis)) if train_dis else None
    logs = losses.logs(train_dis, train_dec_gan)
    dis_grads = with_r1(dis_grads, dis, x, y, noise, cfg, r1, scale, logs)
    return StepResult({"encoder": enc_grads, "decoder": dec_grads, "discriminator": dis_grads}, logs)
