"""evaluate.py: the importance-weighted bound against an exact log-likelihood, bits per
dimension, RMSE and time per image.

The exact ``log p(x)`` comes from a model with a one-dimensional code, ``z_dim = 1``:
``p(x) = int p(x|z) N(z; 0, 1) dz`` by quadrature on a fine grid, so the bound of
Burda et al. can be checked against the number it bounds, not only against itself.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from asvae_lib import evaluate, objectives
from asvae_lib.models import mlp_asvae

X_DIM, N = 6, 200


def tiny_model(flow_length: int, seed: int = 0) -> torch.nn.Module:
    """A random Bernoulli-decoder model with z_dim = 1, its encoder made a poor but valid proposal.

    * decoder weights x3: a likelihood sharp enough that the posterior differs clearly from
      the prior, so a mismatched encoder leaves a visible k = 1 gap;
    * encoder mean x2 (still random), encoder log-variance fixed to log 1.5^2: the base of
      q is then wider than the posterior's Gaussian tails (which are the prior's, N(0, 1):
      the decoder's logits grow at most linearly in |z|), and a planar flow in 1-D only
      rescales by a bounded slope, tending to 1 far out. So E_q[w^2] is finite, the
      importance weights have finite variance and the bound converges at rate 1/k
      (a narrower random q gives infinite-variance weights: the IWAE bound would still
      be a bound, but it would crawl towards log p(x) and no tolerance would be fair);
    * flow parameters ~ N(0, 1), far from the identity, so the flow's log-det matters.
    """
    torch.manual_seed(seed)
    model = mlp_asvae(X_DIM, 1, hidden=16, depth=1, flow_length=flow_length, bernoulli=True)
    with torch.no_grad():
        for p in model.decoder.net.parameters():
            p.mul_(3.0)
        last = model.encoder.net[-1]                 # outputs [mean, log_var]
        last.weight[:1] *= 2.0
        last.weight[1:] = 0.0
        last.bias[1:] = 2 * math.log(1.5)
        if flow_length:
            flow = model.encoder.flow
            for p in (flow.u, flow.w, flow.b):
                p.normal_()
    return model


@torch.no_grad()
def data_from(model, n: int = N, seed: int = 1) -> torch.Tensor:
    """Binary images drawn from the model itself: z ~ N(0, 1), x ~ Bernoulli(sigmoid(logits(z)))."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 1, generator=g)
    return torch.bernoulli(torch.sigmoid(model.decoder.net(z)), generator=g)


@torch.no_grad()
def exact_log_px(model, x: torch.Tensor, points: int = 16001) -> torch.Tensor:
    """``log int p(x|z) N(z; 0, 1) dz`` on a uniform grid over [-8, 8], in float64.

    The prior mass outside [-8, 8] is ~1e-15 and p(x|z) <= 1, so truncation costs nothing;
    the integrand is smooth and negligible at the ends, where the Riemann sum is the
    trapezoid rule, which converges fast (checked below against a 4x coarser grid).
    The Bernoulli log-likelihood is written out here, not taken from the library.
    """
    z = torch.linspace(-8, 8, points, dtype=torch.float64)
    logits = model.decoder.net(z[:, None].float()).double()            # (points, D)
    xd = x.double()
    log_px_z = xd @ F.logsigmoid(logits).T + (1 - xd) @ F.logsigmoid(-logits).T   # (N, points)
    log_joint = log_px_z - 0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    return torch.logsumexp(log_joint, 1) + math.log(z[1] - z[0])


def mean_and_se(t: torch.Tensor):
    t = t.double()
    return t.mean().item(), (t.std() / math.sqrt(len(t))).item()


def repeated_bound(model, x, k: int, repeats: int) -> torch.Tensor:
    """The bound of each image averaged over ``repeats`` independent draws, shape (N,)."""
    return evaluate.log_likelihood_bound(model, x.repeat(repeats, 1), k).reshape(repeats, len(x)).mean(0)


