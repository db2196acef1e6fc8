# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/asvae-book/asvae-book/blob/main/chapters/09_imagenet32.ipynb)
#
# Symbols as in [the book's notation table](../README.md#notation); builds on [chapter 7](07_mnist.ipynb), [chapter 8](08_cifar10.ipynb).
#
# # Chapter 9. ImageNet 32x32: the data files, and what training costs
#
# Section 5.4 of the paper trains AS-VAE on ImageNet downsampled to 32x32
# (1,281,167 training images) "to evaluate the scalability of our model", and
# makes a claim about cost: **less than 2 days of training at 4 hours per epoch,
# and 0.01 seconds per generated image, on a single TITAN X**, against more than
# two weeks (44 hours per epoch) and 52.0 seconds per image for PixelCNN++.
#
# **What this chapter shows.**
#
# 1. The data: the official files, what the loader checks before it reads them
#    (gigabytes), and the message a reader gets for each fault, shown on small
#    fake files.
# 2. The paper's two costs, hours per ImageNet epoch and seconds per generated
#    image, for our full-profile networks: computed from what `make bench`
#    measured (`results/bench-*.json`) and, for sampling, measured again here;
#    beside the paper's numbers, with what "less than 2 days" means in epochs and
#    why a one-pass decoder and an autoregressive model differ by orders of
#    magnitude.
# 3. The full-profile path: training on the real files and checking that the
#    models learned (the baselines of chapter 8), with its timing the paper's way.
#
# **Profiles.** ImageNet cannot be downloaded without an account, so only the
# full profile reads it, from files the reader supplies. The quick profile reads
# no images and trains nothing: the networks are chapter 8's, and the only images
# it has offline are chapter 8's stand-in, on which a second run would repeat
# chapter 8's numbers.

# %%
# Colab only: fetch the book, install its library, ask for a GPU. Elsewhere this does nothing.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    BOOK = "/content/asvae-book"
    if not os.path.isdir(BOOK):
        subprocess.run(["git", "clone", "--depth", "1", "--branch", "main", "https://github.com/asvae-book/asvae-book", BOOK], check=True)
    from importlib.metadata import PackageNotFoundError, version
    try:                                   # keep the torch that is there: pip then fits torchvision to it
        keep = ["torch==" + version("torch")]
    except PackageNotFoundError:
        keep = []
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", BOOK + "[book]", *keep], check=True)
    sys.path.insert(0, BOOK)               # the editable install is seen by new kernels; this one needs the path
    os.chdir(BOOK + "/chapters")
    import torch

    if torch.cuda.is_available():
        os.environ.setdefault("ASVAE_PROFILE", "full")
        print("GPU:", torch.cuda.get_device_name(0))
    else:
        print("No GPU. For the full profile choose Runtime > Change runtime type > GPU, then run all cells again.")
    print("profile:", os.environ.get("ASVAE_PROFILE", "quick"))

# %%
import json
import math
import os
import tempfile
import time
from unittest import mock

import matplotlib.pyplot as plt
import numpy as np
import torch

from asvae_lib import data, evaluate, experiments, plots, train
from asvae_lib.profile import pick, profile, trained_enough

torch.set_num_threads(pick(quick=1, full=torch.get_num_threads(), smoke=1))
CHAPTER_START = time.time()
PROFILE = profile()
METHODS = ("vae", "asvae-r", "asvae-g", "asvae")        # trained in the full profile only
N_TRAIN = data.IMAGENET32_ROWS["train"]

# %% [markdown]
# ## 1. The data files, and what the loader checks
#
# The official files are `Imagenet32_train_npz.zip` and `Imagenet32_val_npz.zip`
# from image-net.org ("downsampled ImageNet", npz version), unzipped into
# `data/cache/imagenet32/` or a folder named by `$ASVAE_IMAGENET32`. Each `.npz`
# holds a `data` array of `uint8` rows, one image of 3 x 32 x 32 values per row,
# channel-major (the layout of every image in this book), and its labels.

# %%
print("training files:", ", ".join(data.IMAGENET32_TRAIN))
print("test file:     ", data.IMAGENET32_TEST, "(the official validation images)")
print("rows expected: ", {split: f"{n:,}" for split, n in data.IMAGENET32_ROWS.items()},
      f"- {data.IMAGENET32_VAL:,} training rows are held out for early stopping")
print(f"in memory: {sum(data.IMAGENET32_ROWS.values()) * 3072 / 1e9:.2f} GB of uint8")

