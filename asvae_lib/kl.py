"""KL divergences for one-dimensional densities on a grid, and fits by each KL.

Chapter 1 fits a single Gaussian ``p`` to data ``q`` it cannot represent (a
two-component mixture) by three criteria and shows where each one puts its mass:

* forward KL ``KL(q || p)``: what maximum likelihood and the VAE's ELBO (2)
  minimise; it punishes ``p`` for missing data, not for mass where there is none;
* reverse KL ``KL(p || q)``: it punishes mass where there is no data;
* symmetric KL, their sum: what the AS-VAE bound penalises for the joints.

In one dimension the integrals are sums on a fine grid (the trapezoid rule),
accurate far beyond anything the chapter checks.
"""
import math

import torch

from .gaussians import normal_log_density

FORWARD, REVERSE, SYMMETRIC = "forward", "reverse", "symmetric"


def normal_log_pdf(x: torch.Tensor, mean, std) -> torch.Tensor:
    """``log N(x; mean, std^2)`` in one dimension, at every entry of ``x`` (:func:`gaussians.normal_log_density`)."""
    return normal_log_density(x, mean, 2 * torch.as_tensor(std, dtype=x.dtype).log())


def mixture_log_pdf(x: torch.Tensor, weights, means, stds) -> torch.Tensor:
    """``log sum_k w_k N(x; mu_k, s_k^2)``, the density the model family lacks."""
    comps = torch.stack([math.log(w) + normal_log_pdf(x, m, s) for w, m, s in zip(weights, means, stds)])
    return torch.logsumexp(comps, dim=0)


def mixture_mass(lo: float, hi: float, weights, means, stds) -> float:
    """The probability ``P(lo < x < hi)`` under ``sum_k w_k N(mu_k, s_k^2)``, in closed form.

    ``sum_k w_k [Phi((hi - mu_k)/s_k) - Phi((lo - mu_k)/s_k)]`` with the normal CDF
    ``Phi``; ``lo``/``hi`` may be infinite. A single Gaussian is the one-component
    mixture ``([1.0], [mean], [std])``. Chapter 1 uses it to say where each fit
    puts its mass (the gap between the modes, each mode, the tails).
    """
    def Phi(t):
        return torch.special.ndtr(torch.tensor(t, dtype=torch.float64))
    return sum(w * (Phi((hi - m) / s) - Phi((lo - m) / s)).item() for w, m, s in zip(weights, means, stds))


def kl_on_grid(log_p: torch.Tensor, log_q: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``KL(p || q) = int p (log p - log q) dx`` by the trapezoid rule on ``grid``."""
    return torch.trapezoid(log_p.exp() * (log_p - log_q), grid)


def divergence(kind: str, log_model: torch.Tensor, log_data: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The divergence ``kind`` between data ``q`` and model ``p``, both given on ``grid``."""
    forward = kl_on_grid(log_data, log_model, grid)   # KL(q || p)
    if kind == FORWARD:
        return forward
    reverse = kl_on_grid(log_model, log_data, grid)   # KL(p || q)
    if kind == REVERSE:
        return reverse
    if kind == SYMMETRIC:
        return forward + reverse
    raise ValueError(f"kind must be one of {FORWARD!r}, {REVERSE!r}, {SYMMETRIC!r}; got {kind!r}")


def fit_gaussian(kind: str, log_data: torch.Tensor, grid: torch.Tensor,
                 init_mean: float = 0.0, init_std: float = 1.0, steps: int = 100, lr: float = 1.0):
    """Fit ``N(mean, std^2)`` to the data density by minimising the ``kind`` KL.

    Two parameters, ``(mean, log std)``, and a smooth objective: L-BFGS with a
    line search converges in a few dozen iterations (``steps`` caps them).
    Returns the fitted ``(mean, std)`` as floats and the divergence at the end.
    """
    mean = torch.tensor(float(init_mean), dtype=grid.dtype, requires_grad=True)
    log_std = torch.tensor(math.log(init_std), dtype=grid.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([mean, log_std], lr=lr, max_iter=steps, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure():
        opt.zero_grad()
        loss = divergence(kind, normal_log_pdf(grid, mean, log_std.exp()), log_data, grid)
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        final = divergence(kind, normal_log_pdf(grid, mean, log_std.exp()), log_data, grid)
    return mean.item(), log_std.exp().item(), final.item()
