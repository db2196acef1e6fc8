"""The Gaussian world's closed forms against Monte Carlo, and its identities."""
import copy

import pytest
import torch

from asvae_lib import objectives
from asvae_lib.gaussian_world import GaussianWorld, WorldAsModel, exact_posterior, play, ppca_maximum_likelihood
from asvae_lib.gaussians import kl

N = 200_000


@pytest.fixture
def world():
    C = torch.tensor([[2.0, 0.6, 0.1], [0.6, 1.0, -0.3], [0.1, -0.3, 0.5]])
    return GaussianWorld.random(torch.tensor([0.5, -0.2, 1.0]), C, K=2, seed=3)


def close_to_mc(exact, samples, k=4.0):
    """Monte Carlo mean within k standard errors of the closed form."""
    se = samples.std() / len(samples) ** 0.5
    return abs(samples.mean() - exact) < k * se


@torch.no_grad()
def test_shapes_of_samples_and_pairs(world):
    g = torch.Generator().manual_seed(0)
    for pos, neg in (world.f_pairs(5, g), world.h_pairs(5, g), world.ali_pairs(5, g)):
        for x, z in (pos, neg):
            assert x.shape == (5, 3) and z.shape == (5, 2)


@torch.no_grad()
def test_reconstructions_and_encoder_kl_match_monte_carlo(world):
    g = torch.Generator().manual_seed(1)
    x = world.sample_data(N, g)
    z = world.encode(x, g)
    assert close_to_mc(world.reconstruction_x(), world.decoder_log_prob(x, z))
    zp = world.sample_prior(N, g)
    xp = world.decode(zp, g)
    assert close_to_mc(world.reconstruction_z(), world.encoder_log_prob(zp, xp))
    log_ratio = world.encoder_log_prob(z, x) - world.prior().log_prob(z)
    assert close_to_mc(world.encoder_kl(), log_ratio)


@torch.no_grad()
def test_conditional_densities_match_the_joints(world):
    g = torch.Generator().manual_seed(2)
    x = world.sample_data(50, g)
    z = world.encode(x, g)
    xz = torch.cat([x, z], -1)
    torch.testing.assert_close(world.encoder_joint().log_prob(xz),
                               world.data().log_prob(x) + world.encoder_log_prob(z, x))
    torch.testing.assert_close(world.decoder_joint().log_prob(xz),
                               world.prior().log_prob(z) + world.decoder_log_prob(x, z))


@torch.no_grad()
def test_pair_samplers_draw_from_the_right_marginals(world):
    """(5) negatives have x ~ p_theta(x); (6) negatives have z ~ q_phi(z)."""
    g = torch.Generator().manual_seed(3)
    (_, _), (x_neg, _) = world.f_pairs(N, g)
    (_, _), (_, z_neg) = world.h_pairs(N, g)
    assert torch.allclose(torch.cov(x_neg.T), world.model().cov, atol=0.05)
    assert torch.allclose(torch.cov(z_neg.T), world.aggregated_posterior().cov, atol=0.05)
    assert torch.allclose(z_neg.mean(0), world.aggregated_posterior().mean, atol=0.02)


@torch.no_grad()
def test_the_identities_of_the_symmetric_bound(world):
    torch.testing.assert_close(world.elbo(), -kl(world.encoder_joint(), world.decoder_joint()) - world.data().entropy())
    kl_x = kl(world.data(), world.model())
    torch.testing.assert_close(world.L_x(), world.elbo() - kl_x)       # E_q f* = KL(q || p_theta)
    h_mean = kl(world.prior(), world.aggregated_posterior())            # E_p h* = KL(p || q_phi)
    torch.testing.assert_close(world.L_z(), world.reconstruction_z() - world.decoder_kl_to_data() - h_mean)
    t = world.symmetric_terms()
    rebuilt = (t["reconstruction of x"] + t["reconstruction of z"] - t["I_q(x;z)"] - t["I_p(x;z)"]
               - t["KL_sym(x)"] - t["KL_sym(z)"])
    torch.testing.assert_close(world.L_x() + world.L_z(), rebuilt)


@torch.no_grad()
def test_optimal_discriminator_means_are_the_kls(world):
    g = torch.Generator().manual_seed(4)
    x = world.sample_data(N, g)
    assert close_to_mc(kl(world.data(), world.model()), world.f_star(x))
    z = world.sample_prior(N, g)
    assert close_to_mc(kl(world.prior(), world.aggregated_posterior()), world.h_star(None, z))


@torch.no_grad()
def test_decoder_kl_to_data_matches_monte_carlo(world):
    g = torch.Generator().manual_seed(5)
    z = world.sample_prior(N, g)
    x = world.decode(z, g)
    assert close_to_mc(world.decoder_kl_to_data(), world.decoder_log_prob(x, z) - world.data().log_prob(x))


def test_plug_in_estimate_with_optimal_discriminators_is_unbiased(world):
    """(11) with f*, h* and kl_weight 1: x-half = L_x, z-half = L_z + E_p KL(p(x|z)||q(x))."""
    g = torch.Generator().manual_seed(6)
    with torch.no_grad():
        x_half, z_half = world.symmetric_bound_estimate(world.f_star, world.h_star, N, kl_weight=1.0, generator=g)
        # tolerance: the per-sample std of either half is below 2 here, so 4 standard errors < 0.02
        assert abs(x_half - world.L_x()) < 0.03
        assert abs(z_half - (world.L_z() + world.decoder_kl_to_data())) < 0.03