# %% [markdown]
# Before reading those gigabytes the loader opens every file's header (an `.npz`
# is a zip of `.npy` files, each with a short header giving dtype and shape) and
# checks that all files are there, that each `data` array is `uint8` with 3072
# values a row, and that the rows add up to the official totals. Each fault has
# its own message, which also says where to get the files. Below, each fault is
# made on purpose in a folder of tiny files of the official layout.

# %%
def fake_files(folder, rows=5, dtype=np.uint8, width=3072, skip=()):
    """Tiny .npz files of the official names and layout (a 'data' array and 'labels')."""
    for name in (*data.IMAGENET32_TRAIN, data.IMAGENET32_TEST):
        if name not in skip:
            np.savez(os.path.join(folder, name), data=np.zeros((rows, width), dtype), labels=np.ones(rows, int))


faults = {   # the fault: how the fake files are made, and what its message must name
    "no files at all": ({"skip": (*data.IMAGENET32_TRAIN, data.IMAGENET32_TEST)}, "missing from"),
    "one file missing": ({"skip": ("train_data_batch_7.npz",)}, "train_data_batch_7.npz"),
    "float pixels": ({"dtype": np.float32}, "float32"),
    "1024 values a row (one channel)": ({"width": 1024}, "(5, 1024)"),
    "the official layout, too few rows": ({}, "1,281,167")}
no_smoke = {"ASVAE_SMOKE": "0"}   # the loader itself: the smoke test (make smoke-full) would fake missing files
for fault, (files, named) in faults.items():
    with tempfile.TemporaryDirectory() as folder, mock.patch.dict(os.environ, {data.IMAGENET32_ENV: folder, **no_smoke}):
        fake_files(folder, **files)
        try:
            data.load("imagenet32", "full")
            raise RuntimeError(f"{fault}: the loader accepted the files")
        except data.DataUnavailable as refused:
            message = str(refused).replace(folder, "<folder>")
    what, _, how = message.partition(" Get ")
    print(f"{fault}:\n    {what}")
    assert named in what and "image-net.org" in how, fault
print("\nand every message ends with what to do:\n    Get " + how)

# %% [markdown]
# In the full profile the real files are read (the chapter stops with the message
# above if they are missing); the quick profile reads none.

# %%
if PROFILE == "full":
    try:
        imagenet = data.load("imagenet32", root=experiments.REPO / "data" / "cache")
    except data.DataUnavailable as missing:
        raise SystemExit(f"ImageNet 32x32 is not available: {missing}") from None
    print(imagenet.source)
    fig, ax = plt.subplots(figsize=(9, 2.2))
    plots.show(ax, imagenet.train[:40], imagenet.shape, "ImageNet 32x32: training images", nrow=20)
    plt.show()
else:
    print(f"{PROFILE} profile: no ImageNet files are read")

# %% [markdown]
# ## 2. The two costs of section 5.4
#
# **Hours per epoch** is one pass over the 1,281,167 training images at the
# measured training speed of the full-profile networks (images per second of one
# training step, batch 100, `make bench`); **seconds per image** is the time to
# generate one image (a draw from the prior and one pass of the decoder, in
# batches). The networks timed are the full profile's, the same for CIFAR-10 and
# ImageNet 32x32 (both 3 x 32 x 32):

# %%
full = experiments.experiment("imagenet32", "full")
torch.manual_seed(0)
model = full.build_model((3, 32, 32)).eval()
count = lambda *modules: sum(p.numel() for m in modules for p in m.parameters())
print(full.model)
print(full.train)
print(f"parameters: encoder {count(model.encoder):,}, decoder {count(model.decoder):,}, "
      f"discriminators f and h {count(model.f, model.h):,}")

# %%
bench = {path.stem: json.loads(path.read_text()) for path in sorted(experiments.RESULTS.glob("bench-*.json"))}
bench = {name: b for name, b in bench.items() if "cifar10" in b["datasets"]}   # benches of the 32x32 networks
rows = {}
for b in bench.values():
    row = b["datasets"]["cifar10"]                      # the 3 x 32 x 32 networks
    rows[f"bench: {b['device']}, {b['date'][:10]}"] = (
        N_TRAIN / row["asvae"]["images_per_second"] / 3600, 1 / row["sampling_images_per_second"],
        row["asvae_over_vae_time"])