def check_bound_against_exact(model, x, gap_at_1: float):
    exact = exact_log_px(model, x)
    assert (exact - exact_log_px(model, x, 4001)).abs().max() < 1e-4     # the quadrature has converged
    assert torch.all(exact < 0)                                           # log of a probability mass

    torch.manual_seed(2)
    # k = 1 and k = 10 averaged over 20 draws per image: their Monte Carlo error would
    # otherwise hide the k = 10 -> 1000 step, which is a few hundredths of a nat
    bounds = {1: repeated_bound(model, x, 1, 20), 10: repeated_bound(model, x, 10, 20),
              1000: evaluate.log_likelihood_bound(model, x, 1000),
              5000: evaluate.log_likelihood_bound(model, x, 5000)}
    gaps = {k: mean_and_se(exact - b.double()) for k, b in bounds.items()}

    # a lower bound: the mean gap is >= 0 up to 3 standard errors, at every k
    for k, (gap, se) in gaps.items():
        assert gap > -3 * se, (k, gaps)
    # the k = 1 bound (the ELBO) is clearly loose for this mismatched encoder
    assert gaps[1][0] > gap_at_1 and gaps[1][0] > 5 * gaps[1][1], gaps
    # it tightens with k: each step up is significant on the paired per-image differences
    for lo, hi in ((1, 10), (10, 1000)):
        step, se = mean_and_se(bounds[hi].double() - bounds[lo].double())
        assert step > 3 * se, (lo, hi, step, se, gaps)
    # at k = 5000 it is within 0.01 nats, or 4 of its standard errors, of the exact value, and
    # never more than 0.05 away. The bias of the bound is about Var(w) / (2 k E[w]^2) (delta
    # method), ~1e-4 nats without the flow; the Monte Carlo error of the mean over 200 images
    # is 1e-3 (no flow) to 1e-2 (the random flow, whose q is far from the posterior: its k = 1
    # gap is 8.6 nats), while the k = 1 gap is >100x larger. A bound missing its -log k
    # (8.5 nats), or weights paired with the wrong image, misses it by far more.
    gap, se = gaps[5000]
    assert abs(gap) < min(max(0.01, 4 * se), 0.05), gaps
    return bounds


def test_iwae_bound_is_below_and_converges_to_exact_log_likelihood():
    model = tiny_model(flow_length=0)
    x = data_from(model)
    check_bound_against_exact(model, x, gap_at_1=1.0)


def test_iwae_bound_with_a_planar_flow_encoder():
    """q(z|x) = flow(N(mu, sigma^2)): its density must include the flow's log-det
    (a wrong sign or a missing term shows up as a 'bound' above log p(x) or a wrong limit)."""
    model = tiny_model(flow_length=3)
    x = data_from(model)
    check_bound_against_exact(model, x, gap_at_1=1.0)


def test_k1_bound_is_the_elbo_of_objectives():
    model = tiny_model(flow_length=3)
    x = data_from(model)
    # the same draws: same seed, same calls (encoder on x, then decoder) -> the same numbers
    torch.manual_seed(5)
    bound = evaluate.log_likelihood_bound(model, x, 1)
    torch.manual_seed(5)
    elbo = objectives.elbo(model, x)
    assert bound.shape == (N,)
    assert bound.mean().item() == pytest.approx(elbo.item(), abs=1e-5)
    # independent draws: equal in expectation, within 4 standard errors of the difference
    torch.manual_seed(6)
    many = evaluate.log_likelihood_bound(model, x.repeat(10, 1), 1)
    torch.manual_seed(7)
    elbos = torch.stack([objectives.elbo(model, x).detach() for _ in range(10)])
    m1, se1 = mean_and_se(many)              # the ELBO's mean has the same spread and count
    assert abs(m1 - elbos.mean().item()) < 4 * math.sqrt(2) * se1


def test_bound_restores_training_mode_and_chunks_consistently():
    model = tiny_model(flow_length=0)
    x = data_from(model, n=30)
    model.train()
    torch.manual_seed(3)
    whole = evaluate.log_likelihood_bound(model, x, 7, batch_size=10_000)
    torch.manual_seed(3)
    chunked = evaluate.log_likelihood_bound(model, x, 7, batch_size=7 * 4)   # chunks of 4 images
    assert model.training
    assert whole.shape == chunked.shape == (30,)
    # different draws per chunk, so equal only in distribution: each is a bound on the same
    # exact values, and the two agree within Monte Carlo error, image by image on average
    exact = exact_log_px(model, x)
    for b in (whole, chunked):
        gap, se = mean_and_se(exact - b.double())
        assert gap > -3 * se
    diff, se = mean_and_se(whole.double() - chunked.double())
    assert abs(diff) < 4 * se


