"""Mixture data with known modes, and the measures chapter 6 reports.

Generation, reconstruction and inference are each measured without a density:

* ``grid_centres`` / ``ring_centres`` and ``sample_mixture``: an equal-weight
  mixture of isotropic Gaussians with known centres (the classic 2-D test of
  mode coverage; any dimension works).
* ``mode_coverage``: how many modes a set of samples covers and what share of
  samples is "good" (near some mode). A later chapter can apply it to any
  samples with known class centres.
* ``reconstruction_error``: mean squared Euclidean distance from ``x`` to its
  reconstruction.
* ``moment_kl_to_standard``: ``KL(N(m, S) || N(0, I))`` with ``m, S`` the sample
  mean and covariance of a set of codes; zero when the first two moments of the
  aggregated posterior match the prior's (a necessary, not sufficient, check).
* ``mmd_rbf``: the kernel maximum mean discrepancy between two samples (unbiased
  estimate of MMD^2 with a sum of Gaussian kernels), which sees beyond moments.
"""
import math

import torch

from .gaussians import Gaussian, kl, standard_normal


def grid_centres(k: int = 5, spacing: float = 2.0) -> torch.Tensor:
    """The ``k * k`` centres of a square grid, centred on the origin, ``spacing`` apart."""
    axis = (torch.arange(k, dtype=torch.float32) - (k - 1) / 2) * spacing
    return torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)


def ring_centres(n: int = 8, radius: float = 2.0) -> torch.Tensor:
    """``n`` centres evenly spaced on a circle of the given radius."""
    angle = torch.arange(n, dtype=torch.float32) * (2 * math.pi / n)
    return radius * torch.stack([angle.cos(), angle.sin()], -1)


def sample_mixture(centres: torch.Tensor, std: float, n: int, generator: torch.Generator | None = None):
    """``n`` draws from the equal-weight mixture of ``N(centre, std^2 I)``.
    Returns ``(x, labels)``, labels being the index of each draw's component."""
    labels = torch.randint(len(centres), (n,), generator=generator)
    x = centres[labels] + std * torch.randn(n, centres.shape[1], generator=generator)
    return x, labels


def mode_coverage(samples: torch.Tensor, centres: torch.Tensor, std: float,
                  n_std: float = 3.0, min_fraction: float = 0.2) -> dict:
    """Mode coverage of generated samples, the usual measure for mixtures with known modes.

    A sample is *good* if it lies within ``n_std`` standard deviations of some
    centre (Euclidean distance). A mode is *covered* if at least ``min_fraction``
    of the share it would get from the data (``1 / len(centres)``) falls within
    ``n_std`` of it. Returns ``modes`` (covered count), ``good`` (share of good
    samples) and ``counts`` (good samples per mode).
    """
    dist = torch.cdist(samples.float(), centres.float())
    nearest_dist, nearest = dist.min(1)
    good = nearest_dist <= n_std * std
    counts = torch.bincount(nearest[good], minlength=len(centres))
    expected = len(samples) / len(centres)
    return {"modes": int((counts >= min_fraction * expected).sum()),
            "good": good.float().mean().item(), "counts": counts}


def reconstruction_error(x: torch.Tensor, x_rec: torch.Tensor) -> float:
    """Mean over rows of the squared Euclidean distance ``||x - x_rec||^2``."""
    return ((x - x_rec) ** 2).sum(-1).mean().item()


def moment_kl_to_standard(z: torch.Tensor) -> float:
    """``KL(N(m, S) || N(0, I))`` with ``m, S`` the sample mean and covariance of the rows of ``z``."""
    z = z.double()
    d = z.shape[1]
    return kl(Gaussian(z.mean(0), torch.cov(z.T).reshape(d, d)), standard_normal(d)).item()


def mmd_rbf(a: torch.Tensor, b: torch.Tensor, bandwidths=(0.2, 0.5, 1.0, 2.0)) -> float:
    """Unbiased estimate of ``MMD^2`` between the samples ``a`` and ``b`` with the kernel
    ``sum_s exp(-||u - v||^2 / (2 s^2))`` over the bandwidths ``s``. Zero in expectation
    when both come from the same distribution; may be slightly negative then."""
    a, b = a.double(), b.double()

    def k(u, v):
        d2 = torch.cdist(u, v) ** 2
        return sum(torch.exp(-d2 / (2 * s * s)) for s in bandwidths)

    n, m = len(a), len(b)
    kaa, kbb = k(a, a), k(b, b)
    term_a = (kaa.sum() - kaa.diagonal().sum()) / (n * (n - 1))
    term_b = (kbb.sum() - kbb.diagonal().sum()) / (m * (m - 1))
    return (term_a + term_b - 2 * k(a, b).mean()).item()