@torch.no_grad()
def test_plug_in_estimate_is_the_library_objective_11(world):
    """Without the KL term the world's estimate is objectives' (11) itself, draw for draw."""
    x_half, z_half = world.symmetric_bound_estimate(world.f_star, world.h_star, 500, kl_weight=0.0,
                                                    generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    model = WorldAsModel(world, world.f_star, world.h_star, generator=g)
    loss = objectives.generator_loss(model, world.sample_data(500, g), "asvae", kl_weight=0.0)
    torch.testing.assert_close(x_half + z_half, -loss, rtol=1e-15, atol=1e-15)


def test_gradients_of_closed_forms_match_finite_differences(world):
    params = world.encoder_parameters() + world.decoder_parameters()
    objective = lambda: world.L_x() + world.L_z()
    grads = torch.autograd.grad(objective(), params)
    eps = 1e-6
    for p, gr in zip(params, grads):
        with torch.no_grad():
            flat = p.view(-1)
            flat[0] += eps
            up = objective()
            flat[0] -= 2 * eps
            down = objective()
            flat[0] += eps
        assert abs((up - down) / (2 * eps) - gr.view(-1)[0]) < 1e-5


def test_ppca_solution_with_its_exact_posterior_matches_the_joints():
    """A PPCA-shaped covariance is fitted exactly; then both joints coincide."""
    W0 = torch.tensor([[1.5, 0.0], [0.5, 1.0], [0.0, -0.7], [0.3, 0.2]], dtype=torch.float64)
    C = W0 @ W0.T + 0.1 * torch.eye(4, dtype=torch.float64)
    W, s2 = ppca_maximum_likelihood(C, K=2)
    torch.testing.assert_close(W @ W.T + s2 * torch.eye(4, dtype=torch.float64), C)
    m = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    A, c, S = exact_posterior(W, m, s2)
    assert torch.allclose(S, torch.diag(torch.diagonal(S)), atol=1e-12)   # orthogonal columns -> diagonal
    w = GaussianWorld(m, C, W, m, s2, A, c, torch.diagonal(S))
    with torch.no_grad():
        assert kl(w.encoder_joint(), w.decoder_joint()) < 1e-10
        torch.testing.assert_close(w.L_x() + w.L_z(), -(w.data().entropy() + w.prior().entropy()))


def test_cumulative_bound_halves_are_L_x_and_L_z_plus_what_10_leaves_out(world):
    with torch.no_grad():
        x_half, z_half = world.cumulative_bound(kl_weight=1.0)
        torch.testing.assert_close(x_half, world.L_x())
        torch.testing.assert_close(z_half, world.L_z() + world.decoder_kl_to_data())
        x_letter, _ = world.cumulative_bound(kl_weight=0.0)
        torch.testing.assert_close(x_letter - x_half, world.encoder_kl())


def test_ascend_on_the_elbo_reaches_ppca_maximum_likelihood():
    """With K=1 the Gaussian encoder can be the exact posterior, so the ELBO's
    optimum is the maximum-likelihood PPCA fit (Tipping & Bishop)."""
    from asvae_lib.gaussian_world import ascend
    C = torch.tensor([[3.0, 0.8, 0.2], [0.8, 1.0, 0.1], [0.2, 0.1, 0.4]], dtype=torch.float64)
    w = GaussianWorld.random(torch.zeros(3), C, K=1, seed=0)
    history = ascend(w, lambda v: v.elbo(), steps=3000, lr=0.03)
    assert history[-1] > history[0]
    W_ml, s2_ml = ppca_maximum_likelihood(C, K=1)
    with torch.no_grad():
        torch.testing.assert_close(w.model().cov, W_ml @ W_ml.T + s2_ml * torch.eye(3, dtype=torch.float64),
                                   atol=1e-3, rtol=0)


def _flat_grad(value, params):
    return torch.cat([g.flatten() for g in torch.autograd.grad(value, params)])


@pytest.mark.parametrize("reading", ["A", "B"])
def test_at_the_optimal_discriminators_each_reading_follows_its_closed_form(world, reading):
    """Chapter 4, section 10: (11) at f*, h* ascends `reconstructions` (reading A), and with the
    fooling losses `reading_b_objective` (reading B, lam 2); the Monte Carlo gradient of the
    library's generator loss against the closed form (JSDs by quadrature)."""
    frozen = copy.deepcopy(world).requires_grad_(False)
    params = world.decoder_parameters() + world.encoder_parameters()
    model = WorldAsModel(world, frozen.f_star, frozen.h_star, generator=torch.Generator().manual_seed(0))
    x = world.sample_data(100_000, model.generator)
    mc = _flat_grad(-objectives.generator_loss(model, x, "asvae", reading=reading, lam=2.0), params)
    exact = _flat_grad(world.reconstructions() if reading == "A" else world.reading_b_objective(2.0), params)
    other = _flat_grad(world.reading_b_objective(2.0) if reading == "A" else world.reconstructions(), params)
    assert (mc - exact).norm() < 0.03 * exact.norm()
    assert (mc - other).norm() > 0.1 * other.norm()      # the two readings' gradients differ here


@pytest.mark.parametrize("discriminators", ["optimal", "quadratic"])
def test_the_game_runs_under_both_readings_and_lam_zero_is_reading_a(world, discriminators):
    ends = {}
    for reading, lam in (("A", 1.0), ("B", 0.0), ("B", 1.0)):
        w = copy.deepcopy(world)
        play(w, reading, lam, discriminators, steps=20, lr=0.01, n=256, disc_steps=2)
        ends[reading, lam] = torch.cat([p.detach().flatten() for p in w.parameters()])
    assert torch.equal(ends["A", 1.0], ends["B", 0.0])
    assert not torch.allclose(ends["A", 1.0], ends["B", 1.0])
    with pytest.raises(ValueError, match="optimal"):
        play(copy.deepcopy(world), discriminators="trained")
