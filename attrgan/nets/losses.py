"""The VAE/GAN losses as pure functions (per batch: summed over dimensions, averaged over samples).

Signs, derived once (design card; Larsen et al. 2016, eqs. 3, 8, 9 and Algorithm 1):

    L_GAN = log D(x) + log(1 - D(Dec(z_p))) + log(1 - D(Dec(Enc(x))))

The discriminator *maximises* L_GAN, so it minimises -L_GAN:
    -log D(x) - log(1 - D(x_p)) - log(1 - D(x_rec)),
which with D = sigmoid(l) is softplus(-l_x) + softplus(l_p) + softplus(l_rec), since
-log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l).

The decoder would minimise L_GAN's generator terms, log(1 - D(.)); we use the standard
non-saturating form instead: minimise -log D(x_p) - log D(x_rec) = softplus(-l_p) + softplus(-l_rec),
which has the same fixed point and strong gradients early in training. Pitfall: the paper's
Algorithm 1 writes the Dec update as descending on "-L_GAN" — correct only if L_GAN there is
read as a BCE *loss*; with L_GAN as defined above, a decoder that maximised log(1 - D(.))
would help the discriminator instead of fooling it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_prior(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """L_prior = KL(N(mu, sigma^2) || N(0, I)), summed over latent dimensions, batch mean."""
    mu, logvar = mu.float(), logvar.float()  # fp32 even under bf16 autocast: a sum of 128 terms
    return (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).sum(1).mean()


def gaussian_nll(target: torch.Tensor, prediction: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """-log N(target | prediction, sigma^2 I), summed over all but the batch dimension,
    batch mean, without the constant; used for L_llike on Dis_l features (sigma = 1, the
    paper's eq. 9) and for the `vae` baseline's pixel likelihood."""
    diff = (target.float() - prediction.float()).flatten(1)
    return (0.5 * diff.pow(2).sum(1) / sigma**2).mean()


def discriminator_loss(real_logits: torch.Tensor, *fake_logits: torch.Tensor) -> torch.Tensor:
    """-L_GAN for D: -log D(x) - sum_f log(1 - D(f)) = softplus(-l_real) + sum_f softplus(l_f), batch means."""
    loss = F.softplus(-real_logits.float()).mean()
    for logits in fake_logits:
        loss = loss + F.softplus(logits.float()).mean()
    return loss


SATURATING_OFFSET = 1e-3  # the authors' eps inside log(1 - D + eps)


def generator_loss(*fake_logits: torch.Tensor, saturating: bool = False) -> torch.Tensor:
    """The decoder's GAN terms, batch means summed over the fake sets f.

    Non-saturating (default): sum_f -log D(f) = sum_f softplus(-l_f).
    Saturating (the authors' code): sum_f log(1 - D(f) + 1e-3), with 1 - D(f) = sigmoid(-l_f);
    its gradient vanishes where D confidently rejects the fakes, hence the offset."""
    if saturating:
        return sum(torch.log(torch.sigmoid(-logits.float()) + SATURATING_OFFSET).mean() for logits in fake_logits)
    return sum(F.softplus(-logits.float()).mean() for logits in fake_logits)


def bce_of(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[float, float]:
    """Mean BCE of D on real and on fake samples, as used by equilibrium gating and logs."""
    real, fake = real_logits.detach().float(), fake_logits.detach().float()
    return F.softplus(-real).mean().item(), F.softplus(fake).mean().item()

