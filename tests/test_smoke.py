"""The full profile's smoke test (ASVAE_PROFILE=full ASVAE_SMOKE=1, `make smoke-full`): what it caps,
what it keeps, the fake images it stands in with, and that nothing changes outside it."""
import math
import socket
import time
from pathlib import Path

import pytest
import torch

from asvae_lib import data, experiments, train
from asvae_lib.data import DataUnavailable
from asvae_lib.profile import pick, smoke


@pytest.fixture
def smoke_test(monkeypatch):
    monkeypatch.setenv("ASVAE_PROFILE", "full")
    monkeypatch.setenv("ASVAE_SMOKE", "1")
    monkeypatch.delenv(data.IMAGENET32_ENV, raising=False)


@pytest.fixture
def full(monkeypatch):
    monkeypatch.setenv("ASVAE_PROFILE", "full")
    monkeypatch.delenv("ASVAE_SMOKE", raising=False)
    monkeypatch.delenv(data.IMAGENET32_ENV, raising=False)


def test_pick_gives_the_smoke_value_only_in_the_smoke_test(monkeypatch, smoke_test):
    assert smoke() and pick(quick=1, full=2, smoke=3) == 3 and pick(quick=1, full=2) == 2
    monkeypatch.setenv("ASVAE_SMOKE", "0")
    assert not smoke() and pick(quick=1, full=2, smoke=3) == 2
    monkeypatch.delenv("ASVAE_SMOKE")
    assert not smoke() and pick(quick=1, full=2, smoke=3) == 2
    monkeypatch.setenv("ASVAE_PROFILE", "quick")
    assert pick(quick=1, full=2, smoke=3) == 1


def test_smoke_values_that_are_not_one_or_zero_are_refused(monkeypatch, smoke_test):
    for value in ("yes", "2", "true"):
        monkeypatch.setenv("ASVAE_SMOKE", value)
        with pytest.raises(ValueError, match=f"ASVAE_SMOKE='{value}'.*set it to 1"):
            smoke()
    monkeypatch.setenv("ASVAE_SMOKE", "1")
    monkeypatch.setenv("ASVAE_PROFILE", "quick")        # the smoke test caps the full profile only
    with pytest.raises(ValueError, match="ASVAE_PROFILE=full"):
        pick(quick=1, full=2, smoke=3)
    with pytest.raises(ValueError, match="ASVAE_PROFILE=full"):
        smoke()


@pytest.mark.parametrize("dataset", data.DATASETS)
def test_the_smoke_experiment_keeps_the_full_networks_and_caps_the_schedule(monkeypatch, full, dataset):
    real, quick = experiments.experiment(dataset, "full"), experiments.experiment(dataset, "quick")
    monkeypatch.setenv("ASVAE_SMOKE", "1")
    capped = experiments.experiment(dataset, "full")
    assert capped.profile == "full" and capped.model == real.model != quick.model
    assert capped.build_model((3, 32, 32) if dataset != "mnist" else (1, 28, 28))   # the full networks build
    same = ("batch_size", "lr", "patience")
    assert [getattr(capped.train, k) for k in same] == [getattr(real.train, k) for k in same]
    assert capped.train.max_steps <= 10 < real.train.max_steps
    assert capped.train.eval_every < capped.train.max_steps and capped.train.checkpoint_every < capped.train.max_steps
    assert capped.eval.n_test <= 50 and real.eval.n_test is None
    assert len(capped.eval.iwae_ks) == len(real.eval.iwae_ks) and max(capped.eval.iwae_ks) <= 10
    if real.eval.fid_samples is None:
        assert capped.eval.fid_samples is None
    else:
        assert 10 <= capped.eval.fid_samples <= 50      # the Inception Score needs one sample per split, 10
    assert experiments.experiment(dataset, "quick") == quick     # the quick profile is never capped


def test_smoke_runs_are_kept_apart(monkeypatch, smoke_test, tmp_path):
    assert train.run_folder("mnist", "vae", runs_dir=tmp_path) == tmp_path / "full-smoke" / "mnist" / "vae"
    assert train.run_folder("mnist", "vae", "quick", runs_dir=tmp_path) == tmp_path / "quick" / "mnist" / "vae"
    monkeypatch.delenv("ASVAE_SMOKE")
    assert train.run_folder("mnist", "vae", runs_dir=tmp_path) == tmp_path / "full" / "mnist" / "vae"


@pytest.mark.parametrize("dataset, shape, title", [("mnist", (1, 28, 28), "MNIST"),
                                                   ("cifar10", (3, 32, 32), "CIFAR-10"),
                                                   ("imagenet32", (3, 32, 32), "ImageNet 32x32")])
