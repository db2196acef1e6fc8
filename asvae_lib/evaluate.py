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
* **Baselines and checks** for 8-bit images: the per-pixel Gaussian (:func:`pixel_gaussian`),
  whose discrete NLL is exact (:func:`discrete_nll`); :func:`check_bound` tests the
  inequality above on data, :func:`check_beats` whether a model beats a baseline, both
  on paired per-image values and their standard error.

:func:`score` puts them together for one trained model of Part III, with FID and the
Inception Score (:mod:`asvae_lib.image_metrics`) for colour images.
"""
import dataclasses
import math
import time

import torch
from tqdm.auto import tqdm

from . import data as datasets
from . import image_metrics
from .objectives import prior_log_prob
from .profile import smoke

PROGRESS_FROM = 100     # a bound over this many chunks or more (minutes on a CPU) shows a progress bar


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
    return log_likelihood_bounds(model, x, (k,), batch_size)[k]


@torch.no_grad()
def log_likelihood_bounds(model, x: torch.Tensor, ks, batch_size: int = 500) -> dict:
    """Per-image bounds at every ``k`` of ``ks`` from one set of ``K = max(ks)`` draws: the bound at
    ``k`` is the mean of :func:`log_likelihood_bound`'s ``log (1/k) sum_i w_i`` over the ``K / k``
    disjoint blocks of ``k`` draws (each ``k`` must divide ``K``). Each block is an independent
    ``k``-draw estimate, so the mean estimates the same bound, with less variance, at no extra cost."""
    big = max(ks)
    if any(big % k for k in ks):
        raise ValueError(f"every k of {tuple(ks)} must divide the largest, {big}")
    was_training = model.training
    model.eval()
    out = {k: [] for k in ks}
    chunks = x.split(max(batch_size // big, 1))
    for chunk in tqdm(chunks, desc=f"bounds at k = {', '.join(map(str, ks))}", mininterval=5.0,
                      disable=len(chunks) < PROGRESS_FROM):
        log_w = log_weights(model, chunk.to(model.device), big).cpu()                  # (K, n)
        for k in ks:
            blocks = log_w.reshape(big // k, k, -1)
            out[k].append((torch.logsumexp(blocks, 1) - math.log(k)).mean(0))
    model.train(was_training)
    return {k: torch.cat(v) for k, v in out.items()}


def bits_per_dim(nll_nats: float, dim: int) -> float:
    """Continuous NLL of dequantised 8-bit data (in nats, for ``y`` in [0, 1)) ->
    an upper bound on the discrete NLL in bits per dimension."""
    return (nll_nats + dim * math.log(256)) / (dim * math.log(2))


def pixel_gaussian(train: torch.Tensor, seed: int = 0) -> torch.distributions.Normal:
    """The per-pixel Gaussian baseline: the D values of ``y = (x + u) / 256`` independent,
    each ``N(mean, sd^2)`` with the mean and sd of the dequantised training images (the
    maximum-likelihood fit; float64). It knows each pixel's mean and spread and nothing else."""
    y = datasets.fixed_dequantize(train, seed).double()
    return torch.distributions.Normal(y.mean(0), y.std(0, correction=0))


