"""How the paper scores a trained model (section 5.1), in nats, bits and seconds.

* **NLL from the ELBO (1)**: ``-E log p(x)`` is at most ``-ELBO``; one sample of
  ``z ~ q_phi(z|x)`` per image.
* **Importance-weighted bound** (Burda et al., 2016): with ``k`` draws
  ``z_i ~ q_phi(z|x)`` and weights ``w_i = p_theta(x|z_i) p(z_i) / q_phi(z_i|x)``,
  ``log (1/k) sum_i w_i`` is a lower bound on ``log p(x)`` that tightens as ``k``
  grows (``k = 1`` is the ELBO). The flows need no inverse here: each ``z_i`` is
  drawn by the encoder, so its density comes with it.
* **Bits per dimension** for 8-bit images modelled as continuous after uniform
  dequantisation, ``y = (x + u) / 256``: the probability of the discrete image
  satisfies ``log P(x) >= E_u log p(y) - D log 256``, so the discrete NLL is at
  most the continuous one plus ``D log 256``; divide by ``D log 2`` for bits.
* **RMSE** of reconstructions, pixels in [0, 1]; **time per generated image**.
"""
import math
import time

import torch

from .objectives import prior_log_prob


@torch.no_grad()
def log_weights(model, x: torch.Tensor, k: int) -> torch.Tensor:
    """``log w_i = log p_theta(x|z_i) + log p(z_i) - log q_phi(z_i|x)``, shape ``(k, N)``."""
    xs = x.repeat(k, *([1] * (x.dim() - 1)))
    z, log_q = model.encoder.rsample_with_log_prob(xs)
    log_w = model.decoder.log_prob(xs, z) + prior_log_prob(z) - log_q
    return log_w.reshape(k, len(x))


@torch.no_grad()
def log_likelihood_bound(model, x: torch.Tensor, k: int = 1, batch_size: int = 500) -> torch.Tensor:
    """Per-image ``log (1/k) sum_i w_i`` (the ELBO when ``k = 1``), in nats, shape ``(N,)``."""
    was_training = model.training
    model.eval()
    out = []
    for chunk in x.split(max(batch_size // k, 1)):
        chunk = chunk.to(model.device)
        out.append((torch.logsumexp(log_weights(model, chunk, k), 0) - math.log(k)).cpu())
    model.train(was_training)
    return torch.cat(out)


def bits_per_dim(nll_nats: float, dim: int) -> float:
    """Continuous NLL of dequantised 8-bit data (in nats, for ``y`` in [0, 1)) ->
    an upper bound on the discrete NLL in bits per dimension."""
    return (nll_nats + dim * math.log(256)) / (dim * math.log(2))


@torch.no_grad()
def rmse(model, x: torch.Tensor, batch_size: int = 500) -> float:
    """Root-mean-square error of ``decoder mean(encoder draw(x))`` against ``x``, per pixel."""
    was_training = model.training
    model.eval()
    se = sum(((model.reconstruct(c.to(model.device)) - c.to(model.device)) ** 2).sum().item()
             for c in x.split(batch_size))
    model.train(was_training)
    return math.sqrt(se / x.numel())


@torch.no_grad()
def seconds_per_image(model, n: int = 1000, batch_size: int = 500) -> float:
    """Wall-clock time to generate one image (prior draw + decoder mean), in batches."""
    model.sample(min(batch_size, n))                     # warm-up
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(0, n, batch_size):
        model.sample(min(batch_size, n - i))
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / n
