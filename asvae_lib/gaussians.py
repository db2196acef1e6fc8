"""Multivariate Gaussians in closed form: density, entropy, cross-entropy, KL.

Part I of the book lives in a world where every distribution is Gaussian, so
every quantity in the paper (equations (1)-(10)) has a closed form. These are
the few formulas all of them are built from. Everything is written with torch
so that gradients come for free (chapter 4 maximises the symmetric bound by
gradient ascent on these expressions).

For ``N(mu, Sigma)`` in ``d`` dimensions:

* ``log N(x; mu, Sigma) = -1/2 [d log 2pi + log|Sigma| + (x-mu)^T Sigma^-1 (x-mu)]``;
  with a diagonal ``Sigma = diag exp(log_var)`` it is :func:`normal_log_prob`, which every
  diagonal Gaussian of the library uses (the prior, the networks' encoders and decoders,
  the Gaussian world's);
* ``H = 1/2 [d (1 + log 2pi) + log|Sigma|]``
* cross-entropy ``-E_{N(mu1,S1)} log N(x; mu2, S2)
  = 1/2 [d log 2pi + log|S2| + tr(S2^-1 S1) + (mu1-mu2)^T S2^-1 (mu1-mu2)]``
* ``KL(N1 || N2)`` = cross-entropy minus ``H(N1)``.
"""
import math
from dataclasses import dataclass

import torch

LOG_2PI = math.log(2 * math.pi)


def normal_log_density(y: torch.Tensor, mean, log_var: torch.Tensor) -> torch.Tensor:
    """``log N(y; mean, exp(log_var))`` elementwise, each entry its own 1-D Gaussian:
    ``-1/2 [log 2pi + log_var + (y - mean)^2 / exp(log_var)]``. Arguments broadcast."""
    return -0.5 * (LOG_2PI + log_var + (y - mean) ** 2 / log_var.exp())


def normal_log_prob(y: torch.Tensor, mean, log_var: torch.Tensor) -> torch.Tensor:
    """``log N(y; mean, diag exp(log_var))`` for ``y`` of shape ``(..., d)``: the density above
    with a diagonal covariance, :func:`normal_log_density` summed over the last axis.
    ``log_var`` may be a scalar tensor (an isotropic covariance)."""
    return normal_log_density(y, mean, log_var).sum(-1)


@dataclass
class Gaussian:
    """``N(mean, cov)`` with ``mean`` of shape ``(d,)`` and ``cov`` of shape ``(d, d)``."""

    mean: torch.Tensor
    cov: torch.Tensor

    @property
    def dim(self) -> int:
        return self.mean.shape[-1]

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log N(x; mean, cov)`` for ``x`` of shape ``(..., d)``."""
        chol = torch.linalg.cholesky(self.cov)
        diff = (x - self.mean).unsqueeze(-1)
        white = torch.linalg.solve_triangular(chol, diff, upper=False).squeeze(-1)
        log_det = 2 * torch.log(torch.diagonal(chol)).sum()
        return -0.5 * (self.dim * LOG_2PI + log_det + (white**2).sum(-1))

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws, by ``mean + L eps`` with ``L L^T = cov`` (reparametrised)."""
        eps = torch.randn(n, self.dim, dtype=self.mean.dtype, generator=generator)
        return self.mean + eps @ torch.linalg.cholesky(self.cov).T

    def entropy(self) -> torch.Tensor:
        return 0.5 * (self.dim * (1 + LOG_2PI) + torch.logdet(self.cov))

    def marginal(self, idx: slice) -> "Gaussian":
        """The marginal of the coordinates ``idx`` (a slice) of a joint Gaussian."""
        return Gaussian(self.mean[idx], self.cov[idx, idx])


def cross_entropy(p: Gaussian, q: Gaussian) -> torch.Tensor:
    """``-E_p[log q(x)]`` in closed form."""
    q_inv = torch.linalg.inv(q.cov)
    diff = p.mean - q.mean
    return 0.5 * (
        p.dim * LOG_2PI
        + torch.logdet(q.cov)
        + torch.trace(q_inv @ p.cov)
        + diff @ q_inv @ diff
    )


def kl(p: Gaussian, q: Gaussian) -> torch.Tensor:
    """``KL(p || q) = E_p[log p - log q]`` in closed form."""
    return cross_entropy(p, q) - p.entropy()


def standard_normal(dim: int, dtype=torch.float64) -> Gaussian:
    """The prior ``p(z) = N(0, I)``."""
    return Gaussian(torch.zeros(dim, dtype=dtype), torch.eye(dim, dtype=dtype))


def jsd(p: Gaussian, q: Gaussian, points: int = 96, width: float = 7.0) -> torch.Tensor:
    """The Jensen-Shannon divergence ``1/2 KL(p || m) + 1/2 KL(q || m)``, ``m = (p + q) / 2``, which
    has no closed form for Gaussians: the midpoint rule on a box of ``points`` cells per axis
    reaching ``width`` standard deviations past both means (``points ** dim`` evaluations, so for
    a few dimensions only). Differentiable in the parameters of ``p`` and ``q``."""
    sd = torch.maximum(p.cov.diagonal(), q.cov.diagonal()).detach().sqrt()
    lo = torch.minimum(p.mean, q.mean).detach() - width * sd
    hi = torch.maximum(p.mean, q.mean).detach() + width * sd
    mid = (torch.arange(points, dtype=sd.dtype) + 0.5) / points
    grid = torch.stack(torch.meshgrid(*[a + (b - a) * mid for a, b in zip(lo, hi)], indexing="ij"), -1)
    grid = grid.reshape(-1, p.dim)
    log_p, log_q = p.log_prob(grid), q.log_prob(grid)
    log_m = torch.logaddexp(log_p, log_q) - math.log(2)
    cell = torch.prod((hi - lo) / points)
    return 0.5 * cell * ((log_p.exp() * (log_p - log_m)).sum() + (log_q.exp() * (log_q - log_m)).sum())
