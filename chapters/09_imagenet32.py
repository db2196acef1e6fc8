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
# # Chapter 9. ImageNet 32x32: the same model at scale, and what it costs
#
# Section 5.4 of the paper trains AS-VAE on ImageNet downsampled to 32x32
# (1,281,167 training images) "to evaluate the scalability of our model", and
# makes a claim about cost: **less than 2 days of training at 4 hours per epoch,
# and 0.01 seconds per generated image, on a single TITAN X**, against more than
# two weeks (44 hours per epoch) and 52.0 seconds per image for PixelCNN++.
#
# This chapter runs the pipeline of chapter 8 on ImageNet 32x32 and measures the
# two costs the paper names, training time per epoch and time per generated
# image, on the machine at hand, and puts beside them what `make bench` recorded
# on a GPU.
#
# **Data.** ImageNet cannot be downloaded without an account, so the full profile
# reads the official downsampled files the reader supplies (see below); when they
# are missing the chapter stops with a message saying where to get them and where
# to put them. The quick profile uses the same **stand-in** as chapter 8 (crops of
# two photographs; not ImageNet) and trains AS-VAE alone, briefly.

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
import time

import matplotlib.pyplot as plt
import torch

from asvae_lib import data, evaluate, experiments, plots, train
from asvae_lib.profile import pick, profile

torch.set_num_threads(pick(quick=1, full=torch.get_num_threads()))
CHAPTER_START = time.time()
PROFILE = profile()
METHODS = pick(quick=("asvae",), full=("vae", "asvae-r", "asvae-g", "asvae"))
IMAGENET_TRAIN = 1_281_167

# %% [markdown]
# ## 1. The data, and the message a reader without it sees
#
# The official files are "Imagenet32_train_npz.zip" and "Imagenet32_val_npz.zip"
# from image-net.org (downsampled ImageNet, npz version), unzipped into
# `data/cache/imagenet32/` (or a folder named by `$ASVAE_IMAGENET32`). The loader
# checks every file's header (dtype, shape) and the row totals before reading
# 3.9 GB. Here is what it says when the files are absent:

# %%
import os
import tempfile

with tempfile.TemporaryDirectory() as empty:
    saved = os.environ.get(data.IMAGENET32_ENV)
    os.environ[data.IMAGENET32_ENV] = empty
    try:
        data.load("imagenet32", "full")
        raise AssertionError("an empty folder must not load")
    except data.DataUnavailable as missing:
        message = str(missing)
    finally:
        os.environ.pop(data.IMAGENET32_ENV) if saved is None else os.environ.__setitem__(data.IMAGENET32_ENV, saved)
print(message)
assert "image-net.org" in message and "train_data_batch_1.npz" in message

# %%
try:
    imagenet = data.load("imagenet32", root=experiments.REPO / "data" / "cache")
except data.DataUnavailable as missing:
    raise SystemExit(f"ImageNet 32x32 is not available: {missing}") from None
print(imagenet.source)
fig, ax = plt.subplots(figsize=(9, 2.2))
plots.show(ax, imagenet.train[:40], imagenet.shape,
           ("STAND-IN crops, not ImageNet" if imagenet.stand_in else "ImageNet 32x32") + ": training images", nrow=20)
plt.show()

# %% [markdown]
# ## 2. Training, timed

# %%
spec = experiments.experiment("imagenet32", PROFILE)
trained, results = {}, {}
for method in METHODS:
    trained[method], results[method], _ = train.run("imagenet32", method)
    r = results[method]
    m = r.metrics
    print(f"{method:8s} {r.steps} steps, {r.train_seconds:.0f} s; test {m['bpd_elbo']:.3f} bits/dim (ELBO), "
          f"RMSE {m['rmse']:.4f}; {r.provenance['device']}")

# %% [markdown]
# Learning check: the trained AS-VAE beats the untrained network by at least one
# bit per dimension on the test split.

# %%
torch.manual_seed(0)
untrained = spec.build_model(imagenet.shape)
test_x = data.fixed_dequantize(imagenet.test, 0)
untrained_bpd = evaluate.bits_per_dim(-evaluate.log_likelihood_bound(untrained, test_x).mean().item(), test_x.shape[1])
print(f"untrained {untrained_bpd:.2f} bits/dim, AS-VAE {results['asvae'].metrics['bpd_elbo']:.2f}")
assert results["asvae"].metrics["bpd_elbo"] < untrained_bpd - 1

# %% [markdown]
# ## 3. The two costs the paper names
#
# **Time per epoch** is the measured training time per step times the steps in
# one pass over the 1,281,167 ImageNet training images (the step count of this
# run's batch size); **time per image** is measured by generating 1000 images.
# The first line is this run (this machine, this profile's network); the GPU
# lines come from `results/bench-*.json`, written by `make bench` with the full
# profile's networks on random inputs (same networks for CIFAR-10 and
# ImageNet 32x32).

# %%
r = results["asvae"]
seconds_per_step = r.train_seconds / r.steps
batch = spec.train.batch_size
print(f"{'where':42s} {'h / ImageNet epoch':>18s} {'s / image':>11s}")
print(f"{'this run (' + r.provenance['device'] + ', ' + PROFILE + ')':42s} "
      f"{seconds_per_step * IMAGENET_TRAIN / batch / 3600:18.2f} {r.metrics['seconds_per_image']:11.2e}")
for path in sorted((experiments.REPO / "results").glob("bench-*.json")):
    b = json.loads(path.read_text())
    row = b["datasets"]["cifar10"]
    print(f"{'bench, ' + b['device'] + ' (' + b['profile'] + ' nets)':42s} "
          f"{IMAGENET_TRAIN / row['asvae']['images_per_second'] / 3600:18.2f} {1 / row['sampling_images_per_second']:11.2e}")
print(f"{'paper, AS-VAE on one TITAN X':42s} {4:18.2f} {0.01:11.2e}")
print(f"{'paper, PixelCNN++ on one TITAN X':42s} {44:18.2f} {52.0:11.2e}")

# %% [markdown]
# Read with care: the paper's network sizes are unknown (its Appendix B was
# lost), ours are DCGAN-sized, and a TITAN X is several GPU generations older than
# the H200 of the bench. What carries over is the *kind* of cost: generating an
# image is one pass of the decoder (microseconds per image in a batch), where an
# autoregressive model like PixelCNN++ needs one network pass per pixel. The
# bench also measures the ratio that matters for AS-VAE's own cost: one AS-VAE
# step against one VAE step on the same networks (two discriminators trained,
# the decoder and encoder run on both sides of (11)).

# %%
for path in sorted((experiments.REPO / "results").glob("bench-*.json")):
    b = json.loads(path.read_text())
    for name, row in b["datasets"].items():
        print(f"{b['device']:28s} {name:8s} AS-VAE step = {row['asvae_over_vae_time']:.1f} x VAE step "
              f"({row['asvae']['images_per_second']:.0f} vs {row['vae']['images_per_second']:.0f} images/s)")

# %% [markdown]
# ## 4. Samples and reconstructions
#
# In the quick profile these are as uninformative as chapter 8's (blurred average
# images after a few hundred steps on the stand-in): the chapter's point there is
# the timing and the pipeline, not the pictures.

# %%
for method in METHODS:
    plots.samples_and_reconstructions(trained[method], test_x[:30], imagenet.shape,
                                      method + (" (stand-in data)" if imagenet.stand_in else ""))
    plt.show()

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