here = evaluate.seconds_per_image(model, n=1000)
rows[f"measured now: {experiments.provenance(torch.device('cpu'))['device']}"] = (None, here, None)
paper = {"paper: AS-VAE, one TITAN X": (4.0, 0.01, None), "paper: PixelCNN++, one TITAN X": (44.0, 52.0, None)}
print(f"{'':44s} {'h / epoch':>9s} {'s / image':>10s} {'AS-VAE step / VAE step':>23s}")
for name, (hours, seconds, ratio) in {**rows, **paper}.items():
    print(f"{name:44s} {'' if hours is None else f'{hours:9.2f}':>9s} {seconds:10.1e} "
          f"{'' if ratio is None else f'{ratio:23.1f}':>23s}")
for b in bench.values():
    load = b.get("load_average_during_run")
    print(f"note on the {b['device']} bench: {b.get('run_note', '')}"
          + (f" (load average {load[0]} to {load[1]} on this CPU during the run)" if load else ""))

# %% [markdown]
# Reading the table:
#
# * **Per image.** Generating an image is one pass of the decoder, so in a batch
#   it takes well under a millisecond, on a CPU as on a GPU; every row of ours is
#   below the paper's 0.01 s (checked below). PixelCNN++ generates an image one
#   pixel at a time, each pixel's three colour values conditioned on all pixels
#   before it: $32 \times 32 = 1024$ network passes in sequence, against one.
#   That accounts for a factor of 1024 in the paper's ratio of 52.0 s to 0.01 s
#   (printed below); the rest lies in the networks themselves.
# * **Per epoch.** Our networks are DCGAN-sized and the paper's are unknown (its
#   Appendix B was lost), and a TITAN X is several GPU generations older than the
#   H200, so the hours compare in kind only: an epoch on one GPU takes minutes
#   to hours, not days. "Less than 2 days at 4 hours per epoch" means at most 12
#   epochs, printed below beside what 12 epochs take at the bench's speeds.
# * **AS-VAE against VAE.** One AS-VAE step also trains two discriminators and
#   runs the encoder and decoder on both sides of (11); the last column is what
#   that costs against a VAE step on the same networks.

# %%
epochs = math.floor(48 / 4)
print(f"2 days at 4 h per epoch: {epochs} epochs")
for name, (hours, _, _) in rows.items():
    if hours is not None:
        print(f"{name:44s} {epochs} epochs in {epochs * hours:7.1f} h")
for name, (_, seconds, ratio) in rows.items():
    assert seconds < 0.01, f"{name}: {seconds:.2g} s per image, not below the paper's 0.01 s"
    assert ratio is None or ratio > 1, f"{name}: an AS-VAE step cannot cost less than a VAE step"
slowest = max(seconds for _, seconds, _ in rows.values())
print(f"sequential network passes per image: PixelCNN++ 32 x 32 = {32 * 32} (one per pixel), ours 1")
print(f"per image, the paper's PixelCNN++ takes {52.0 / 0.01:,.0f} times its AS-VAE, "
      f"{52.0 / slowest:,.0f} times the slowest of our rows")

# %% [markdown]
# ## 3. The full profile: training on ImageNet 32x32
#
# `train.run("imagenet32", method)` trains each method to early stopping (the same
# function and networks as chapter 8, Adam at the paper's $10^{-4}$), and each run
# records its own training time; the hours per epoch are then measured the
# paper's way, on the run's device. As in chapter 8 a model has *learned* only if
# its bound beats the uniform density and a per-pixel Gaussian fitted to the
# training images, per test image, by more than three standard errors (on the
# first test images, with the Gaussian fitted to part of the training set: the
# sizes are in the code).
# For a long run the command line is the better tool: `python -m asvae_lib.train
# --dataset imagenet32 --method asvae --profile full` resumes where it stopped and
# writes `results/imagenet32-asvae-full.json`, which is listed below when present.

# %%
if PROFILE == "full":
    D = math.prod(imagenet.shape)
    test = imagenet.test[:10_000]
    gauss = evaluate.pixel_gaussian(imagenet.train[:50_000])
    baselines = {"uniform density": torch.full((len(test),), 8.0),
                 "per-pixel Gaussian": evaluate.discrete_nll(gauss, test) / (D * math.log(2))}
    y = data.fixed_dequantize(test, 0)
    learned = trained_enough("every trained model beats the uniform density and the per-pixel Gaussian")
    for method in METHODS:
        trained, r, _ = train.run("imagenet32", method)
        torch.manual_seed(0)
        bits = evaluate.bits_per_dim(-evaluate.log_likelihood_bound(trained, y), D)
        print(f"{method:8s} {r.steps} steps, {r.epochs:.2f} epochs, {r.seconds_per_epoch / 3600:.2f} h per epoch "
              f"({r.provenance['device']}); {bits.mean():.3f} bits/dim (ELBO), RMSE {r.metrics['rmse']:.4f}")
        for name, baseline in baselines.items():
            if learned:
                gain, se = evaluate.check_beats(bits, baseline)
                print(f"    beats the {name} ({baseline.mean():.3f}) by {gain:.3f} bits/dim (s.e. {se:.4f})")
