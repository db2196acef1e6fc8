"""Planar normalizing flows (Rezende & Mohamed, 2015), with their inverse.

A planar layer moves a point along one direction ``u`` by an amount that
depends on its position along another direction ``w``:

    y = z + u_hat * tanh(w^T z + b)

Its Jacobian is ``I + u_hat psi(z)^T`` with ``psi(z) = (1 - tanh^2(w^T z + b)) w``,
and by the matrix determinant lemma

    log |det dy/dz| = log |1 + u_hat^T psi(z)|.

The layer is invertible when ``w^T u_hat >= -1``. We enforce it by
reparametrising ``u`` (Rezende & Mohamed, appendix A):

    u_hat = u + (m(w^T u) - w^T u) w / ||w||^2,   m(a) = -1 + softplus(a),

so that ``w^T u_hat = m(w^T u) > -1`` whatever ``u`` and ``w`` the optimiser picks.

AS-VAE needs the *density* of a flow at points it did not sample itself: the
z-half of (11) evaluates ``log q_phi(z|x)`` at prior codes ``z``, the x-half
evaluates ``log p_theta(x|z)`` at real data ``x``. So we also invert the flow.
There is no closed form, but the inversion reduces to one scalar equation per
layer: with ``alpha = w^T z + b`` and ``c = w^T u_hat``,

    w^T y + b = alpha + c tanh(alpha),

whose right side is non-decreasing in ``alpha`` (because ``c >= -1``), so
bisection finds ``alpha`` and then ``z = y - u_hat tanh(alpha)``.
"""
import torch
import torch.nn.functional as F
from torch import nn


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """Flows run in float32 or float64, never in mixed precision: 80 layers of
    half-precision rounding, and bisection, would not survive it."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class PlanarFlow(nn.Module):
    """A chain of ``length`` planar layers on ``dim``-dimensional points."""

    def __init__(self, dim: int, length: int, init_scale: float = 0.1):
        super().__init__()
        self.u = nn.Parameter(init_scale * torch.randn(length, dim))
        self.w = nn.Parameter(init_scale * torch.randn(length, dim))
        self.b = nn.Parameter(torch.zeros(length))

    def __len__(self) -> int:
        return self.b.shape[0]

    def u_hat(self, k: int) -> torch.Tensor:
        """Layer ``k``'s ``u``, corrected so that ``w^T u_hat >= -1`` (invertibility)."""
        u, w = self.u[k], self.w[k]
        wu = w @ u
        return u + (-1 + F.softplus(wu) - wu) * w / (w @ w).clamp_min(1e-12)   # w = 0 stays finite

    def _layer(self, k: int, z: torch.Tensor):
        u_hat, w, b = self.u_hat(k).to(z.dtype), self.w[k].to(z.dtype), self.b[k].to(z.dtype)
        t = torch.tanh(z @ w + b)
        y = z + t[:, None] * u_hat
        log_det = torch.log(torch.abs(1 + (1 - t**2) * (w @ u_hat)) + 1e-12)
        return y, log_det

    def forward(self, z: torch.Tensor):
        """Push ``z`` (n, dim) through every layer: returns ``y`` and ``log |det dy/dz|`` (n,)."""
        z = _at_least_float32(z)
        total = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        for k in range(len(self)):
            z, log_det = self._layer(k, z)
            total = total + log_det
        return z, total

    def inverse(self, y: torch.Tensor, bisections: int = 20, newton_steps: int = 2):
        """The ``z`` with ``forward(z) = y``, and ``log |det dy/dz|`` at that ``z``.

        Each layer's scalar equation is bracketed by ``bisections`` halvings (safe,
        since its left side is non-decreasing), polished by ``newton_steps`` Newton
        steps kept inside the bracket (each squares the error), all without
        gradient; then one last Newton step with gradient: at the root its
        derivative is the implicit-function derivative, so ``z`` is differentiable
        in ``y`` and the flow's parameters.
        """
        y = _at_least_float32(y)
        total = torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)
        for k in reversed(range(len(self))):
            u_hat, w, b = self.u_hat(k).to(y.dtype), self.w[k].to(y.dtype), self.b[k].to(y.dtype)
            c = w @ u_hat
            target = y @ w + b                       # = alpha + c tanh(alpha)
            newton = lambda a: a - (a + c * torch.tanh(a) - target) / (1 + c * (1 - torch.tanh(a) ** 2))
            with torch.no_grad():
                lo, hi = target - c.abs() - 1e-6, target + c.abs() + 1e-6
                for _ in range(bisections):
                    mid = (lo + hi) / 2
                    too_big = mid + c * torch.tanh(mid) > target
                    hi, lo = torch.where(too_big, mid, hi), torch.where(too_big, lo, mid)
                alpha0 = (lo + hi) / 2
                for _ in range(newton_steps):
                    alpha0 = torch.minimum(torch.maximum(newton(alpha0), lo), hi)
            alpha = newton(alpha0)                   # differentiable Newton step
            z = y - torch.tanh(alpha)[:, None] * u_hat
            total = total + torch.log(torch.abs(1 + (1 - torch.tanh(alpha) ** 2) * c) + 1e-12)
            y = z
        return y, total


def flow_log_prob(flow: PlanarFlow, y: torch.Tensor, base_log_prob) -> torch.Tensor:
    """``log p(y)`` for ``y = flow(z)``, ``z ~ base``: ``log base(z) - log |det dy/dz|``."""
    z, log_det = flow.inverse(y)
    return base_log_prob(z) - log_det
