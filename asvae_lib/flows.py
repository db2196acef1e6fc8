"""Planar normalizing flows (Rezende & Mohamed, 2015), with their inverse.

A planar layer moves a point along one direction ``u`` by an amount that
depends on its position along another direction ``w``:

    y = z + u_hat * tanh(w^T z + b)

Its Jacobian is ``I + u_hat psi(z)^T`` with ``psi(z) = (1 - tanh^2(w^T z + b)) w``,
and by the matrix determinant lemma

    log |det dy/dz| = log |1 + u_hat^T psi(z)| = log |1 + (1 - tanh^2(w^T z + b)) c|,   c = w^T u_hat.

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

whose right side is non-decreasing in ``alpha`` (because ``c >= -1``); we solve
it by Newton's method from a bound on the root (:func:`solve_alpha`), and then
``z = y - u_hat tanh(alpha)``.

Speed: the layers must run one after another, so a flow of 80 layers is 80 rounds
of small operations, and their number is what costs (on a GPU each is a kernel
launch). Everything that does not depend on the points (``u_hat`` and ``c`` of
every layer) is computed once per call for all layers together, each layer is
then three operations forwards, and the inverse's root finding is a fixed,
small number of Newton steps. :class:`ReferencePlanarFlow` keeps the plain
layer-by-layer code, with bisection, that the tests and ``make bench`` compare
against.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    """Flows run in float32 or float64, never in mixed precision: 80 layers of
    half-precision rounding, and root finding, would not survive it."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _log_det(t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``sum_k log |1 + (1 - t_k^2) c_k|`` for ``t`` (n, length) = every layer's tanh."""
    return torch.log(torch.abs(1 + (1 - t**2) * c) + 1e-12).sum(-1)


def _stacked(tanhs: list, like: torch.Tensor) -> torch.Tensor:
    """The layers' tanh values as columns of an (n, length) tensor; (n, 0) for a flow of no layers."""
    return torch.stack(tanhs, 1) if tanhs else like.new_zeros(len(like), 0)


def bracket_alpha(t: torch.Tensor, c: torch.Tensor):
    """Bounds ``lo <= alpha <= hi`` on the root of ``g(alpha) = alpha + c tanh(alpha) = t``, for ``t >= 0``.

    ``g`` is odd and increasing, so ``alpha >= 0``. With ``s = tanh(alpha) <= alpha``,
    ``|s| <= 1`` and ``artanh(s) = s + s^3/3 + s^5/5 + ... >= s + s^3/3``:

    * ``c >= 0``: ``(1 + c) s <= g <= min(alpha + c, (1 + c) alpha)``, so
      ``max(t - c, t / (1 + c)) <= alpha <= min(t, artanh(t / (1 + c)))``; and since
      ``tanh(alpha) = (t - alpha) / c``, every upper bound ``hi`` gives the lower bound
      ``artanh((t - hi) / c)``.
    * ``-1 <= c < 0``: ``g <= alpha`` and ``g >= max(alpha - |c|, (1 + c) alpha, |c| s^3 / 3)``,
      so ``t <= alpha <= min(t + |c|, t / (1 + c), artanh((3 t / |c|)^(1/3)))``. The last
      bound is the one that matters near ``c = -1``, where ``g ~ alpha^3 / 3`` is flat at 0.
    """
    tiny = torch.finfo(t.dtype).tiny
    ratio = t / (1 + c).clamp_min(tiny)                                 # t / (1 + c)
    hi_pos = torch.minimum(t, torch.atanh(ratio.clamp(max=1)))
    lo_pos = torch.maximum(torch.maximum(t - c, ratio), torch.atanh(((t - hi_pos) / c.clamp_min(tiny)).clamp(0, 1)))
    cubic = torch.atanh((3 * t / c.abs().clamp_min(tiny)).pow(1 / 3).clamp(max=1))
    hi_neg = torch.minimum(torch.minimum(t - c, ratio), cubic)
    positive = c >= 0
    return torch.where(positive, torch.minimum(lo_pos, hi_pos), t), torch.where(positive, hi_pos, hi_neg)


