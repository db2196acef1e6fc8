"""asvae_lib.sample_quality on synthetic features and a tiny random classifier: no stored files, no MNIST."""
import json
import math

import numpy as np
import pytest
import torch

from asvae_lib import sample_quality as sq


def tiny_classifier(seed: int = 0) -> sq.Classifier:
    torch.manual_seed(seed)
    return sq.Classifier(feature_dim=8, width=2).eval()


def stats(mu, sigma) -> dict:
    return {"mu": np.asarray(mu, dtype=float), "sigma": np.asarray(sigma, dtype=float)}


def test_frechet_distance_closed_forms():
    d = 5
    # equal covariances: the mean shift squared; isotropic N(0, a^2 I) vs N(0, b^2 I): d (a - b)^2
    assert sq.frechet_distance(stats(np.zeros(d), 2 * np.eye(d)), stats(np.full(d, 0.5), 2 * np.eye(d))) == \
        pytest.approx(d * 0.25, rel=1e-9)
    assert sq.frechet_distance(stats(np.zeros(d), np.eye(d)), stats(np.zeros(d), 9 * np.eye(d))) == \
        pytest.approx(d * (1 - 3) ** 2, rel=1e-9)


def test_frechet_distance_of_samples():
    g = torch.Generator().manual_seed(0)
    mix = torch.tensor([[1.0, 0.3, 0, 0], [0, 1, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0.5]], dtype=torch.float64)
    a, b = (torch.randn(20_000, 4, generator=g, dtype=torch.float64) @ mix for _ in range(2))
    same = sq.frechet_distance(sq.feature_statistics(a), sq.feature_statistics(b))
    assert 0 <= same < 0.01
    delta = torch.tensor([1.0, -2.0, 0.0, 0.5], dtype=torch.float64)
    shifted = sq.frechet_distance(sq.feature_statistics(a), sq.feature_statistics(a + delta))
    assert shifted == pytest.approx(delta.square().sum().item(), rel=1e-6)   # same covariance exactly
    assert sq.frechet_distance(sq.feature_statistics(a), sq.feature_statistics(b + delta)) == \
        pytest.approx(delta.square().sum().item(), abs=0.25)   # 2 delta.(mean error) ~ 0.06


def test_class_entropy_limits():
    confident = 50.0 * torch.eye(10).repeat(30, 1)            # each class 30 times, near one-hot
    r = sq.class_entropy(confident)
    assert r["class_score"] == pytest.approx(10, rel=1e-6)
    assert r["h_y_given_x"] == pytest.approx(0, abs=1e-12) and r["h_y"] == pytest.approx(math.log(10), rel=1e-9)
    same = sq.class_entropy(torch.randn(1, 10).repeat(50, 1))   # one prediction for every sample
    assert same["class_score"] == pytest.approx(1, abs=1e-9)
    assert same["h_y_given_x"] == pytest.approx(same["h_y"], rel=1e-9)
    uniform = sq.class_entropy(torch.zeros(40, 10))             # unsure of every sample
    assert uniform["class_score"] == pytest.approx(1, abs=1e-9)
    assert uniform["h_y_given_x"] == pytest.approx(math.log(10))