stored = [experiments.load_result("imagenet32", method) for method in METHODS]
for r in filter(None, stored):
    print(f"stored: {r.method:8s} {r.bits_per_dim():.3f} bits/dim, {r.seconds_per_epoch / 3600:.2f} h per epoch, "
          f"{r.provenance['device']}, {r.provenance['date'][:10]}")
if not any(stored):
    print("no stored full-profile ImageNet 32x32 results in results/ yet")

# %% [markdown]
# ## What this chapter showed
#
# * The ImageNet 32x32 loader refuses missing files, wrong types, wrong shapes
#   and wrong row totals from the files' headers alone, each with a message that
#   names the fault and says where to get the official files.
# * For our full-profile networks, a generated image costs far less than the
#   paper's 0.01 s on every machine measured, as a one-pass decoder should; the
#   paper's gap to PixelCNN++ comes mostly from the 1024 sequential passes of
#   autoregressive sampling, one per pixel. The hours per ImageNet epoch from the bench are printed beside the
#   paper's 4 h, comparable in kind only (other networks, other GPUs); an AS-VAE
#   step costs several VAE steps.
# * No ImageNet model is trained in the quick profile; the full profile trains
#   and checks them against the baselines of chapter 8.

# %%
print(f"chapter run time: {time.time() - CHAPTER_START:.0f} s (profile {PROFILE})")

# %% [markdown]
# ## Exercises
#
# Each exercise cell is self-contained; the cell after it checks your answer
# (`make assignments` writes the student version of this chapter, with the
# solutions removed).
#
# **Exercise 9.1 (uniform dequantisation).** Implement $y = (x + u)/256$ with
# $u \sim U[0, 1)$ drawn independently for every value of a `uint8` tensor $x$,
# from the given random generator. Every $y$ must land in its own bin
# $[x/256, (x+1)/256)$, so that the density of $y$ integrated over the bin is the
# probability of $x$. Careful: in float32, $(255 + u)/256$ rounds to exactly 1.0 for
# $u$ close enough to 1, which leaves the bin.

# %% nbgrader={"grade": false, "grade_id": "ex9_1", "locked": false, "schema_version": 3, "solution": true}
import torch


def dequantize(x, generator):
    """uint8 values -> floats (x + u) / 256 with u ~ U[0, 1), each strictly inside its bin."""
    ### BEGIN SOLUTION
    u = torch.rand(x.shape, generator=generator).clamp(max=1 - 2**-16)   # keeps (255 + u)/256 below 1
    return (x.float() + u) / 256
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex9_1_check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
x = torch.arange(256, dtype=torch.uint8).repeat(2000)
y = dequantize(x, torch.Generator().manual_seed(9))
assert y.dtype == torch.float32 and y.shape == x.shape
assert torch.equal(torch.floor(y * 256).long(), x.long()), "every y must stay in its own bin"
assert y.max() < 1.0
bin_means = y.reshape(2000, 256).mean(0) * 256 - torch.arange(256)
print(f"mean offset of y inside its bin (should be 1/2): {bin_means.mean():.4f}")
assert (bin_means - 0.5).abs().max() < 0.05, "u must be uniform on [0, 1)"
### BEGIN HIDDEN TESTS
a = dequantize(x, torch.Generator().manual_seed(1))
b = dequantize(x, torch.Generator().manual_seed(1))
assert torch.equal(a, b), "the noise must come from the generator passed in"
assert y.reshape(2000, 256).std(0).mul(256).sub(1 / 12**0.5).abs().max() < 0.03
### END HIDDEN TESTS
print("Exercise 9.1: correct")


