"""The objectives of the paper, as losses to minimise, for one minibatch ``x``.

* ``"vae"``: the negative ELBO (1).
* ``"ali"``: ALI (3), one joint discriminator (the ``f`` network, fed ALI's pairs).
* ``"asvae-r"``, ``"asvae-g"``, ``"asvae"``: the x-half, the z-half, or both halves
  of the reparametrised cumulative bound (11), with the discriminators of (5)
  and (6). ``kl_weight`` is the weight of the ELBO's ``KL(q_phi(z|x) || p(z))`` on
  the x-side, which the paper's text leaves uncertain (1: the x-half is ``L_x``
  at the optimal ``f``; 0: the literal "log p_theta(x|z) - f") -- see chapter 4.
  ``rec_z_to_decoder=False`` stops the z-side reconstruction ``log q_phi(z|x_eps)``
  from training the decoder (an ablation of chapter 6).
* ``"asvae-pathwise"``: NOT the paper's objective, the book's own variant (chapter 4
  derives it). A surrogate whose gradient, at the optimal discriminators, is the
  exact gradient of the symmetric bound ``L_x + L_z`` (8)+(9): the marginal terms
  reach the networks through generated samples, with a third, ALI-type joint
  discriminator ``g`` for the decoder's side (:func:`pathwise_surrogate`).

The game (12) alternates :func:`discriminator_loss` (for psi, psi') and
:func:`generator_loss` (for theta, phi). The paper's typeset (12) was lost, and its
sentence reads two ways (``READINGS``; chapter 4 simulates both, chapter 6 trains both):

* reading ``"A"``: theta and phi ascend (11) only; the discriminators ascend (5), (6);
* reading ``"B"``, the saddle, as a GAN is written: theta and phi also play against the
  discriminators through the samples inside the pairs of (5) and (6), in the
  non-saturating form (swapped labels), with weight ``lam`` (:func:`fooling_loss`).
  At ``lam = 0`` reading B is reading A.

**One draw per network and input.** Each loss draws the samples it needs afresh, unless it is
given a :class:`StepDraws`: then every loss of one step that asks the encoder for the code of
the same batch (or the decoder for the data of the same codes) gets the same sample. The
discriminators' pairs of (5) and (6), the halves of (11) and reading B's fooling losses then
share four draws, ``z_eps ~ q_phi(z|x)``, ``x_eps ~ p_theta(x|z)`` and the codes and data of
those, instead of drawing up to fourteen. Each loss is the same estimate in expectation; the
draws of one step are no longer independent between the losses (the trainer's ``share_draws``).
"""
import math

import torch

from . import pairs
from .density_ratio import logistic_objective
from .gaussians import normal_log_prob

METHODS = ("vae", "ali", "asvae-r", "asvae-g", "asvae", "asvae-pathwise")
READINGS = ("A", "B")
SADDLE_METHODS = ("asvae-r", "asvae-g", "asvae")   # the methods of (11), which reading B applies to
EXP_CLIP = 4.0   # exp(f) is continued linearly above exp(4) = 55 (see clipped_exp)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    return method


def check_reading(reading: str, method: str) -> str:
    if reading not in READINGS:
        raise ValueError(f"unknown reading {reading!r} of the game (12); choose one of {READINGS}")
    if reading == "B" and method not in SADDLE_METHODS:
        raise ValueError(f"reading 'B' of (12) is a game of (11): it applies to {SADDLE_METHODS}, not {method!r}")
    return reading


def _schemes(method: str):
    """(discriminator, pair sampler) couples a method trains."""
    return {"vae": [], "ali": [("f", pairs.ali_pairs)], "asvae-r": [("f", pairs.f_pairs)],
            "asvae-g": [("h", pairs.h_pairs)], "asvae": [("f", pairs.f_pairs), ("h", pairs.h_pairs)],
            "asvae-pathwise": [("f", pairs.f_pairs), ("h", pairs.h_pairs), ("g", pairs.ali_pairs)]}[method]