def test_class_entropy_is_mutual_information_and_agrees_with_torch_fidelity():
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, isc_features_to_metric
    logits = 3 * torch.randn(500, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    r = sq.class_entropy(logits)
    assert math.log(r["class_score"]) == pytest.approx(r["h_y"] - r["h_y_given_x"], rel=1e-9)
    ref = isc_features_to_metric(logits, splits=1, shuffle=False)[KEY_METRIC_ISC_MEAN]
    assert r["class_score"] == pytest.approx(ref, rel=1e-9)


def test_mean_se():
    m, se = sq.mean_se([1.0, 2.0, 3.0, 6.0])
    assert m == 3.0 and se == pytest.approx(np.std([1, 2, 3, 6], ddof=1) / 2)
    assert math.isnan(sq.mean_se([4.0])[1])


def noise(n):   # random images in [0, 1], from the global generator that score_samples seeds
    return torch.rand(n, 784)


def test_score_samples_deterministic_and_leaves_rng_alone():
    c = tiny_classifier()
    ref = sq.feature_statistics(sq.features_and_logits(c, torch.rand(300, 784))[0])
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = sq.score_samples(noise, 100, 3, seed=7, classifier=c, reference=ref)
    assert torch.equal(torch.rand(1), before)                   # the caller's random state is untouched
    torch.manual_seed(0)                                        # the draws depend on the seed, not on the state
    assert a == sq.score_samples(noise, 100, 3, seed=7, classifier=c, reference=ref)
    torch.manual_seed(123)
    assert a != sq.score_samples(noise, 100, 3, seed=8, classifier=c, reference=ref)
    assert set(a) == {"fd", "class_score", "h_y_given_x", "h_y"} and all(se > 0 for _, se in a.values())


def test_score_samples_standard_errors_shrink_with_draws():
    c = tiny_classifier()
    ref = sq.feature_statistics(sq.features_and_logits(c, torch.rand(300, 784))[0])
    few = sq.score_samples(noise, 64, 5, seed=0, classifier=c, reference=ref)
    many = sq.score_samples(noise, 64, 40, seed=100, classifier=c, reference=ref)
    for k in few:
        assert many[k][1] < few[k][1], k


def test_score_samples_prefers_the_reference_distribution():
    c = tiny_classifier()
    dark = lambda n: 0.3 * torch.rand(n, 784)
    ref = sq.feature_statistics(sq.features_and_logits(c, dark(2000))[0])
    near = sq.score_samples(dark, 500, 2, classifier=c, reference=ref)["fd"][0]
    far = sq.score_samples(noise, 500, 2, classifier=c, reference=ref)["fd"][0]
    assert near < far / 10


def test_classifier_shapes_size_and_fit():
    c = sq.Classifier()
    f, logits = sq.features_and_logits(c, torch.rand(5, 1, 28, 28))
    assert f.shape == (5, 64) and logits.shape == (5, 10) and (f >= 0).all()
    assert sum(p.numel() for p in c.parameters()) * 4 < 500_000             # under 500 kB of float32
    g = torch.Generator().manual_seed(0)                                     # two classes: bright top or bottom half
    y = torch.randint(2, (256,), generator=g)
    x = 0.2 * torch.rand(256, 1, 28, 28, generator=g)
    x[y == 0, :, :14] += 0.8
    x[y == 1, :, 14:] += 0.8
    c = tiny_classifier()
    sq.fit(c, x.flatten(1), y, epochs=3, seed=0, batch_size=32, lr=1e-2)
    assert sq.accuracy(c, x.flatten(1), y) == 1.0


def test_load_classifier_missing_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m asvae_lib.sample_quality --train-classifier"):
        sq.load_classifier(tmp_path / "none.pt")
    full = sq.Classifier()
    torch.save(full.state_dict(), tmp_path / "c.pt")
    loaded = sq.load_classifier(tmp_path / "c.pt")
    x = torch.rand(3, 784)
    assert torch.equal(loaded(x), full.eval()(x)) and not loaded.training


def test_stored_models(tmp_path):
    for name in ("vae", "asvae-r", "asvae-g"):
        (tmp_path / f"mnist-{name}-full.json").write_text(json.dumps({}))
    for name in ("vae", "asvae-g", "asvae"):       # asvae has weights but no result, asvae-r a result but no weights
        (tmp_path / f"mnist-{name}-full.pt").write_bytes(b"")
    (tmp_path / "mnist-vae-quick.json").write_text("{}")
    (tmp_path / "mnist-vae-quick.pt").write_bytes(b"")
    (tmp_path / "cifar10-vae-full.json").write_text("{}")
    (tmp_path / "cifar10-vae-full.pt").write_bytes(b"")
    assert sq.stored_models(tmp_path) == ["asvae-g", "vae"]