@torch.no_grad()
def solve_alpha(target: torch.Tensor, c: torch.Tensor, steps: int = 6) -> torch.Tensor:
    """The root ``alpha`` of ``alpha + c tanh(alpha) = target`` (``c >= -1``), by ``steps`` Newton steps.

    ``g(alpha) = alpha + c tanh(alpha)`` is odd, so we solve for ``|target|`` and restore
    the sign. On ``alpha >= 0``, ``g'' = -2 c (1 - tanh^2) tanh`` has one sign: ``g`` is
    concave when ``c >= 0`` and convex when ``c < 0``. Newton's method on a monotone
    concave (convex) function started below (above) the root never overshoots it and
    converges quadratically; :func:`bracket_alpha` gives that start. Each step is also
    clamped to the bracket, which keeps it safe where rounding makes ``g`` look flat
    (``c`` within rounding of -1, where the inverse is ill-conditioned anyway).
    Six steps reach float64 rounding for ``|c|`` up to 1e8 (measured on a grid, see
    tests/test_flows.py); a fixed number keeps the code free of data-dependent branches.
    """
    t = target.abs()
    lo, hi = bracket_alpha(t, c)
    alpha = torch.where(c >= 0, lo, hi)
    tiny = torch.finfo(t.dtype).tiny
    one_plus_c, minus_c = 1 + c, -c
    for _ in range(steps):   # alpha - (alpha + c th - t) / (1 + c (1 - th^2)), th = tanh(alpha), as fused operations
        th = torch.tanh(alpha)
        slope = torch.addcmul(one_plus_c, minus_c, th * th).clamp_min(tiny)
        alpha = torch.addcdiv(alpha, torch.addcmul(alpha - t, c, th), slope, value=-1).clamp(lo, hi)
    return alpha.copysign(target)


def _newton_step(alpha, target, c):
    """``alpha - g(alpha) / g'(alpha)`` for ``g(alpha) = alpha + c tanh(alpha) - target``."""
    th = torch.tanh(alpha)
    return alpha - (alpha + c * th - target) / (1 + c * (1 - th * th))


