"""Lemma 1 in the library: the objective (4), the discriminators, their training."""
import math

import torch
from torch import nn

from asvae_lib.density_ratio import (
    MLPDiscriminator,
    QuadraticDiscriminator,
    logistic_objective,
    mlp,
    ratio_rmse,
    train_discriminator,
)
from asvae_lib.gaussians import Gaussian


def test_logistic_objective_by_hand():
    pos, neg = torch.tensor([0.0, 2.0]), torch.tensor([-1.0])
    sig = lambda t: 1 / (1 + math.exp(-t))
    by_hand = 0.5 * (math.log(sig(0.0)) + math.log(sig(2.0))) + math.log(1 - sig(-1.0))
    assert abs(logistic_objective(pos, neg).item() - by_hand) < 1e-6


def test_logistic_objective_is_stable_for_huge_logits():
    value = logistic_objective(torch.tensor([1e4]), torch.tensor([-1e4]))
    assert torch.isfinite(value) and abs(value) < 1e-6


def test_discriminators_take_pairs_and_return_one_logit_per_row():
    x, z = torch.randn(4, 3), torch.randn(4, 2)
    assert MLPDiscriminator(5)(x, z).shape == (4,)
    assert QuadraticDiscriminator(5)(x, z).shape == (4,)
    assert QuadraticDiscriminator(5).linear.in_features == 5 + 15


def test_one_mlp_builder_keeps_each_network_s_layers():
    """Seeded runs and stored weights rely on these exact layer sequences."""
    assert [type(m) for m in MLPDiscriminator(5, hidden=8).net] == [nn.Linear, nn.SiLU, nn.Dropout] * 2 + [nn.Linear]
    net = mlp(3, 4, hidden=8, depth=2)
    assert [type(m) for m in net] == [nn.Linear, nn.LeakyReLU, nn.Dropout] * 2 + [nn.Linear]
    assert net[1].negative_slope == 0.2 and net[-1].out_features == 4


def test_quadratic_discriminator_recovers_a_gaussian_log_ratio():
    """Well specified: with many samples the learned logit is the true log ratio."""
    g = torch.Generator().manual_seed(0)
    p = Gaussian(torch.tensor([0.0, 0.0], dtype=torch.float64), torch.eye(2, dtype=torch.float64))
    q = Gaussian(torch.tensor([1.0, -0.5], dtype=torch.float64),
                 torch.tensor([[0.6, 0.2], [0.2, 1.4]], dtype=torch.float64))
    n = 20_000
    disc = QuadraticDiscriminator(2)
    history = train_discriminator(disc, (p.sample(n, g),), (q.sample(n, g),), steps=300,
                                  batch_size=4000, lr=0.1, progress=False)
    assert history[-1] > history[0]                  # the objective (4) went up
    u = torch.cat([p.sample(2000, g), q.sample(2000, g)])
    with torch.no_grad():
        err = ratio_rmse(disc(u), p.log_prob(u) - q.log_prob(u))
    assert err < 0.15, err


def test_training_is_reproducible_with_a_seed():
    pos, neg = (torch.randn(200, 2),), (torch.randn(200, 2) + 1,)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        d = MLPDiscriminator(2, hidden=8)
        train_discriminator(d, pos, neg, steps=20, batch_size=32, progress=False, seed=1)
        runs.append(d(torch.ones(1, 2)).item())
    assert runs[0] == runs[1]


def test_annealing_removes_minibatch_noise_from_the_final_discriminator():
    """Two runs that differ only in their minibatches end closer together when annealed."""
    g = torch.Generator().manual_seed(0)
    pos, neg = (torch.randn(5000, 2, generator=g),), (torch.randn(5000, 2, generator=g) * 1.5 + 1,)
    spread = {}
    for anneal in (False, True):
        finals = []
        for seed in (0, 1):
            d = QuadraticDiscriminator(2)
            train_discriminator(d, pos, neg, steps=200, batch_size=250, lr=0.1, seed=seed, progress=False,
                                anneal=anneal)
            finals.append(torch.cat([p.detach().flatten() for p in d.parameters()]))
        spread[anneal] = (finals[0] - finals[1]).norm().item()
    assert spread[True] < 0.5 * spread[False], spread
