"""Each objective term on tiny inputs against values computed by hand."""
import math

import pytest
import torch
from torch import nn

from asvae_lib import objectives, pairs
from asvae_lib.models import ASVAE, BernoulliConditional, GaussianConditional, mlp_asvae


class Const(nn.Module):
    """A 'network' that ignores its input and returns fixed outputs."""

    def __init__(self, out):
        super().__init__()
        self.out = nn.Parameter(torch.as_tensor(out, dtype=torch.float32))

    def forward(self, *parts):
        return self.out.expand(parts[0].shape[0], *self.out.shape)


class Linear1(nn.Module):
    """A discriminator ``a * x + b * z`` on 1-D x and z."""

    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = nn.Parameter(torch.tensor(a)), nn.Parameter(torch.tensor(b))

    def forward(self, x, z):
        return (self.a * x + self.b * z).squeeze(-1)


def tiny_model(f=(0.5, 0.0), h=(0.0, -1.0)):
    # encoder q(z|x) = N(0, 1) whatever x; decoder p(x|z) = N(0, e^0) whatever z.
    enc = GaussianConditional(Const([0.0, 0.0]), dim=1)
    dec = GaussianConditional(Const([0.0, 0.0]), dim=1)
    return ASVAE(enc, dec, Linear1(*f), Linear1(*h), z_dim=1)


def normal_logpdf(v):
    return -0.5 * math.log(2 * math.pi) - 0.5 * v * v


def test_gaussian_conditional_log_prob_by_hand():
    enc = GaussianConditional(Const([1.0, math.log(4.0)]), dim=1)     # N(1, 4)
    y = torch.tensor([[3.0]])
    by_hand = -0.5 * math.log(2 * math.pi * 4.0) - (3.0 - 1.0) ** 2 / (2 * 4.0)
    assert abs(enc.log_prob(y, torch.zeros(1, 1)).item() - by_hand) < 1e-6


def test_bernoulli_log_prob_by_hand():
    dec = BernoulliConditional(Const([0.0, math.log(3.0)]))           # p = 0.5 and 0.75
    x = torch.tensor([[1.0, 0.2]])
    by_hand = math.log(0.5) + 0.2 * math.log(0.75) + 0.8 * math.log(0.25)
    assert abs(dec.log_prob(x, torch.zeros(1, 1)).item() - by_hand) < 1e-6
    assert torch.allclose(dec.rsample(torch.zeros(1, 1)), torch.tensor([[0.5, 0.75]]))


def test_x_half_and_z_half_by_hand():
    torch.manual_seed(0)
    model = tiny_model()
    x = torch.tensor([[1.0], [2.0]])
    torch.manual_seed(1)
    value = objectives.x_half(model, x, kl_weight=0.0)
    by_hand = (normal_logpdf(x) - 0.5 * x).mean()            # log p(x|z) - f(x, z), f = 0.5 x
    assert abs(value.item() - by_hand.item()) < 1e-6
    torch.manual_seed(1)
    with_kl = objectives.x_half(model, x, kl_weight=1.0)
    # log q(z|x) - log p(z) = 0 here (both N(0, 1)), so the KL term adds nothing
    assert abs(with_kl.item() - by_hand.item()) < 1e-6
    torch.manual_seed(2)
    zs = torch.randn(3, 1)                                   # the prior codes z_half will draw
    torch.manual_seed(2)
    value = objectives.z_half(model, 3)
    # log q(z|x_eps) = log N(z; 0, 1) whatever x_eps; h(x, z) = -z
    assert abs(value.item() - (normal_logpdf(zs) - (-zs)).mean().item()) < 1e-6


def test_discriminator_loss_is_minus_objective_4_by_hand():
    torch.manual_seed(0)
    model = tiny_model(f=(0.0, 0.0))                          # f = 0 everywhere: loss = 2 log 2
    losses = objectives.discriminator_loss(model, torch.randn(5, 1), "asvae-r")
    assert abs(losses["loss_f"].item() - 2 * math.log(2)) < 1e-6
    assert set(objectives.discriminator_loss(model, torch.randn(5, 1), "asvae")) == {"loss_f", "loss_h"}
    assert objectives.discriminator_loss(model, torch.randn(5, 1), "vae") == {}


