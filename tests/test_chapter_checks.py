"""The checks chapters 8 and 9 make, fed broken inputs: each must fail when its claim is false.

* :func:`evaluate.check_bound` (Jensen's inequality of the dequantised bound) passes for the
  true bound and fails for one that forgets the ``D log 256`` of the change of variables;
* :func:`evaluate.check_beats` (a model learned more than a baseline) fails for a model that
  is the baseline itself, or worse;
* :func:`evaluate.discrete_nll` is a probability: the bins of one pixel hold the mass of [0, 1);
* the conv networks start with the decoder variance their experiment names.
"""
import math

import pytest
import torch

from asvae_lib import data, evaluate, experiments

D = 48


@pytest.fixture(scope="module")
def images():
    """Smooth 8-bit images: a shared random level per image plus pixel noise (train, test)."""
    g = torch.Generator().manual_seed(0)
    level = torch.rand(1200, 1, generator=g) * 0.6 + 0.2
    x = ((level + 0.1 * torch.randn(1200, D, generator=g)).clamp(0, 0.999) * 256).to(torch.uint8)
    return x[:1000], x[1000:]


def bits(nats):
    return nats / (D * math.log(2))


def test_jensen_check_passes_for_the_bound_and_fails_without_the_log_256(images):
    train, test = images
    gauss = evaluate.pixel_gaussian(train)
    exact = bits(evaluate.discrete_nll(gauss, test))
    y = data.fixed_dequantize(test, 1).double()
    bound = evaluate.bits_per_dim(-gauss.log_prob(y).sum(1), D)
    gap, se = evaluate.check_bound(exact, bound)
    assert 0 < se < 1e-3 and abs(gap) < 1e-3
    forgot_256 = bits(-gauss.log_prob(y).sum(1))                 # 8 bits/dim too low
    with pytest.raises(AssertionError, match="not an upper bound"):
        evaluate.check_bound(exact, forgot_256)


def test_beats_check_fails_for_the_baseline_itself_and_passes_for_a_better_model(images):
    train, test = images
    gauss = evaluate.pixel_gaussian(train)
    exact = bits(evaluate.discrete_nll(gauss, test))
    with pytest.raises(AssertionError, match="does not beat"):
        evaluate.check_beats(exact, exact)
    with pytest.raises(AssertionError, match="does not beat"):
        evaluate.check_beats(exact + 0.01, exact)
    uniform = torch.full_like(exact, 8.0)                         # the Gaussian knows the level: beats uniform
    gain, se = evaluate.check_beats(exact, uniform)
    assert gain > 3 * se > 0
    with pytest.raises(AssertionError, match="does not beat"):
        evaluate.check_beats(uniform, exact)


def test_discrete_nll_is_a_probability_over_the_256_bins():
    f64 = dict(dtype=torch.float64)
    density = torch.distributions.Normal(torch.tensor([0.3], **f64), torch.tensor([0.2], **f64))
    x = torch.arange(256, dtype=torch.uint8)[:, None]
    mass = evaluate.discrete_nll(density, x).neg().exp().sum().item()
    assert mass == pytest.approx((density.cdf(torch.tensor(1.0)) - density.cdf(torch.tensor(0.0))).item(), rel=1e-9)
    two = torch.tensor([[10, 200]], dtype=torch.uint8)            # independent pixels: NLLs add
    pair = torch.distributions.Normal(torch.tensor([0.3, 0.3], **f64), torch.tensor([0.2, 0.2], **f64))
    assert evaluate.discrete_nll(pair, two).item() == pytest.approx(evaluate.discrete_nll(density, two.T).sum().item())


def test_pixel_gaussian_is_the_maximum_likelihood_fit():
    x = torch.randint(0, 256, (500, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    gauss = evaluate.pixel_gaussian(x, seed=3)
    y = data.fixed_dequantize(x, 3).double()
    assert torch.allclose(gauss.mean, y.mean(0)) and torch.allclose(gauss.stddev, y.std(0, correction=0))


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_conv_decoder_starts_at_its_log_variance(profile):
    spec = experiments.experiment("cifar10", profile)
    model = spec.build_model((3, 32, 32))
    assert torch.all(model.decoder.net.up[-1].bias[3:] == spec.model.decoder_log_var)
    assert torch.all(model.decoder.net.up[-1].bias[:3] == 0)
    old = dict(spec.to_dict(), model={"kind": "conv", "width": 16, "z_dim": 32})   # written before the field
    assert experiments.Experiment.from_dict(old).model.decoder_log_var == 0.0