def test_bits_per_dim_by_hand():
    # a uniform density on [0, 1)^D: continuous NLL 0, and every 8-bit image has P = 256^-D
    for dim in (1, 784, 3072):
        assert evaluate.bits_per_dim(0.0, dim) == pytest.approx(8.0, rel=1e-12)
    # a density constant on each of the 256 bins of each pixel: p(y) = 256 P(x) inside x's
    # bin, so the bound is tight and bits/dim is exactly -log2 P(x) / D
    probs = torch.tensor([[0.5, 0.25, 0.25], [0.01, 0.5, 0.49]], dtype=torch.float64)  # P(bin) of 2 pixels
    P = probs[0, 1] * probs[1, 0]                          # image: pixel 0 in bin 1, pixel 1 in bin 0
    continuous_nll = -math.log(256 * probs[0, 1]) - math.log(256 * probs[1, 0])
    assert evaluate.bits_per_dim(continuous_nll, 2) == pytest.approx(-math.log2(P) / 2, rel=1e-12)
    # and the formula itself for one case
    nll, dim = 1234.5, 3072
    expected = (nll + dim * math.log(256)) / (dim * math.log(2))
    assert evaluate.bits_per_dim(nll, dim) == pytest.approx(expected, rel=1e-12)


def test_rmse_of_exact_and_offset_reconstructions(monkeypatch):
    model = mlp_asvae(X_DIM, 2, hidden=8, depth=1)
    x = torch.rand(37, X_DIM)                 # 37 rows in chunks of 10: the last chunk is short
    monkeypatch.setattr(model, "reconstruct", lambda v: v)
    assert evaluate.rmse(model, x, batch_size=10) == 0.0
    monkeypatch.setattr(model, "reconstruct", lambda v: v + 0.1)
    assert evaluate.rmse(model, x, batch_size=10) == pytest.approx(0.1, rel=1e-5)
    monkeypatch.setattr(model, "reconstruct", lambda v: torch.zeros_like(v))
    assert evaluate.rmse(model, x, batch_size=10) == pytest.approx(x.pow(2).mean().sqrt().item(), rel=1e-5)


def test_rmse_of_a_real_model_is_in_range():
    model = mlp_asvae(X_DIM, 2, hidden=8, depth=1, bernoulli=True)
    x = torch.rand(20, X_DIM)
    model.train()
    r = evaluate.rmse(model, x)
    assert 0 < r < 1 and model.training       # sigmoid means and pixels both in [0, 1]


def test_seconds_per_image_is_positive_and_finite():
    model = mlp_asvae(X_DIM, 2, hidden=8, depth=1, bernoulli=True)
    s = evaluate.seconds_per_image(model, n=50, batch_size=20)
    assert math.isfinite(s) and 0 < s < 1


def test_bounds_from_one_set_of_draws():
    """At the largest k the shared bound is the single-k bound on the same draws; at a smaller k it
    averages disjoint blocks: the same bound in expectation, with a smaller spread per image."""
    model = tiny_model(flow_length=3)
    x = data_from(model)[:50]
    torch.manual_seed(3)
    shared = evaluate.log_likelihood_bounds(model, x, (10, 400), batch_size=400)
    torch.manual_seed(3)
    torch.testing.assert_close(shared[400], evaluate.log_likelihood_bound(model, x, 400, batch_size=400))
    single = torch.stack([evaluate.log_likelihood_bound(model, x, 10) for _ in range(40)])     # (40, n)
    gap, se = mean_and_se(shared[10].double() - single.mean(0).double())
    assert abs(gap) < 4 * se + 1e-3, (gap, se)
    again = torch.stack([evaluate.log_likelihood_bounds(model, x, (10, 400))[10] for _ in range(8)])
    # 40 blocks of 10 draws: about 1/40 of a single k = 10 bound's variance, image by image
    assert (again.var(0).mean() / single.var(0).mean()).item() < 1 / 10
    with pytest.raises(ValueError, match="divide"):
        evaluate.log_likelihood_bounds(model, x, (3, 10))
