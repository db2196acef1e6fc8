"""Planar flows: log-determinant against autograd's Jacobian, inverse, invertibility."""
import math

import pytest
import torch

from asvae_lib.flows import AmortisedPlanarFlow, PlanarFlow, ReferencePlanarFlow, flow_log_prob, solve_alpha
from asvae_lib.models import mlp_asvae

ATOL_ADV = 1e-6


def _flow(dim=2, length=6, seed=0, scale=1.5):
    torch.manual_seed(seed)
    return PlanarFlow(dim, length, init_scale=scale).double()


def test_log_det_matches_autograd_jacobian():
    flow = _flow(dim=3)
    z = torch.randn(5, 3, dtype=torch.float64)
    _, log_det = flow(z)
    for i in range(5):
        J = torch.autograd.functional.jacobian(lambda v: flow(v[None])[0][0], z[i])
        torch.testing.assert_close(log_det[i], torch.linalg.slogdet(J).logabsdet)


def test_invertibility_condition_holds_for_any_parameters():
    flow = _flow(length=50, scale=5.0)
    with torch.no_grad():
        flow.u.mul_(-10.0)                     # push w^T u far below -1
    for k in range(len(flow)):
        assert flow.w[k] @ flow.u_hat(k) >= -1 - 1e-9   # m(a) > -1, up to rounding


def test_inverse_round_trip_and_log_dets_agree():
    flow = _flow(length=10)
    z = torch.randn(200, 2, dtype=torch.float64)
    y, log_det = flow(z)
    z_back, log_det_back = flow.inverse(y)
    torch.testing.assert_close(z_back, z, atol=1e-8, rtol=0)
    torch.testing.assert_close(log_det_back, log_det, atol=1e-8, rtol=0)


def test_inverse_gradient_matches_finite_differences():
    flow = _flow(length=4)
    y = torch.randn(3, 2, dtype=torch.float64)
    loss = lambda: flow.inverse(y)[0].sum()
    grad = torch.autograd.grad(loss(), flow.w)[0]
    eps = 1e-6
    with torch.no_grad():
        flow.w[1, 0] += eps
        up = loss()
        flow.w[1, 0] -= 2 * eps
        down = loss()
        flow.w[1, 0] += eps
    assert abs((up - down) / (2 * eps) - grad[1, 0]) < 1e-5


def test_flow_density_integrates_to_one():
    flow = _flow(length=8, scale=0.5)    # smooth enough for a 0.05 grid to integrate to 1e-6
    g = torch.linspace(-9, 9, 361, dtype=torch.float64)
    Y = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    base = lambda z: -0.5 * (z**2).sum(-1) - math.log(2 * math.pi)
    with torch.no_grad():
        mass = flow_log_prob(flow, Y, base).exp().sum() * (g[1] - g[0]) ** 2
    assert abs(mass - 1) < 1e-6


# ----- the fast flow against the plain one (ReferencePlanarFlow: layer by layer, bisection) -----

def _pair(dim=50, length=80, seed=0, scale=0.25, dtype=torch.float64):
    """A PlanarFlow and a ReferencePlanarFlow with the same parameters (the paper's MNIST size)."""
    torch.manual_seed(seed)
    fast = PlanarFlow(dim, length, init_scale=scale).to(dtype)
    ref = ReferencePlanarFlow(dim, length).to(dtype)
    ref.load_state_dict(fast.state_dict())
    return fast, ref


def _standard_normal(z):
    return -0.5 * (z**2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_fast_forward_matches_reference(dtype, tol):
    fast, ref = _pair(dtype=dtype)
    z = torch.randn(100, 50, dtype=dtype)
    with torch.no_grad():
        (y, log_det), (y_ref, log_det_ref) = fast(z), ref(z)
    torch.testing.assert_close(y, y_ref, atol=tol, rtol=0)
    torch.testing.assert_close(log_det, log_det_ref, atol=tol, rtol=0)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-3)])
def test_fast_inverse_matches_reference_and_round_trips(dtype, tol):
    fast, ref = _pair(dtype=dtype)
    with torch.no_grad():
        y = ref(torch.randn(100, 50, dtype=dtype))[0]
        (z, log_det), (z_ref, log_det_ref) = fast.inverse(y), ref.inverse(y)
        torch.testing.assert_close(z, z_ref, atol=tol, rtol=0)
        torch.testing.assert_close(log_det, log_det_ref, atol=tol, rtol=0)
        torch.testing.assert_close(ref(z)[0], y, atol=tol / 10, rtol=0)     # forward(inverse(y)) = y


