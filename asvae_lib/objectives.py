"""The objectives of the paper, as losses to minimise, for one minibatch ``x``.

* ``"vae"``: the negative ELBO (1).
* ``"ali"``: ALI (3), one joint discriminator (the ``f`` network, fed ALI's pairs).
* ``"asvae-r"``, ``"asvae-g"``, ``"asvae"``: the x-half, the z-half, or both halves
  of the reparametrised cumulative bound (11), with the discriminators of (5)
  and (6). ``kl_weight`` is the weight of the ELBO's ``KL(q_phi(z|x) || p(z))`` on
  the x-side, which the paper's text leaves uncertain (1: the x-half is ``L_x``
  at the optimal ``f``; 0: the paper's letter) -- see chapter 4.

The game (12) alternates :func:`discriminator_loss` (for psi, psi') and
:func:`generator_loss` (for theta, phi).
"""
import math

import torch
import torch.nn.functional as F

from . import pairs
from .density_ratio import logistic_objective

METHODS = ("vae", "ali", "asvae-r", "asvae-g", "asvae")


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    return method


def _schemes(method: str):
    """(discriminator, pair sampler) couples a method trains."""
    return {"vae": [], "ali": [("f", pairs.ali_pairs)], "asvae-r": [("f", pairs.f_pairs)],
            "asvae-g": [("h", pairs.h_pairs)], "asvae": [("f", pairs.f_pairs), ("h", pairs.h_pairs)]}[method]


def discriminator_loss(model, x: torch.Tensor, method: str) -> dict:
    """Minus the objective (4) for each discriminator the method uses, on pairs drawn
    as (3), (5) or (6) with the encoder and decoder held fixed."""
    losses = {}
    for name, scheme in _schemes(check_method(method)):
        with torch.no_grad():
            pos, neg = scheme(x, model.sample_prior(len(x)), model.encoder.rsample, model.decoder.rsample)
        disc = getattr(model, name)
        losses[f"loss_{name}"] = -logistic_objective(disc(*pos), disc(*neg))
    return losses


def prior_log_prob(z: torch.Tensor) -> torch.Tensor:
    """``log p(z)`` for the prior ``N(0, I)``."""
    return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


def x_half(model, x: torch.Tensor, kl_weight: float = 1.0) -> torch.Tensor:
    """``E_{x~q, eps}[log p_theta(x|z_eps) - f(x, z_eps)] - kl_weight * E KL(q_phi(z|x) || p(z))``.
    The KL is estimated with the same sample, ``log q_phi(z|x) - log p(z)``, which works with flows."""
    z, log_q = model.encoder.rsample_with_log_prob(x)
    log_prior = prior_log_prob(z)
    value = model.decoder.log_prob(x, z) - model.f(x, z)
    if kl_weight:
        value = value - kl_weight * (log_q - log_prior)
    return value.mean()


def z_half(model, n: int) -> torch.Tensor:
    """``E_{z~p, eps}[log q_phi(z|x_eps) - h(x_eps, z)]`` with ``x_eps`` the decoder's reparametrised draw."""
    z = model.sample_prior(n)
    x = model.decoder.rsample(z)
    return (model.encoder.log_prob(z, x) - model.h(x, z)).mean()


def elbo(model, x: torch.Tensor) -> torch.Tensor:
    """(1), one-sample estimate: ``log p_theta(x|z) + log p(z) - log q_phi(z|x)``, ``z ~ q_phi(z|x)``."""
    z, log_q = model.encoder.rsample_with_log_prob(x)
    log_prior = prior_log_prob(z)
    return (model.decoder.log_prob(x, z) + log_prior - log_q).mean()


def generator_loss(model, x: torch.Tensor, method: str, kl_weight: float = 1.0) -> torch.Tensor:
    """The loss theta and phi minimise at one step of the game (12)."""
    check_method(method)
    if method == "vae":
        return -elbo(model, x)
    if method == "ali":
        # the encoder and decoder fool ALI's discriminator: swapped labels (non-saturating form)
        (xq, zq), (xp, zp) = pairs.ali_pairs(x, model.sample_prior(len(x)), model.encoder.rsample, model.decoder.rsample)
        return -(F.logsigmoid(-model.f(xq, zq)).mean() + F.logsigmoid(model.f(xp, zp)).mean())
    value = 0.0
    if method in ("asvae-r", "asvae"):
        value = value + x_half(model, x, kl_weight)
    if method in ("asvae-g", "asvae"):
        value = value + z_half(model, len(x))
    return -value


@torch.no_grad()
def reconstruction_losses(model, x: torch.Tensor) -> dict:
    """The validation losses early stopping watches: how badly x is reconstructed
    through the encoder (``-log p_theta(x|z)``, ``z ~ q_phi(z|x)``) and z through the
    decoder (``-log q_phi(z|x)``, ``x ~ p_theta(x|z)``), plus the squared error of x."""
    z = model.encoder.rsample(x)
    prior_z = model.sample_prior(len(x))
    return {"rec_x": -model.decoder.log_prob(x, z).mean().item(),
            "rec_z": -model.encoder.log_prob(prior_z, model.decoder.rsample(prior_z)).mean().item(),
            "mse_x": ((model.decoder.mean(z) - x) ** 2).sum(-1).mean().item()}
