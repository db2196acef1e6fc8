"""FID and IS wrappers (asvae_lib.image_metrics), on 32x32 patches of scikit-learn's two
bundled photos. The Inception network runs at 299x299, about 0.25 s per image on an idle
2-core CPU (several times that on a busy one), so the tests share the features of 3 x 16 patches."""
import math
import socket
import threading
import time

import numpy as np
import pytest
import torch

from asvae_lib import image_metrics as im

N = 16  # patches per set


@pytest.fixture(scope="module", autouse=True)
def two_threads():
    # tests/conftest.py sets one thread for tiny tensors; Inception at 299x299 is not tiny
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def patches():
    """Two disjoint sets of random 32x32 patches of the same photos, and a noisy copy of the second."""
    from sklearn.datasets import load_sample_images
    g = torch.Generator().manual_seed(0)
    photos = [torch.from_numpy(np.array(p)).permute(2, 0, 1).float() / 255 for p in load_sample_images().images]
    out = []
    for k in range(2 * N):
        p = photos[k % 2]
        i, j = (torch.randint(0, s - 32, (1,), generator=g).item() for s in p.shape[1:])
        out.append(p[:, i:i + 32, j:j + 32])
    x = torch.stack(out)
    a, b = x[:N], x[N:]
    noisy = (b + 0.5 * torch.randn(b.shape, generator=g)).clamp(0, 1)
    return a, b, noisy


@pytest.fixture(scope="module")
def features(patches):
    return [im.inception_features(x) for x in patches]


def test_features_are_2048_d_and_finite(features):
    for f in features:
        assert f.shape == (N, 2048) and np.isfinite(f).all() and f.std() > 0


def test_fid_of_a_set_with_itself_is_zero(features):
    fa, fb, _ = features
    assert abs(im.frechet_distance(fa, fa)) < 1e-3
    assert im.frechet_distance(fa, fb) > 1.0  # and not zero for everything


def test_same_distribution_is_much_closer_than_a_distorted_one(features):
    fa, fb, fnoisy = features
    same, distorted = im.frechet_distance(fa, fb), im.frechet_distance(fa, fnoisy)
    assert same < 0.5 * distorted, (same, distorted)


@pytest.mark.parametrize("n_real, n_fake, d", [(10, 12, 16), (50, 80, 16), (200, 8, 32)])
def test_frechet_distance_agrees_with_fid_helper_pytorch(n_real, n_fake, d):
    # the library's compute_fid_score (scipy sqrtm) on small dimensions, where it is fast
    rng = np.random.default_rng(n_real)
    a, b = rng.normal(size=(n_real, d)), 0.3 + 1.5 * rng.normal(size=(n_fake, d))
    helper = im._fid_helper("cpu")
    helper.load_ref_stat_dict(dict(mu=a.mean(0), sigma=np.cov(a, rowvar=False)))
    helper.load_eval_stat_dict(dict(mu=b.mean(0), sigma=np.cov(b, rowvar=False)))
    with np.errstate(all="ignore"):
        expected = helper.compute_fid_score()
    assert im.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_fid_result(patches, features):
    a, b, _ = patches
    r = im.fid(a[:3], b[:3], batch_size=2)  # batches of 2 and 1
    expected = im.frechet_distance(features[0][:3], features[1][:3])
    assert r.name == "FID" and r.std is None and (r.n_real, r.n_fake) == (3, 3)
    assert r.value == pytest.approx(expected, rel=1e-3)
    assert "fid-helper-pytorch" in r.backend and "biased" in r.note
    assert str(r).startswith("FID = ")


def test_inception_score_offline_returns_a_note_and_does_not_hang(patches):
    timeout = socket.getdefaulttimeout()
    start = time.perf_counter()
    r = im.inception_score(patches[0][:4], splits=2)
    assert time.perf_counter() - start < 45
    assert socket.getdefaulttimeout() == timeout
    assert r.name == "IS" and r.n_fake == 4 and r.n_real is None
    if r.value is None:  # no network, no cached weights (this machine)
        assert "weights" in r.note and "unavailable" in str(r)
    else:  # weights reachable or cached
        assert math.isfinite(r.value) and r.value >= 1 - 1e-6 and r.note == ""


def test_inception_score_fails_fast_when_the_download_hangs(patches, monkeypatch, tmp_path):
    # a local server that accepts the connection and says nothing for 30 s stands in for a blocked network
    fe = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    server = socket.create_server(("127.0.0.1", 0))
    monkeypatch.setattr(fe, "URL_INCEPTION_V3", f"http://127.0.0.1:{server.getsockname()[1]}/never.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached weights
    silent = threading.Thread(target=lambda: (time.sleep(30), server.close()), daemon=True)
    silent.start()
    start = time.perf_counter()
    r = im.inception_score(patches[0][:4], splits=2, timeout_s=1.0)
    assert time.perf_counter() - start < 15
    assert r.value is None and "weights" in r.note and "timed out" in r.note


def test_inception_score_runs_through_torch_fidelity(patches, monkeypatch):
    # random Inception weights instead of the download: checks our call, not the score's value
    fe = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    monkeypatch.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
    monkeypatch.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
    r = im.inception_score(patches[0][:3], splits=2, batch_size=2)
    assert r.note == "" and r.n_fake == 3 and "torch-fidelity" in r.backend
    assert math.isfinite(r.value) and r.value >= 1 - 1e-6 and math.isfinite(r.std)
    assert str(r).startswith("IS = ")


@pytest.mark.parametrize("bad", [
    torch.rand(4, 32, 32, 3),                          # channels last
    torch.rand(4, 1, 32, 32),                          # grey
    torch.rand(3, 32, 32),                             # no batch axis
    torch.rand(4, 3, 32, 32) * 2 - 1,                  # [-1, 1]
    torch.rand(4, 3, 32, 32) * 255,                    # float [0, 255]
    torch.rand(4, 3, 32, 32) + 0.5,                    # slightly above 1
    (torch.rand(4, 3, 32, 32) * 255).to(torch.uint8),  # uint8
    torch.full((4, 3, 32, 32), float("nan")),
])
def test_bad_input_raises_value_error_saying_what_is_expected(bad):
    good = torch.rand(4, 3, 32, 32)
    for call in (lambda: im.fid(good, bad), lambda: im.fid(bad, good),
                 lambda: im.inception_score(bad, splits=2)):
        with pytest.raises(ValueError, match=r"\(N, 3, H, W\).*\[0, 1\]"):
            call()


def test_inception_score_without_download_never_calls_the_network(monkeypatch, tmp_path):
    """The quick profile's IS: no cached weights -> None and a note, and torch-fidelity is never run."""
    import torch_fidelity
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))           # an empty hub cache
    monkeypatch.setattr(torch_fidelity, "calculate_metrics",
                        lambda *a, **k: pytest.fail("calculate_metrics must not run without cached weights"))
    result = im.inception_score(torch.rand(20, 3, 32, 32), splits=2, download=False)
    assert result.value is None and "downloads nothing" in result.note and str(tmp_path) in result.note