def _adversarial_pair(dtype=torch.float64):
    """80 layers in 50-D, in four kinds taking turns: |w| = 100 (a near step function),
    |b| = 50 (the tanh saturated at +-1), ordinary ones, and w^T u_hat = -1 + 1e-6 (the
    layer nearly folds: flat along w near its hyperplane), the last layer among them."""
    fast, ref = _pair(scale=0.3, seed=1)
    with torch.no_grad():
        for k in range(len(fast)):
            w = fast.w[k]
            if k % 4 == 0:
                fast.w[k] = 100 * w / w.norm()
            elif k % 4 == 1:
                fast.b[k] = 50 * (-1) ** (k // 4)
            elif k % 4 == 3:                                 # m(w^T u) = -1 + 1e-6, plus a sideways part
                side = fast.u[k] - (fast.u[k] @ w) * w / (w @ w)
                fast.u[k] = math.log(math.expm1(1e-6)) * w / (w @ w) + side
        ref.load_state_dict(fast.state_dict())
    c = torch.stack([fast.w[k] @ fast.u_hat(k) for k in range(3, 80, 4)])
    assert (c + 1 < 2e-6).all()
    return fast.to(dtype), ref.to(dtype)


def _adversarial_points(flow, n=200):
    """Half far out (|y_i| ~ 50), half within 1e-10 .. 1e-1 of the last layer's
    hyperplane w^T y + b = 0, where its map is flattest (the inverse's worst case)."""
    y = 50 * torch.randn(n, flow.w.shape[1], dtype=flow.w.dtype)
    w, b = flow.w[-1].detach(), flow.b[-1].detach()
    offset = torch.logspace(-10, -1, n // 2, dtype=w.dtype) * (-1) ** torch.arange(n // 2)
    y[n // 2:] += ((offset - b - y[n // 2:] @ w) / (w @ w))[:, None] * w
    return y


def _errors(flow, y, truth):
    """Largest errors of ``flow.inverse(y)`` against ``truth`` = (z, log_det): in z, in the
    log-det, and of the round trip forward(inverse(y)) - y, all measured in float64."""
    with torch.no_grad():
        z, log_det = (v.double() for v in flow.inverse(y))
        forward = ReferencePlanarFlow(*flow.w.shape[::-1]).double()
        forward.load_state_dict(flow.state_dict())
        return ((z - truth[0]).abs().max().item(), (log_det - truth[1]).abs().max().item(),
                (forward(z)[0] - y.double()).abs().max().item())


def test_inverse_is_safe_under_adversarial_parameters():
    fast, ref = _adversarial_pair()
    y = _adversarial_points(fast)
    with torch.no_grad():
        truth = ref.inverse(y, bisections=60)                 # bisection to float64 rounding
        err_z, err_log_det, err_round_trip = _errors(fast, y, truth)
        assert err_z < 1e-9 and err_log_det < 1e-8 and err_round_trip < 1e-9
        torch.testing.assert_close(flow_log_prob(fast, y, _standard_normal),
                                   flow_log_prob(ref, y, _standard_normal), atol=1e-8, rtol=1e-12)


def test_float32_inverse_is_as_accurate_as_the_old_one_under_adversarial_parameters():
    """In float32 the points next to a folding layer's hyperplane lose whole nats of
    log-det to rounding, whichever method: the fast inverse must do no worse than
    the old one (within a factor 2), both measured against the float64 truth."""
    fast, ref = _adversarial_pair(torch.float32)
    y = _adversarial_points(fast)
    with torch.no_grad():
        truth = ReferencePlanarFlow(50, 80).double()
        truth.load_state_dict(fast.state_dict())
        truth = truth.inverse(y.double(), bisections=60)
        for err, err_old in zip(_errors(fast, y, truth), _errors(ref, y, truth)):
            assert err <= 2 * err_old + 1e-4


def test_inverse_gradients_match_reference():
    fast, ref = _pair(length=80, scale=0.25)
    y = ref(torch.randn(20, 50, dtype=torch.float64))[0].detach().requires_grad_()
    def grads(flow):
        z, log_det = flow.inverse(y)
        loss = (z * torch.linspace(-1, 1, 50, dtype=torch.float64)).sum() + log_det.sum()
        return torch.autograd.grad(loss, [y, flow.u, flow.w, flow.b])
    for g, g_ref in zip(grads(fast), grads(ref)):
        torch.testing.assert_close(g, g_ref, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_solve_alpha_reaches_rounding_on_a_grid(dtype):
    """Six Newton steps from the bracket: backward error |g(alpha) - t| within a few
    rounding units of the terms' size, for c from -1 (exactly: the map is flat at 0)
    through -1 + 1e-12 to 1e8 and t from 0 to 1e9."""
    c = torch.cat([-1 + torch.logspace(-12, 0, 40)[:-1], torch.tensor([-1.0, 0.0]), torch.logspace(-6, 8, 150)])
    t = torch.cat([torch.zeros(1), torch.logspace(-14, 9, 400)])
    c, t = (v.reshape(-1).to(dtype) for v in torch.meshgrid(c, t, indexing="ij"))
    for sign in (1, -1):
        alpha = solve_alpha(sign * t, c).double()
        c64, t64 = c.double(), t.double()
        g = alpha + c64 * torch.tanh(alpha)
        scale = alpha.abs() + (c64 * torch.tanh(alpha)).abs() + t64
        assert ((g - sign * t64).abs() <= 4 * torch.finfo(dtype).eps * scale).all()


def test_a_flow_of_no_layers_is_the_identity():
    flow = PlanarFlow(2, 0)
    y = torch.randn(4, 2)
    for out, log_det in (flow(y), flow.inverse(y)):
        assert torch.equal(out, y) and torch.equal(log_det, torch.zeros(4))


def test_identity_start_is_the_identity_and_learns():
    torch.manual_seed(0)
    flow = PlanarFlow(50, 80, start="identity").double()
    z = torch.randn(64, 50, dtype=torch.float64)
    y, log_det = flow(z)                                  # u was set in float32: rounding of order 1e-7
    torch.testing.assert_close(y, z, atol=1e-6, rtol=0)
    torch.testing.assert_close(log_det, torch.zeros(64, dtype=torch.float64), atol=1e-5, rtol=0)
    y.square().sum().backward()
    assert flow.u.grad.abs().max() > 1e-3                # not stuck at the identity
    random = PlanarFlow(50, 80).double()                  # the random start: a contraction in every layer
    assert random(z)[1].mean() < -10


def test_amortised_flow_row_by_row_is_a_global_flow():
    """Each row of an amortised flow is the reference (layer by layer) flow with that row's parameters."""
    torch.manual_seed(1)
    flow = AmortisedPlanarFlow(3, 5)
    params = torch.randn(4, flow.n_params, dtype=torch.float64)
    z = torch.randn(4, 3, dtype=torch.float64)
    y, log_det = flow(z, params)
    for i in range(4):
        ref = ReferencePlanarFlow(3, 5).double()
        with torch.no_grad():
            w = params[i, 15:30].view(5, 3)
            ref.w.copy_(w)
            ref.u.copy_(params[i, :15].view(5, 3) + math.log(math.e - 1) * w / (w * w).sum(-1, keepdim=True))
            ref.b.copy_(params[i, 30:])
        y_ref, log_det_ref = ref(z[i:i + 1])
        torch.testing.assert_close(y[i:i + 1], y_ref, atol=1e-12, rtol=0)
        torch.testing.assert_close(log_det[i:i + 1], log_det_ref, atol=1e-12, rtol=0)
    z_back, log_det_back = flow.inverse(y, params)
    torch.testing.assert_close(z_back, z, atol=1e-9, rtol=0)
    torch.testing.assert_close(log_det_back, log_det, atol=1e-9, rtol=0)


def test_amortised_encoder_starts_at_the_identity_and_its_density_is_consistent():
    torch.manual_seed(2)
    model = mlp_asvae(12, 3, hidden=16, flow_length=6, bernoulli=True, amortised_flow=True).double()
    x = torch.rand(5, 12, dtype=torch.float64)
    enc = model.encoder
    mean, _, (params,) = enc.base(x)
    torch.testing.assert_close(enc.flow(mean, params)[0], mean, atol=1e-6, rtol=0)   # float32 outputs
    z, log_q = enc.rsample_with_log_prob(x)
    with torch.no_grad():                                   # move away from the identity
        enc.net[-1].weight.normal_(0, 0.3)
    z, log_q = enc.rsample_with_log_prob(x)
    torch.testing.assert_close(enc.log_prob(z, x), log_q, atol=1e-8, rtol=0)
    assert (enc.flow(mean, enc.base(x)[2][0])[0] - mean).abs().max() > 1e-2