def test_elbo_by_hand():
    model = tiny_model()
    x = torch.tensor([[0.5]])
    value = objectives.elbo(model, x)
    # log p(x|z) + log p(z) - log q(z|x), with q(z|x) = p(z): just log p(x|z) = log N(0.5; 0, 1)
    assert abs(value.item() - normal_logpdf(0.5)) < 1e-6


def test_pair_schemes_put_the_right_variables_together():
    x, z = torch.full((4, 1), 10.0), torch.full((4, 1), -10.0)
    enc = lambda v: v + 1            # "encoding" adds 1
    dec = lambda v: v * 2            # "decoding" doubles
    (px, pz), (nx, nz) = pairs.f_pairs(x, z, enc, dec)
    assert (px == 10).all() and (pz == 11).all() and (nx == -20).all() and (nz == -19).all()
    (px, pz), (nx, nz) = pairs.h_pairs(x, z, enc, dec)
    assert (px == -20).all() and (pz == -10).all() and (nx == 22).all() and (nz == 11).all()
    (px, pz), (nx, nz) = pairs.ali_pairs(x, z, enc, dec)
    assert (px == 10).all() and (pz == 11).all() and (nx == -20).all() and (nz == -10).all()


@pytest.mark.parametrize("method", objectives.METHODS)
def test_every_method_gives_finite_losses_with_flows(method):
    torch.manual_seed(0)
    model = mlp_asvae(3, 2, hidden=16, flow_length=3, joint_discriminator=method == "asvae-pathwise")
    x = torch.randn(8, 3)
    loss = objectives.generator_loss(model, x, method)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(v) for v in objectives.discriminator_loss(model, x, method).values())


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="asvae-r"):
        objectives.check_method("asvae-x")


def test_pathwise_method_without_joint_discriminator_says_what_to_do():
    model = mlp_asvae(2, 2, hidden=8)
    with pytest.raises(ValueError, match="joint_discriminator=True"):
        objectives.discriminator_loss(model, torch.randn(4, 2), "asvae-pathwise")


def test_joint_discriminator_leaves_the_other_networks_unchanged():
    torch.manual_seed(3)
    plain = mlp_asvae(2, 2, hidden=8)
    torch.manual_seed(3)
    with_g = mlp_asvae(2, 2, hidden=8, joint_discriminator=True)
    for name, p in plain.state_dict().items():
        assert torch.equal(p, with_g.state_dict()[name]), name
    assert len(with_g.discriminator_parameters()) == 1.5 * len(plain.discriminator_parameters())


def test_clipped_exp_is_exp_below_the_clip_and_its_tangent_above():
    t = torch.tensor([-3.0, 0.0, 3.5, 6.0], requires_grad=True)
    y = objectives.clipped_exp(t, clip=4.0)
    y.sum().backward()
    e4 = torch.exp(torch.tensor(4.0))
    torch.testing.assert_close(y.detach(), torch.stack([t[0].exp(), t[1].exp(), t[2].exp(), 3 * e4]).detach())
    torch.testing.assert_close(t.grad, torch.stack([t[0].exp(), t[1].exp(), t[2].exp(), e4]).detach())


