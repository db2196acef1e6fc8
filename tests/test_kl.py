"""The 1-D grid KLs and the fits of chapter 1."""
import math

import torch

from asvae_lib.gaussians import Gaussian, kl
from asvae_lib.kl import divergence, fit_gaussian, kl_on_grid, mixture_log_pdf, normal_log_pdf

GRID = torch.linspace(-12, 12, 4001, dtype=torch.float64)


def test_grid_kl_matches_the_closed_form_for_two_normals():
    exact = kl(Gaussian(torch.tensor([0.5], dtype=torch.float64), torch.tensor([[0.8**2]], dtype=torch.float64)),
               Gaussian(torch.tensor([-1.0], dtype=torch.float64), torch.tensor([[1.7**2]], dtype=torch.float64)))
    grid = kl_on_grid(normal_log_pdf(GRID, 0.5, 0.8), normal_log_pdf(GRID, -1.0, 1.7), GRID)
    assert abs(grid - exact) < 1e-6   # trapezoid error ~ h^2 with h = 0.006


def test_mixture_density_integrates_to_one():
    lp = mixture_log_pdf(GRID, [0.3, 0.7], [-2.0, 1.0], [0.5, 1.0])
    assert abs(torch.trapezoid(lp.exp(), GRID) - 1) < 1e-8


def test_forward_kl_fit_is_the_moment_match():
    w, mu, sd = [0.3, 0.7], [-2.0, 1.0], [0.5, 1.0]
    mean = sum(a * b for a, b in zip(w, mu))
    var = sum(a * (s**2 + b**2) for a, b, s in zip(w, mu, sd)) - mean**2
    m, s, _ = fit_gaussian("forward", mixture_log_pdf(GRID, w, mu, sd), GRID)
    assert abs(m - mean) < 1e-3 and abs(s - math.sqrt(var)) < 1e-3


def test_reverse_kl_fit_seeks_a_mode_and_symmetric_is_the_sum():
    w, mu, sd = [0.5, 0.5], [-3.0, 3.0], [0.5, 0.5]
    lq = mixture_log_pdf(GRID, w, mu, sd)
    m, s, _ = fit_gaussian("reverse", lq, GRID, init_mean=2.0)
    assert abs(m - 3.0) < 0.05 and abs(s - 0.5) < 0.05
    lp = normal_log_pdf(GRID, 0.0, 2.0)
    total = divergence("symmetric", lp, lq, GRID)
    torch.testing.assert_close(total, divergence("forward", lp, lq, GRID) + divergence("reverse", lp, lq, GRID))


def test_divergence_rejects_an_unknown_kind():
    try:
        divergence("backward", GRID, GRID, GRID)
    except ValueError as err:
        assert "forward" in str(err)
    else:
        raise AssertionError("an unknown kind must raise")