def invertible_u(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``u_hat = u + (m(w^T u) - w^T u) w / ||w||^2``, ``m(a) = -1 + softplus(a)``, row by row
    (any leading shape): the ``u`` that keeps ``w^T u_hat > -1``, so the layer is invertible."""
    wu = (w * u).sum(-1, keepdim=True)
    return u + (-1 + F.softplus(wu) - wu) * w / (w * w).sum(-1, keepdim=True).clamp_min(1e-12)  # w = 0 stays finite


def _dot_plus(b_k, z, w_k):
    """``w_k^T z + b_k`` for every row of ``z``: one ``w_k`` (dim,) for all rows, or one per row (n, dim)."""
    return torch.addmv(b_k, z, w_k) if w_k.dim() == 1 else (z * w_k).sum(-1) + b_k


def _shift(z, t, u_k, sign: float = 1.0):
    """``z + sign * u_k t`` for every row: one ``u_k`` for all rows, or one per row."""
    return torch.addr(z, t, u_k, alpha=sign) if u_k.dim() == 1 else torch.addcmul(z, t[:, None], u_k, value=sign)


def planar_forward(z: torch.Tensor, u_hat, w, b, c):
    """Push ``z`` (n, dim) through the layers ``(u_hat, w, b, c)``: returns ``y`` and ``log |det dy/dz|`` (n,).

    The layers are shared by every row (``u_hat``, ``w`` of shape (length, dim), ``b``, ``c``
    of (length,)) or are each row's own (one more leading dimension n: an amortised flow)."""
    tanhs = []
    for k in range(b.shape[-1]):
        t = torch.tanh(_dot_plus(b[..., k], z, w[..., k, :]))     # tanh(w^T z + b)
        z = _shift(z, t, u_hat[..., k, :])                          # z + u_hat tanh(w^T z + b)
        tanhs.append(t)
    return z, _log_det(_stacked(tanhs, z), c)


def planar_inverse(y: torch.Tensor, u_hat, w, b, c, newton_steps: int = 6):
    """The ``z`` with ``planar_forward(z, ...) = y``, and ``log |det dy/dz|`` at that ``z``.

    Layer by layer from the last: :func:`solve_alpha` finds ``alpha`` without gradient; then
    one more Newton step, with gradient: at the root its derivative is the implicit-function
    derivative ``d alpha = (d target - tanh(alpha) dc) / g'(alpha)``, so ``z`` is
    differentiable in ``y`` and the layers' parameters."""
    tanhs = []
    for k in reversed(range(b.shape[-1])):
        c_k = c[..., k]
        target = _dot_plus(b[..., k], y, w[..., k, :])             # w^T y + b = alpha + c tanh(alpha)
        t = torch.tanh(_newton_step(solve_alpha(target, c_k, newton_steps), target, c_k))
        y = _shift(y, t, u_hat[..., k, :], -1.0)                  # z = y - u_hat tanh(alpha)
        tanhs.append(t)
    return y, _log_det(_stacked(tanhs[::-1], y), c)


class PlanarFlow(nn.Module):
    """A chain of ``length`` planar layers on ``dim``-dimensional points, its parameters global
    (the same for every point).

    ``start="random"`` draws ``u`` and ``w`` with sd ``init_scale``. Then every layer starts with
    ``c = w^T u_hat = m(w^T u)`` near ``m(0) = -1 + log 2 = -0.31``: a contraction, and 80 such
    layers start far from the identity. ``start="identity"`` (what the models use) draws ``w`` the
    same way and sets ``u = log(e - 1) w / ||w||^2``. Then ``m(w^T u) = 0`` and ``u_hat = 0``: every
    layer starts as the identity (``log |det| = 0``), and its gradient in ``u`` is ``tanh(w^T z + b)``,
    not 0, so it learns from there.
    """

    STARTS = ("random", "identity")

    def __init__(self, dim: int, length: int, init_scale: float = 0.1, start: str = "random"):
        super().__init__()
        if start not in self.STARTS:
            raise ValueError(f"start {start!r}: choose one of {self.STARTS}")
        w = init_scale * torch.randn(length, dim)
        u = (math.log(math.e - 1) * w / (w * w).sum(-1, keepdim=True) if start == "identity"
             else init_scale * torch.randn(length, dim))
        self.u, self.w = nn.Parameter(u), nn.Parameter(w)
        self.b = nn.Parameter(torch.zeros(length))

    def __len__(self) -> int:
        return self.b.shape[0]

    def u_hat(self, k=slice(None)) -> torch.Tensor:
        """Layer ``k``'s ``u``, corrected so that ``w^T u_hat >= -1`` (invertibility);
        by default every layer's at once, as the rows of a (length, dim) tensor."""
        return invertible_u(self.u[k], self.w[k])

    def layers(self, dtype: torch.dtype):
        """Every layer's ``u_hat``, ``w``, ``b`` and ``c = w^T u_hat``, computed once, in ``dtype``."""
        u_hat, w, b = self.u_hat().to(dtype), self.w.to(dtype), self.b.to(dtype)
        return u_hat, w, b, (w * u_hat).sum(-1)

    def forward(self, z: torch.Tensor):
        """Push ``z`` (n, dim) through every layer: returns ``y`` and ``log |det dy/dz|`` (n,)."""
        z = _at_least_float32(z)
        return planar_forward(z, *self.layers(z.dtype))

    def inverse(self, y: torch.Tensor, newton_steps: int = 6):
        """The ``z`` with ``forward(z) = y``, and ``log |det dy/dz|`` at that ``z`` (:func:`planar_inverse`)."""
        y = _at_least_float32(y)
        return planar_inverse(y, *self.layers(y.dtype), newton_steps)


class AmortisedPlanarFlow(nn.Module):
    """The planar flow of Rezende and Mohamed's experiments (the paper's [14]): each point's
    layers are computed from its condition ``x`` by the inference network, which outputs
    ``params`` (n, :attr:`n_params`): every layer's ``u``, then ``w``, then ``b``.

    The network's ``u`` is read as a step away from the identity,
    ``u = u_net + log(e - 1) w / ||w||^2``, so ``u_net = 0`` is the identity flow (as
    :class:`PlanarFlow`'s ``start="identity"``) and a network whose ``u``-outputs start at 0
    starts there. The flow has no parameters of its own.
    """

    def __init__(self, dim: int, length: int):
        super().__init__()
        self.dim, self.length = dim, length

    def __len__(self) -> int:
        return self.length

    @property
    def n_params(self) -> int:
        return self.length * (2 * self.dim + 1)

    def layers(self, params: torch.Tensor, dtype: torch.dtype):
        """Each row's ``u_hat``, ``w`` (n, length, dim), ``b`` and ``c`` (n, length), in ``dtype``."""
        n, size = len(params), self.length * self.dim
        params = params.to(dtype)
        u_net, w = (params[:, i * size:(i + 1) * size].view(n, self.length, self.dim) for i in (0, 1))
        u_hat = invertible_u(u_net + math.log(math.e - 1) * w / (w * w).sum(-1, keepdim=True).clamp_min(1e-12), w)
        return u_hat, w, params[:, 2 * size:], (w * u_hat).sum(-1)

    def forward(self, z: torch.Tensor, params: torch.Tensor):
        z = _at_least_float32(z)
        return planar_forward(z, *self.layers(params, z.dtype))

    def inverse(self, y: torch.Tensor, params: torch.Tensor, newton_steps: int = 6):
        y = _at_least_float32(y)
        return planar_inverse(y, *self.layers(params, y.dtype), newton_steps)


class ReferencePlanarFlow(PlanarFlow):
    """The same flow, computed as the maths is written: one layer at a time, each
    recomputing its ``u_hat``, and inverted by bisection. Slow; the tests and
    ``make bench`` compare :class:`PlanarFlow` against it."""

    def _layer(self, k: int, z: torch.Tensor):
        u_hat, w, b = self.u_hat(k).to(z.dtype), self.w[k].to(z.dtype), self.b[k].to(z.dtype)
        t = torch.tanh(z @ w + b)
        y = z + t[:, None] * u_hat
        log_det = torch.log(torch.abs(1 + (1 - t**2) * (w @ u_hat)) + 1e-12)
        return y, log_det

    def forward(self, z: torch.Tensor):
        z = _at_least_float32(z)
        total = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        for k in range(len(self)):
            z, log_det = self._layer(k, z)
            total = total + log_det
        return z, total

    def inverse(self, y: torch.Tensor, bisections: int = 20, newton_steps: int = 2):
        """Each layer's scalar equation is bracketed in ``[target - |c|, target + |c|]``
        and halved ``bisections`` times, polished by ``newton_steps`` Newton steps kept
        inside the bracket, all without gradient; then one Newton step with gradient."""
        y = _at_least_float32(y)
        total = torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)
        for k in reversed(range(len(self))):
            u_hat, w, b = self.u_hat(k).to(y.dtype), self.w[k].to(y.dtype), self.b[k].to(y.dtype)
            c = w @ u_hat
            target = y @ w + b                       # = alpha + c tanh(alpha)
            with torch.no_grad():
                lo, hi = target - c.abs() - 1e-6, target + c.abs() + 1e-6
                for _ in range(bisections):
                    mid = (lo + hi) / 2
                    too_big = mid + c * torch.tanh(mid) > target
                    hi, lo = torch.where(too_big, mid, hi), torch.where(too_big, lo, mid)
                alpha0 = (lo + hi) / 2
                for _ in range(newton_steps):
                    alpha0 = torch.minimum(torch.maximum(_newton_step(alpha0, target, c), lo), hi)
            alpha = _newton_step(alpha0, target, c)  # differentiable Newton step
            z = y - torch.tanh(alpha)[:, None] * u_hat
            total = total + torch.log(torch.abs(1 + (1 - torch.tanh(alpha) ** 2) * c) + 1e-12)
            y = z
        return y, total


def flow_log_prob(flow: PlanarFlow, y: torch.Tensor, base_log_prob, *flow_params) -> torch.Tensor:
    """``log p(y)`` for ``y = flow(z)``, ``z ~ base``: ``log base(z) - log |det dy/dz|``
    (``flow_params``: an amortised flow's parameters for each row)."""
    z, log_det = flow.inverse(y, *flow_params)
    return base_log_prob(z) - log_det