def test_rec_z_to_decoder_false_removes_only_the_reconstruction_gradient_to_the_decoder():
    torch.manual_seed(0)
    model = mlp_asvae(2, 2, hidden=8)
    grads = {}
    for flag in (True, False):
        model.zero_grad()
        torch.manual_seed(1)
        objectives.z_half(model, 16, rec_z_to_decoder=flag).backward()
        grads[flag] = ([p.grad.clone() for p in model.decoder.parameters()],
                       [p.grad.clone() for p in model.encoder.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(grads[True][1], grads[False][1]))      # encoder: same
    assert not all(torch.equal(a, b) for a, b in zip(grads[True][0], grads[False][0]))  # decoder: differs


# ----- reading B of the game (12) --------------------------------------------------------------
def test_fooling_loss_by_hand():
    # d(x, z) = 0.5 x: positives at x = 2 (logit 1), negatives at x = -2 (logit -1)
    d = Linear1(0.5, 0.0)
    pos, neg = (torch.full((3, 1), 2.0), torch.zeros(3, 1)), (torch.full((3, 1), -2.0), torch.zeros(3, 1))
    by_hand = -(math.log(1 / (1 + math.e)) + math.log(1 - 1 / (1 + math.exp(-1.0))))
    assert abs(objectives.fooling_loss(d, pos, neg).item() - by_hand) < 1e-6
    # the discriminator's own loss on the same pairs is small where the fooling loss is large
    assert -objectives.logistic_objective(d(*pos), d(*neg)).item() < by_hand


@pytest.mark.parametrize("method", objectives.SADDLE_METHODS)
def test_reading_b_adds_lam_times_the_saddle_loss(method):
    model, x = mlp_asvae(2, 2, hidden=8).eval(), torch.randn(16, 2)
    torch.manual_seed(1)
    a = objectives.generator_loss(model, x, method)
    saddle = objectives.saddle_loss(model, x, method)
    torch.manual_seed(1)
    b = objectives.generator_loss(model, x, method, reading="B", lam=2.5)
    assert saddle.item() > 0.1
    assert torch.allclose(b, a + 2.5 * saddle)


def _grad_norm(loss, params):
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return sum(0.0 if g is None else g.norm().item() for g in grads)


@pytest.mark.parametrize("method, network", [("asvae-r", "decoder"), ("asvae-g", "encoder")])
def test_reading_b_reaches_the_player_only_the_negatives_carry(method, network, monkeypatch):
    """asvae-r: the decoder appears in B's extra term only through x_eps in f's negatives;
    asvae-g: the encoder only through the encoded data in h's negatives. A detach on that
    sample blocks the gradient, and this test sees it."""
    torch.manual_seed(0)
    model, x = mlp_asvae(2, 2, hidden=8).eval(), torch.randn(32, 2)
    params = list(getattr(model, network).parameters())
    assert _grad_norm(objectives.saddle_loss(model, x, method), params) > 1e-4
    sample = getattr(model, network).rsample
    monkeypatch.setattr(getattr(model, network), "rsample", lambda c: sample(c).detach())
    assert _grad_norm(objectives.saddle_loss(model, x, method), params) == 0.0


@pytest.mark.parametrize("method", objectives.SADDLE_METHODS)
def test_reading_b_at_lam_zero_trains_bit_for_bit_like_reading_a(method):
    from asvae_lib.trainer import TrainConfig, Trainer
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    final = {}
    for reading, lam in (("A", 1.0), ("B", 0.0), ("B", 1.0)):
        torch.manual_seed(0)
        cfg = TrainConfig(method=method, reading=reading, lam=lam, max_steps=20, batch_size=32, lr=1e-3,
                          eval_every=10, device="cpu")
        model = Trainer(mlp_asvae(2, 2, hidden=8), cfg, x[:250], x[250:], progress=False).fit().model
        final[reading, lam] = torch.cat([p.detach().flatten() for p in model.generator_parameters()])
    assert torch.equal(final["A", 1.0], final["B", 0.0])
    assert not torch.allclose(final["A", 1.0], final["B", 1.0])      # lam = 1 does change the game


def test_unknown_reading_or_reading_b_outside_11_is_refused():
    with pytest.raises(ValueError, match="choose one of"):
        objectives.check_reading("C", "asvae")
    with pytest.raises(ValueError, match="applies to"):
        objectives.check_reading("B", "vae")


def _counting(model, monkeypatch):
    """Count the encoder's and decoder's draws."""
    calls = {"encode": 0, "decode": 0}
    enc, dec = model.encoder.rsample_with_log_prob, model.decoder.rsample

    def encode(v):
        calls["encode"] += 1
        return enc(v)

    def decode(z):
        calls["decode"] += 1
        return dec(z)
    monkeypatch.setattr(model.encoder, "rsample_with_log_prob", encode)
    monkeypatch.setattr(model.decoder, "rsample", decode)
    return calls


@pytest.mark.parametrize("reading", objectives.READINGS)
def test_step_draws_give_one_draw_per_network_and_input(reading, monkeypatch):
    torch.manual_seed(0)
    model = mlp_asvae(3, 2, hidden=16, flow_length=2)
    x = torch.randn(8, 3)
    calls = _counting(model, monkeypatch)
    draws = objectives.StepDraws(model, x)
    objectives.discriminator_loss(model, x, "asvae", draws)
    objectives.generator_loss(model, x, "asvae", reading=reading, draws=draws)
    assert calls == {"encode": 2, "decode": 2}             # q(z|x), q(z|x_eps); p(x|z), p(x|z_eps)
    calls.update(encode=0, decode=0)
    objectives.discriminator_loss(model, x, "asvae")
    objectives.generator_loss(model, x, "asvae", reading=reading)
    assert calls == ({"encode": 4, "decode": 4} if reading == "A" else {"encode": 7, "decode": 7})
    # the pairs are built of the shared draws: f's positive code is the x-half's, h's positive data the z-half's
    z_eps, _ = draws.encode_with_log_prob(x)
    (fx, fz), (fnx, fnz) = pairs.f_pairs(x, draws.z, draws.encode, draws.decode)
    (hx, hz), (hnx, hnz) = pairs.h_pairs(x, draws.z, draws.encode, draws.decode)
    assert fz is z_eps and hnz is z_eps and fnx is hx and hz is draws.z and hnx is draws.decode(z_eps)


def test_discriminator_loss_on_step_draws_trains_the_discriminators_only():
    torch.manual_seed(0)
    model = mlp_asvae(3, 2, hidden=16, flow_length=2)
    x = torch.randn(8, 3)
    draws = objectives.StepDraws(model, x)
    sum(objectives.discriminator_loss(model, x, "asvae", draws).values()).backward()
    assert all(p.grad is None for p in model.generator_parameters())
    assert all(p.grad is not None for p in model.discriminator_parameters())
    objectives.generator_loss(model, x, "asvae", reading="B", draws=draws).backward()   # the draws kept their graph
    assert all(p.grad is not None for p in model.encoder.net.parameters())


def _mean_gradient(model, x, draws_of, seeds: int = 300):
    """Mean and standard error over seeds of the gradient of reading B's loss in the decoder's last bias."""
    grads = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        model.zero_grad()
        objectives.generator_loss(model, x, "asvae", reading="B", lam=2.0, draws=draws_of()).backward()
        grads.append(model.decoder.net[-1].bias.grad.clone())
    g = torch.stack(grads).double()
    return g.mean(0), g.std(0) / math.sqrt(seeds)


def test_shared_draws_give_the_same_expected_gradient():
    """Sharing draws changes how the losses' samples depend on each other, not what each estimates:
    the mean gradient over seeds agrees with fresh draws within the Monte Carlo error, while the
    gradient without reading B's saddle term (what a detached draw would give) does not."""
    torch.manual_seed(1)
    model = mlp_asvae(3, 2, hidden=16, flow_length=2).eval()      # no dropout: the draws are all the noise
    x = torch.randn(32, 3)
    fresh, se_fresh = _mean_gradient(model, x, lambda: None)
    shared, se_shared = _mean_gradient(model, x, lambda: objectives.StepDraws(model, x))
    se = (se_fresh**2 + se_shared**2).sqrt()
    assert ((fresh - shared).abs() < 4 * se).all(), ((fresh - shared) / se)
    grads = []
    for seed in range(300):
        torch.manual_seed(seed)
        model.zero_grad()
        objectives.generator_loss(model, x, "asvae", reading="A").backward()
        grads.append(model.decoder.net[-1].bias.grad.clone())
    without_saddle = torch.stack(grads).double().mean(0)
    assert ((without_saddle - shared).abs() > 4 * se).any()