def pixel_bernoulli_nll(train: torch.Tensor, binary: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The best model that ignores ``z`` on binarised digits: independent Bernoulli pixels at
    the dequantised training images' mean intensities (clamped to [1e-3, 1 - 1e-3]). Its NLL
    in nats per image of ``binary``, shape ``(N,)``; a model beats it only by using its code."""
    p = datasets.fixed_dequantize(train, seed).mean(0).clamp(1e-3, 1 - 1e-3)
    return -(binary * p.log() + (1 - binary) * (1 - p).log()).sum(1)


def discrete_nll(density: torch.distributions.Normal, x: torch.Tensor) -> torch.Tensor:
    """Exact ``-log P(x)`` in nats per image, shape ``(N,)``, of 8-bit images ``x`` under an
    independent density on ``y``: ``P(x)`` is the product over pixels of the mass of the bin
    ``[x/256, (x+1)/256)``, a difference of the CDF."""
    x = x.double()
    return -(density.cdf((x + 1) / 256) - density.cdf(x / 256)).log().sum(1)


def _mean_and_se(values: torch.Tensor):
    values = values.double()
    return values.mean().item(), (values.std() / math.sqrt(len(values))).item()


def check_bound(exact: torch.Tensor, bound: torch.Tensor, z: float = 3.0):
    """Jensen's inequality of section 5.1 on data: per image, the dequantised bound is, in
    expectation over ``u``, at least the exact discrete NLL. So the mean of ``bound - exact``
    (paired per-image values, any common unit) may fall below 0 only by Monte Carlo error:
    by at most ``z`` standard errors, computed from the per-image gaps. Returns
    ``(mean gap, standard error)``; raises AssertionError if the bound sits below."""
    gap, se = _mean_and_se(bound - exact)
    if gap < -z * se:
        raise AssertionError(f"the bound is {-gap:.3g} below the exact NLL on average, more than {z} standard "
                             f"errors ({se:.2g}): it is not an upper bound")
    return gap, se


def check_beats(model: torch.Tensor, baseline: torch.Tensor, z: float = 3.0):
    """Whether a model scores lower than a baseline on the same images (paired per-image
    values, e.g. bits/dim): the mean of ``baseline - model`` must exceed ``z`` standard errors.
    Returns ``(mean advantage, standard error)``; raises AssertionError otherwise."""
    gain, se = _mean_and_se(baseline - model)
    if gain <= z * se:
        raise AssertionError(f"the model's mean advantage over the baseline is {gain:.3g}, not more than {z} "
                             f"standard errors ({se:.2g}): it does not beat it")
    return gain, se


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


def score(model, data: "datasets.ImageData", experiment, seed: int) -> dict:
    """Test-set numbers of section 5.1 for one trained model of ``experiment`` (an
    :class:`asvae_lib.experiments.Experiment`): the bounds in nats (MNIST) or bits per
    dimension, RMSE, time per image, and FID and IS for colour images."""
    ev = experiment.eval
    test = data.test if ev.n_test is None else data.test[: ev.n_test]
    x = datasets.fixed_dequantize(test, seed)
    rows = 100_000 if model.device.type == "cuda" else 5_000      # images x k per chunk of the bound
    out = {"n_test": len(x), "rmse": rmse(model, x), "seconds_per_image": seconds_per_image(model)}
    if experiment.dataset == "mnist":
        # pixels in [0, 1] are Bernoulli probabilities (section 5.1); the NLL is that of one
        # fixed binarisation of the test images, a proper discrete likelihood in nats
        binary = torch.bernoulli(x, generator=torch.Generator().manual_seed(seed))
        out["nll_elbo_nats"] = -log_likelihood_bound(model, binary, 1, rows).mean().item()
        together = [k for k in ev.iwae_ks if max(ev.iwae_ks) % k == 0]       # one set of draws serves these
        bounds = log_likelihood_bounds(model, binary, together, rows) if together else {}
        bounds.update({k: log_likelihood_bound(model, binary, k, rows) for k in ev.iwae_ks if k not in together})
        for k in ev.iwae_ks:
            out[f"nll_iwae{k}_nats"] = -bounds[k].mean().item()
        return out
    dim = x.shape[1]
    out["bpd_elbo"] = bits_per_dim(-log_likelihood_bound(model, x, 1, rows).mean().item(), dim)
    for k in ev.iwae_ks:
        out[f"bpd_iwae{k}"] = bits_per_dim(-log_likelihood_bound(model, x, k, rows).mean().item(), dim)
    n = ev.fid_samples
    real = datasets.images(data.test[:n], data.shape)
    samples = torch.cat([model.sample(min(500, n - i)).float().cpu() for i in range(0, n, 500)])
    fake = datasets.images(samples.clamp(0, 1), data.shape)
    fid = image_metrics.fid(real, fake, device=model.device)
    isc = image_metrics.inception_score(fake, device=model.device,   # the smoke test downloads nothing either
                                        download=experiment.profile == "full" and not smoke())
    for metric in (fid, isc):
        out[metric.name] = dataclasses.asdict(metric)
    return out