class StepDraws:
    """The samples of one step of the game, one per network and input, for every loss of the step.

    ``encode(v)`` is a draw of ``q_phi(z|v)``, ``decode(z)`` one of ``p_theta(x|z)``, and ``z`` the
    step's prior codes; asked again for the same tensor (the same object), each returns the same
    draw. The draws carry gradients: the discriminators' loss detaches its pairs, theta and phi's
    losses train through them. Draw it before the discriminators' step and use it for that step and
    the generator's step that follows (the encoder and decoder do not change in between)."""

    def __init__(self, model, x: torch.Tensor):
        self.model, self.z = model, model.sample_prior(len(x))
        self._codes, self._data = {}, {}          # id(input) -> (input, draw[, log-density])

    def encode_with_log_prob(self, v: torch.Tensor):
        """``(z, log q_phi(z|v))`` for ``z ~ q_phi(z|v)``, drawn once for ``v``."""
        if id(v) not in self._codes:
            self._codes[id(v)] = (v, *self.model.encoder.rsample_with_log_prob(v))
        return self._codes[id(v)][1:]

    def encode(self, v: torch.Tensor) -> torch.Tensor:
        return self.encode_with_log_prob(v)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``x ~ p_theta(x|z)``, drawn once for ``z``."""
        if id(z) not in self._data:
            self._data[id(z)] = (z, self.model.decoder.rsample(z))
        return self._data[id(z)][1]


def _pairs(scheme, model, x: torch.Tensor, draws: "StepDraws | None"):
    """A scheme's positive and negative pairs: from fresh draws, or from the step's ``draws``."""
    if draws is None:
        return scheme(x, model.sample_prior(len(x)), model.encoder.rsample, model.decoder.rsample)
    return scheme(x, draws.z, draws.encode, draws.decode)


def discriminator_loss(model, x: torch.Tensor, method: str, draws: StepDraws | None = None) -> dict:
    """Minus the objective (4) for each discriminator the method uses, on pairs drawn
    as (3), (5) or (6) with the encoder and decoder held fixed (fresh, or the step's ``draws``)."""
    losses = {}
    for name, scheme in _schemes(check_method(method)):
        with torch.set_grad_enabled(draws is not None and torch.is_grad_enabled()):   # the draws keep theirs
            pos, neg = _pairs(scheme, model, x, draws)
        pos, neg = (tuple(t.detach() for t in pair) for pair in (pos, neg))
        disc = getattr(model, name, None)
        if disc is None:
            raise ValueError(f"{method!r} needs a joint discriminator {name!r}: build the model with "
                             f"joint_discriminator=True (models.mlp_asvae)")
        losses[f"loss_{name}"] = -logistic_objective(disc(*pos), disc(*neg))
    return losses


def fooling_loss(disc, pos: tuple, neg: tuple) -> torch.Tensor:
    """The non-saturating loss of the players a discriminator judges: minus (4) with the
    labels swapped, ``-(mean log sigma(d(neg)) + mean log(1 - sigma(d(pos))))``. Its gradient
    reaches the encoder and decoder through the samples inside ``pos`` and ``neg``."""
    logit_pos = disc(*pos)          # positives first: the order of dropout draws ALI's loss has always had
    return -logistic_objective(disc(*neg), logit_pos)


def saddle_loss(model, x: torch.Tensor, method: str, draws: StepDraws | None = None) -> torch.Tensor:
    """Reading B's extra loss for theta and phi: :func:`fooling_loss` of each discriminator the
    method uses, on fresh pairs (5) and/or (6). The decoder is reached through ``x_eps`` in
    f's negatives, the encoder through the encoded data in h's negatives (and both through
    the other samples of the pairs)."""
    loss = 0.0
    for name, scheme in _schemes(method):
        loss = loss + fooling_loss(getattr(model, name), *_pairs(scheme, model, x, draws))
    return loss


def prior_log_prob(z: torch.Tensor) -> torch.Tensor:
    """``log p(z)`` for the prior ``N(0, I)``."""
    return normal_log_prob(z, 0.0, torch.zeros_like(z))


def x_half(model, x: torch.Tensor, kl_weight: float = 1.0, draws: StepDraws | None = None) -> torch.Tensor:
    """``E_{x~q, eps}[log p_theta(x|z_eps) - f(x, z_eps)] - kl_weight * E KL(q_phi(z|x) || p(z))``.
    The KL is estimated with the same sample, ``log q_phi(z|x) - log p(z)``, which works with flows."""
    z, log_q = model.encoder.rsample_with_log_prob(x) if draws is None else draws.encode_with_log_prob(x)
    log_prior = prior_log_prob(z)
    value = model.decoder.log_prob(x, z) - model.f(x, z)
    if kl_weight:
        value = value - kl_weight * (log_q - log_prior)
    return value.mean()


def z_half(model, n: int, rec_z_to_decoder: bool = True, draws: StepDraws | None = None) -> torch.Tensor:
    """``E_{z~p, eps}[log q_phi(z|x_eps) - h(x_eps, z)]`` with ``x_eps`` the decoder's reparametrised draw.
    With ``rec_z_to_decoder=False`` the reconstruction term sees ``x_eps`` detached: it trains
    the encoder only, and the decoder is moved by the ``h``-term alone."""
    z = model.sample_prior(n) if draws is None else draws.z
    x = model.decoder.rsample(z) if draws is None else draws.decode(z)
    x_rec = x if rec_z_to_decoder else x.detach()
    return (model.encoder.log_prob(z, x_rec) - model.h(x, z)).mean()


def clipped_exp(t: torch.Tensor, clip: float = EXP_CLIP) -> torch.Tensor:
    """``exp(t)`` up to ``t = clip``, continued by its tangent line above it, so that a
    discriminator's occasional large logit cannot blow up the surrogate's gradient."""
    return torch.where(t <= clip, t.clamp(max=clip).exp(), math.exp(clip) * (1 + t - clip))


def pathwise_surrogate(model, x: torch.Tensor, clip: float = EXP_CLIP) -> torch.Tensor:
    """The book's gradient-correct surrogate of ``L_x + L_z`` (chapter 4; not the paper's (11)).

    With the discriminators frozen (their parameters are not stepped by this loss) and
    ``x_eps``, ``z_eps`` reparametrised draws of the decoder and the encoder::

        ELBO(x)                                        # (1): gradient of L_VAE
        + E_p log q_phi(z | stopgrad x_eps)             # the phi-part of -KL(p_theta(x,z) || q_phi(x,z))
        + E g(x_eps, z)                                 # its theta-part: g* = log q_phi(x,z) - log p_theta(x,z)
        + E exp f(x_eps, .)                             # -KL(q(x) || p_theta(x)) in theta, f* = log q/p_theta
        + E exp h(., z_eps)                             # E_p log q_phi(z) in phi, h* = log p(z)/q_phi(z)

    Each line's gradient equals the exact gradient of the term it stands for when the
    discriminator is optimal (``grad E_q log p_theta = grad E exp f*(x_eps)`` because
    ``q / p_theta = exp f*``; likewise for ``h``; and a reparametrised joint's KL has the
    pathwise gradient of minus its log ratio). The exponentials use :func:`clipped_exp`.
    """
    n = len(x)
    z = model.sample_prior(n)
    x_fake = model.decoder.rsample(z)                  # x_eps, carries the decoder's gradient
    z_real = model.encoder.rsample(x)                  # z_eps, carries the encoder's gradient
    value = elbo(model, x)
    value = value + model.encoder.log_prob(z, x_fake.detach()).mean()
    value = value + model.g(x_fake, z).mean()
    value = value + clipped_exp(model.f(x_fake, model.encoder.rsample(x_fake).detach()), clip).mean()
    value = value + clipped_exp(model.h(model.decoder.rsample(z_real).detach(), z_real), clip).mean()
    return value


def elbo(model, x: torch.Tensor) -> torch.Tensor:
    """(1), one-sample estimate: ``log p_theta(x|z) + log p(z) - log q_phi(z|x)``, ``z ~ q_phi(z|x)``."""
    z, log_q = model.encoder.rsample_with_log_prob(x)
    log_prior = prior_log_prob(z)
    return (model.decoder.log_prob(x, z) + log_prior - log_q).mean()


def generator_loss(model, x: torch.Tensor, method: str, kl_weight: float = 1.0,
                   rec_z_to_decoder: bool = True, reading: str = "A", lam: float = 1.0,
                   draws: StepDraws | None = None) -> torch.Tensor:
    """The loss theta and phi minimise at one step of the game (12): minus (1), ALI's
    swapped-label loss, minus (11) (its x-half, z-half or both), or minus the book's
    pathwise surrogate. Under ``reading="B"`` the methods of (11) add ``lam`` times
    :func:`saddle_loss` (at ``lam = 0`` nothing is added, and no random number drawn).
    ``draws`` (:class:`StepDraws`, for the methods of (11)) shares the step's samples."""
    check_method(method)
    check_reading(reading, method)
    if method == "vae":
        return -elbo(model, x)
    if method == "asvae-pathwise":
        return -pathwise_surrogate(model, x)
    if method == "ali":
        # the encoder and decoder fool ALI's discriminator: swapped labels (non-saturating form)
        pos, neg = pairs.ali_pairs(x, model.sample_prior(len(x)), model.encoder.rsample, model.decoder.rsample)
        return fooling_loss(model.f, pos, neg)
    value = 0.0
    if method in ("asvae-r", "asvae"):
        value = value + x_half(model, x, kl_weight, draws)
    if method in ("asvae-g", "asvae"):
        value = value + z_half(model, len(x), rec_z_to_decoder, draws)
    loss = -value
    if reading == "B" and lam:
        loss = loss + lam * saddle_loss(model, x, method, draws)
    return loss


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