def test_smoke_test_fakes_missing_data_in_its_real_shape_and_says_so(smoke_test, tmp_path, dataset, shape, title):
    d = data.load(dataset, root=tmp_path)
    n = [len(x) for x in (d.train, d.val, d.test)]
    assert (d.name, d.shape, d.stand_in) == (dataset, shape, True)
    assert all(x.dtype == torch.uint8 and x.shape[1] == math.prod(shape) for x in (d.train, d.val, d.test))
    assert 100 <= n[0] <= 1000 and n[1] < n[0] and n[2] < n[0]
    assert d.source.startswith(f"SMOKE TEST: random fake images of {title}'s shape, not {title}")
    assert d.train.float().std() > 50 and not torch.equal(d.train[:len(d.test)], d.test)   # random, not one image
    assert torch.equal(data.load(dataset, root=tmp_path).train, d.train)                 # the same every time
    assert not any(tmp_path.iterdir()), "the smoke test wrote (downloaded) something"


def _torchvision_here(monkeypatch, n_train, n_test, shape):
    """A fake torchvision class that records the socket timeout it was called under."""
    seen = []

    class Here:
        def __init__(self, root, train, download):
            seen.append(socket.getdefaulttimeout())
            self.data = torch.zeros(n_train if train else n_test, *shape, dtype=torch.uint8)
    monkeypatch.setattr(data, "_torchvision_class", lambda name: Here)
    return seen


def _touch(folder: Path, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_smoke_test_uses_the_real_files_where_they_are_and_never_downloads(smoke_test, tmp_path, monkeypatch):
    seen = _torchvision_here(monkeypatch, 12_000, 50, (28, 28))
    raw = tmp_path / "MNIST" / "raw"
    _touch(raw, [f + ".gz" for f in data.MNIST_FILES[:3]])
    assert data.load("mnist", root=tmp_path).source.startswith("SMOKE TEST") and not seen   # three of four: fake
    _touch(raw, [data.MNIST_FILES[3]])                                                        # unpacked counts too
    d = data.load("mnist", root=tmp_path)
    assert not d.stand_in and "torchvision" in d.source and [len(d.train), len(d.test)] == [2_000, 50]
    assert seen == [0.0, 0.0], "torchvision must run with non-blocking sockets: any download fails at once"
    assert socket.getdefaulttimeout() is None

    seen = _torchvision_here(monkeypatch, 6_000, 50, (32, 32, 3))
    assert data.load("cifar10", root=tmp_path).stand_in
    _touch(tmp_path, [data.CIFAR10_ARCHIVE])
    assert not data.load("cifar10", root=tmp_path).stand_in and seen == [0.0, 0.0]

    folder = tmp_path / "imagenet32"
    _touch(folder, data.IMAGENET32_TRAIN)
    assert data.load("imagenet32", root=tmp_path).stand_in                                   # no test file yet
    _touch(folder, [data.IMAGENET32_TEST])
    with pytest.raises(DataUnavailable, match="not a readable .npz"):                      # read, and checked
        data.load("imagenet32", root=tmp_path)


def test_a_download_in_the_smoke_test_fails_with_the_usual_message(smoke_test, tmp_path, monkeypatch):
    def download(root, train, download):
        import urllib.request
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with server:
            urllib.request.urlopen(f"http://127.0.0.1:{server.getsockname()[1]}/cifar-10-python.tar.gz")
    monkeypatch.setattr(data, "_torchvision_class", lambda name: download)
    _touch(tmp_path, [data.CIFAR10_ARCHIVE])                 # there, but (say) corrupted: torchvision would fetch it
    start = time.perf_counter()
    with pytest.raises(DataUnavailable, match="could not download CIFAR-10"):
        data.load("cifar10", root=tmp_path)
    assert time.perf_counter() - start < 5, "the download was tried (it waited for the server)"


def test_outside_the_smoke_test_missing_data_is_still_unavailable(full, tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")
    monkeypatch.setattr(data, "_torchvision_class", lambda name: offline)
    for setting in (None, "0"):
        if setting is not None:
            monkeypatch.setenv("ASVAE_SMOKE", setting)
        with pytest.raises(DataUnavailable, match="could not download MNIST"):
            data.load("mnist", root=tmp_path)
        with pytest.raises(DataUnavailable, match="could not download CIFAR-10"):
            data.load("cifar10", root=tmp_path)
        with pytest.raises(DataUnavailable, match="ImageNet 32x32: missing from"):
            data.load("imagenet32", root=tmp_path)
