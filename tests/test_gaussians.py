"""Closed-form Gaussian formulas against Monte Carlo and against torch.distributions."""
import math

import torch
from torch.distributions import MultivariateNormal, Normal

from asvae_lib.gaussians import (
    Gaussian,
    cross_entropy,
    jsd,
    kl,
    normal_log_density,
    normal_log_prob,
    standard_normal,
)


def _pair():
    p = Gaussian(torch.tensor([0.3, -1.0], dtype=torch.float64),
                 torch.tensor([[1.5, 0.4], [0.4, 0.7]], dtype=torch.float64))
    q = Gaussian(torch.tensor([-0.2, 0.5], dtype=torch.float64),
                 torch.tensor([[0.9, -0.2], [-0.2, 1.3]], dtype=torch.float64))
    return p, q


def test_log_prob_and_entropy_match_torch_distributions():
    p, _ = _pair()
    ref = MultivariateNormal(p.mean, p.cov)
    x = torch.randn(7, 2, dtype=torch.float64)
    torch.testing.assert_close(p.log_prob(x), ref.log_prob(x))
    torch.testing.assert_close(p.entropy(), ref.entropy())


def test_kl_matches_torch_and_monte_carlo():
    p, q = _pair()
    exact = kl(p, q)
    ref = torch.distributions.kl_divergence(MultivariateNormal(p.mean, p.cov), MultivariateNormal(q.mean, q.cov))
    torch.testing.assert_close(exact, ref)
    x = p.sample(200_000, torch.Generator().manual_seed(0))
    terms = p.log_prob(x) - q.log_prob(x)
    se = terms.std() / len(terms) ** 0.5
    assert abs(terms.mean() - exact) < 4 * se


def test_cross_entropy_is_entropy_plus_kl_and_kl_of_self_is_zero():
    p, q = _pair()
    torch.testing.assert_close(cross_entropy(p, q), p.entropy() + kl(p, q))
    assert abs(kl(p, p).item()) < 1e-12
    assert kl(p, q) > 0 and kl(q, p) > 0 and abs(kl(p, q) - kl(q, p)) > 1e-3   # not symmetric


def test_samples_have_the_right_moments_and_marginal_slices():
    p, _ = _pair()
    x = p.sample(100_000, torch.Generator().manual_seed(1))
    assert torch.allclose(x.mean(0), p.mean, atol=0.02)
    assert torch.allclose(torch.cov(x.T), p.cov, atol=0.03)
    m = p.marginal(slice(1, 2))
    assert m.mean.shape == (1,) and m.cov.shape == (1, 1) and m.cov[0, 0] == p.cov[1, 1]
    assert torch.equal(standard_normal(3).cov, torch.eye(3, dtype=torch.float64))


def test_the_diagonal_log_density_matches_torch_distributions_in_float64():
    """The one diagonal-Gaussian density every module uses (encoders, decoders, prior, the world)."""
    g = torch.Generator().manual_seed(2)
    y, mean, log_var = torch.randn(3, 7, 4, dtype=torch.float64, generator=g)
    ref = Normal(mean, (0.5 * log_var).exp()).log_prob(y)
    torch.testing.assert_close(normal_log_density(y, mean, log_var), ref, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(normal_log_prob(y, mean, log_var), ref.sum(-1), rtol=1e-14, atol=1e-14)
    iso = torch.tensor(0.3, dtype=torch.float64)           # a scalar log-variance: N(mean, e^0.3 I)
    torch.testing.assert_close(normal_log_prob(y, mean, iso), Normal(mean, (0.5 * iso).exp()).log_prob(y).sum(-1),
                               rtol=1e-14, atol=1e-14)
    assert normal_log_prob(y, mean, log_var).dtype == torch.float64
    assert normal_log_prob(y.float(), mean.float(), log_var.float()).dtype == torch.float32


def test_jsd_by_quadrature_matches_monte_carlo_and_its_bounds():
    t = lambda v: torch.tensor(v, dtype=torch.float64)
    p = Gaussian(t([0.0, 1.0]), t([[1.0, 0.3], [0.3, 0.5]]))
    q = Gaussian(t([0.5, -0.5]), t([[2.0, 0.0], [0.0, 1.0]]))
    g = torch.Generator().manual_seed(0)
    n = 400_000

    def half(a, b):                       # 1/2 E_a log(a / m), by sampling
        x = a.sample(n, g)
        log_m = torch.logaddexp(a.log_prob(x), b.log_prob(x)) - math.log(2)
        v = a.log_prob(x) - log_m
        return 0.5 * v.mean(), 0.5 * v.std() / n ** 0.5

    (h1, s1), (h2, s2) = half(p, q), half(q, p)
    value = jsd(p, q)
    assert abs(value - (h1 + h2)) < 4 * (s1 ** 2 + s2 ** 2) ** 0.5
    assert abs(jsd(p, p)) < 1e-9 and 0.1 < value < math.log(2)
    assert abs(value - jsd(q, p)) < 1e-9
