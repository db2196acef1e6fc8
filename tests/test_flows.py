"""Planar flows: log-determinant against autograd's Jacobian, inverse, invertibility."""
import math

import torch

from asvae_lib.flows import PlanarFlow, flow_log_prob


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