# %% [markdown]
# **Exercise 9.2 (a data file's shape without reading it).** Section 1's loader
# checks every ImageNet file's array before reading gigabytes. An `.npz` file is a
# zip archive holding one `NAME.npy` file per array, and a `.npy` file starts with
# a short header: after the magic string (`np.lib.format.read_magic`, which gives
# the format version), `np.lib.format.read_array_header_1_0` (version 1.0) or
# `read_array_header_2_0` (2.0) returns `(shape, fortran_order, dtype)`. Write
# `npz_header(path, name)`, returning `(shape, dtype)` of the array `name` without
# reading the array. The check includes a file whose header promises a million
# rows that are not there: `np.load` fails on it; your function must not.

# %% nbgrader={"grade": false, "grade_id": "ex9_2", "locked": false, "schema_version": 3, "solution": true}
import zipfile

import numpy as np


def npz_header(path, name="data"):
    """(shape, dtype) of the array ``name`` in the .npz file ``path``, from its header alone."""
    ### BEGIN SOLUTION
    with zipfile.ZipFile(path) as z, z.open(name + ".npy") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read(f)
    return shape, dtype
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex9_2_check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
import io
import os
import tempfile

with tempfile.TemporaryDirectory() as folder:
    plain, packed, empty = (os.path.join(folder, f) for f in ("plain.npz", "packed.npz", "empty.npz"))
    np.savez(plain, data=np.zeros((7, 3072), np.uint8), labels=np.arange(7))
    np.savez_compressed(packed, data=np.ones((3, 1024), np.float32))
    header = io.BytesIO()   # a header promising 1,000,000 rows, and no rows
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (10**6, 3072)})
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("data.npy", header.getvalue())
    print("plain:", npz_header(plain), " labels:", npz_header(plain, "labels"), " compressed:", npz_header(packed))
    assert npz_header(plain) == ((7, 3072), np.dtype(np.uint8))
    assert npz_header(plain, "labels") == ((7,), np.arange(7).dtype)
    assert npz_header(packed) == ((3, 1024), np.dtype(np.float32)), "compressed archives too"
    assert npz_header(empty) == ((10**6, 3072), np.dtype(np.uint8)), "read the header only, not the array"
    try:
        np.load(empty)["data"]
        raise RuntimeError("np.load read an array that is not there")
    except (ValueError, OSError, EOFError):
        pass
    ### BEGIN HIDDEN TESTS
    from asvae_lib import data

    assert npz_header(plain) == data._npz_data(plain, "")
    ### END HIDDEN TESTS
print("Exercise 9.2: correct")

# %% [markdown]
# **Exercise 9.3 (change the model, predict, then measure: the cost of a sample).**
# Section 2 compares seconds per generated image with the paper's 0.01 s. The
# decoder's cost grows with its base width $w$: its transposed convolutions have
# about $w^2$ multiply-adds per output position. *Before running*, predict the
# ratio of the time per image at width 64 (the full profile) to width 16 (the
# quick one), for batches of 500 images on the CPU: 4 (linear in $w$), 16
# (quadratic), or less than 4 (fixed costs dominate)? Then implement
# `seconds_per_image(width)`: build the 32x32 model with that width
# (`experiments.Conv`, z of 128) and time `model.sample` with
# `evaluate.seconds_per_image`. The check measures the three widths 16, 32 and 64
# and prints your prediction beside the measured ratio.

# %% nbgrader={"grade": false, "grade_id": "ex9_3", "locked": false, "schema_version": 3, "solution": true}
import torch

from asvae_lib import evaluate, experiments


def seconds_per_image(width):
    """Seconds per generated 32x32 colour image of the conv model of base ``width`` (batches of 500)."""
    ### BEGIN SOLUTION
    torch.manual_seed(0)
    model = experiments.Conv(width=width, z_dim=128).build((3, 32, 32)).eval()
    return evaluate.seconds_per_image(model, n=1000, batch_size=500)
    ### END SOLUTION


# your prediction, before running: time at width 64 / time at width 16
### BEGIN SOLUTION
PREDICTION = 16.0
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex9_3_check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
import time

times = {w: seconds_per_image(w) for w in (16, 32, 64)}
for w, s in times.items():
    print(f"width {w:2d}: {s:.2e} s per image")
assert all(0 < s < 0.01 for s in times.values()), "a sample from a decoder of this size costs well under 0.01 s"
assert times[64] > times[16], "a wider decoder cannot be faster"
start = time.perf_counter()
seconds_per_image(16)
assert time.perf_counter() - start > 1000 * times[16] * 0.5, "time the sampling of about 1000 images, not fewer"
print(f"time(64) / time(16): predicted {PREDICTION:g}, measured {times[64] / times[16]:.1f}")
print("Exercise 9.3: done")
