"""The 2-D mixture data and the measures of chapter 6, on cases with known answers."""
import math

import torch

from asvae_lib import metrics2d as M
from asvae_lib.models import mlp_asvae


def test_centres():
    grid = M.grid_centres(5, 2.0)
    assert grid.shape == (25, 2) and torch.allclose(grid.mean(0), torch.zeros(2))
    assert grid.min() == -4.0 and grid.max() == 4.0
    ring = M.ring_centres(8, 2.0)
    assert torch.allclose(ring.norm(dim=1), torch.full((8,), 2.0))


def test_mixture_draws_sit_on_their_modes():
    centres = M.grid_centres(3, 1.0)
    x, labels = M.sample_mixture(centres, 0.01, 900, torch.Generator().manual_seed(0))
    assert x.shape == (900, 2) and set(labels.tolist()) == set(range(9))
    assert ((x - centres[labels]).norm(dim=1) < 0.06).all()


def test_mode_coverage_counts_modes_and_good_samples():
    centres = M.grid_centres(2, 4.0)                       # four modes, far apart
    on_two = torch.cat([centres[0].expand(50, 2), centres[1].expand(30, 2)])
    off = torch.zeros(20, 2)                               # the origin: 2.8 from every centre
    cov = M.mode_coverage(torch.cat([on_two, off]), centres, std=0.1)
    assert cov["modes"] == 2 and abs(cov["good"] - 0.8) < 1e-6
    assert cov["counts"].tolist() == [50, 30, 0, 0]
    # a mode needs min_fraction of its fair share (here 100 / 4 = 25): 30 is enough at 1.0, not at 1.3
    assert M.mode_coverage(torch.cat([on_two, off]), centres, 0.1, min_fraction=1.3)["modes"] == 1
    # data drawn from the mixture itself: every mode covered, and within 3 std of its centre
    # with probability 1 - e^(-9/2) = 0.989 (the radius of a 2-D standard normal is Rayleigh)
    x, _ = M.sample_mixture(centres, 0.1, 4000, torch.Generator().manual_seed(1))
    cov = M.mode_coverage(x, centres, 0.1)
    assert cov["modes"] == 4 and abs(cov["good"] - (1 - math.exp(-4.5))) < 0.01


def test_reconstruction_error():
    x = torch.zeros(3, 2)
    assert M.reconstruction_error(x, x + torch.tensor([3.0, 4.0])) == 25.0


def test_moment_kl_to_standard():
    g = torch.Generator().manual_seed(0)
    assert M.moment_kl_to_standard(torch.randn(20000, 2, generator=g)) < 1e-3
    z = torch.randn(20000, 2, generator=g) * 2.0 + 1.0     # N(1, 4 I): KL = (tr 4I + 1^T 1 - 2 - log 16) / 2
    assert abs(M.moment_kl_to_standard(z) - (8 - math.log(16)) / 2) < 0.05


def test_mmd_rbf():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1000, 2, generator=g), torch.randn(1000, 2, generator=g)
    same, shifted = M.mmd_rbf(a, b), M.mmd_rbf(a, b + 1.0)
    assert abs(same) < 0.01 and shifted > 0.2


def test_encoder_log_var_init():
    torch.manual_seed(0)
    default = mlp_asvae(2, 2, hidden=8)
    torch.manual_seed(0)
    narrow = mlp_asvae(2, 2, hidden=8, encoder_log_var_init=-5.0)
    assert torch.equal(default.encoder.net[-1].bias, torch.zeros(4))
    assert narrow.encoder.net[-1].bias.tolist() == [0.0, 0.0, -5.0, -5.0]
    same = [torch.equal(p, q) for p, q in zip(default.parameters(), narrow.parameters())]
    assert sum(not s for s in same) == 1                  # only that bias differs
