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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/asvae-book/asvae-book/blob/main/chapters/10_reproduction.ipynb)
#
# Symbols as in [the book's notation table](../README.md#notation); builds on [chapter 6](06_asvae_2d.ipynb), [chapter 7](07_mnist.ipynb), [chapter 8](08_cifar10.ipynb), [chapter 9](09_imagenet32.ipynb).
#
# # Chapter 10. Reproduction: the paper's numbers beside ours
#
# Every number of ours in this chapter is read from a result file in `results/`,
# written by `python -m asvae_lib.train` (or `make train`, `make bench`) together
# with the device, library versions, commit, seed and profile it was measured
# with. Nothing is typed in except the paper's own numbers, each quoted with the
# section it comes from. A row is **open** when no result file measures it yet.
#
# The paper's result tables lost their contents in extraction; only the numbers
# its prose repeats survive, and only those appear here. The chapter will show:
#
# * every result file of `results/`, with how and where it was measured;
# * the paper's surviving numbers beside ours, each row marked measured,
#   converged, or open;
# * checks that keep the table honest (bounds that must hold, a run called
#   converged only when early stopping ended it), run on the files and on
#   altered copies that must fail them;
# * the verdict of chapter 6 on the paper's qualitative claims, measured in two
#   dimensions over five seeds, under each reading of the game (12).

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
import dataclasses
import math
import time

from asvae_lib import experiments

CHAPTER_START = time.time()

# What the paper's text states (section, quantity, method, value, unit).
PAPER = [
    ("5.2", "mnist", "asvae", "nll", 82.51, "nats"),
    ("5.2", "mnist", "asvae-r", "nll", 81.14, "nats"),
    ("5.2", "mnist", "asvae-g", "nll", None, "nats"),
    ("5.2", "mnist", "vae", "nll", 85.10, "nats (normalizing-flow VAE of Rezende & Mohamed, the paper's baseline)"),
    ("5.3", "cifar10", "asvae", "bpd", None, "bits/dim (table lost)"),
    ("5.3", "cifar10", "asvae", "IS", None, "(table lost)"),
    ("5.3", "cifar10", "ali", "rmse", None, "(table lost; text: ALI reconstructs worse)"),
    ("5.4", "imagenet32", "asvae", "hours_per_epoch", 4.0, "h on one TITAN X"),
    ("5.4", "imagenet32", "asvae", "seconds_per_image", 0.01, "s on one TITAN X"),
]

# %% [markdown]
# ## 1. The result files
#
# `experiments.RunResult.load` reads each file into a typed record and fails on a
# file that lacks a field (settings, device, versions, commit, date, steps, why
# the run stopped, scores).

# %%
runs = []
for path in experiments.result_files():
    r = experiments.RunResult.load(path)
    assert all(r.provenance.get(key) for key in ("device", "torch", "python", "date")), f"{path.name}: provenance"
    runs.append(r)
    print(f"{path.name:26s} {r.provenance['device']:26s} torch {r.provenance['torch']:14s} seed {r.seed} "
          f"{r.provenance['date'][:10]}  {r.steps} steps, {r.epochs:.1f} epochs, stopped by {r.stop_reason}")
    for note in r.notes.values():
        print(f"{'':26s} note: {note}")

# %% [markdown]
# ## 2. The paper beside ours
#
# For MNIST "ours" is the importance-weighted bound at the largest $k$ the run was
# scored with (the tightest NLL estimate we compute; the ELBO, looser, is in the
# result files too).

# %%
def quantity_of(r, quantity):
    """One quantity of a run (None where the run does not measure it)."""
    k = max(r.experiment.eval.iwae_ks)
    seconds_per_image_trained = r.train_seconds / (r.steps * r.experiment.train.batch_size)
    m = r.metrics
    return {"nll": m.get(f"nll_iwae{k}_nats"), "bpd": m.get(f"bpd_iwae{k}"), "rmse": m.get("rmse"),
            "IS": (m.get("IS") or {}).get("value"), "seconds_per_image": m.get("seconds_per_image"),
            "hours_per_epoch": seconds_per_image_trained * 1_281_167 / 3600}[quantity]


def describe(r):
    """How a run was measured, and whether it may be compared with the paper at all."""
    converged = r.stop_reason == "early stopping"
    return (f"{r.name}, {r.profile}, {r.provenance['device']}, {r.epochs:.1f} epochs, "
            f"{'converged (early stopping)' if converged else 'NOT converged: ' + r.stop_reason}"
            f"{', STAND-IN data' if r.stand_in else ''}")


def ours(dataset, method, quantity):
    """(value, how it was measured, the run) from the result files, full profile first: the run
    named ``method`` (reading A, seed 0, the profile's learning rate), else another run of the method."""
    for profile in ("full", "quick"):
        for named in (True, False):
            for r in runs:
                if (r.dataset, r.method, r.profile) == (dataset, method, profile) and (r.name == method or not named):
                    return quantity_of(r, quantity), describe(r), r
    return None, "open: no result file yet", None


print(f"{'sec.':4s} {'data':10s} {'method':8s} {'quantity':17s} {'paper':>8s} {'ours':>9s}  how ours was measured")
rows = []
for section, dataset, method, quantity, paper, unit in PAPER:
    value, how, run = ours(dataset, method, quantity)
    rows.append((dataset, method, quantity, paper, value, how, run))
    paper_s = "lost" if paper is None else f"{paper:g}"
    ours_s = "-" if value is None else f"{value:.4g}"
    print(f"{section:4s} {dataset:10s} {method:8s} {quantity:17s} {paper_s:>8s} {ours_s:>9s}  {how}   [{unit}]")
measured = sum(row[4] is not None for row in rows)
print(f"{measured} of {len(rows)} rows have a measurement of ours; "
      f"{sum(row[3] is not None for row in rows)} have a surviving number from the paper")

# %% [markdown]
# Checks on what the files say (each fails when its claim is false):
#
# * every MNIST bound bounds the probability of 784 binary pixels, so it is
#   positive, and every model trained on the likelihood (all but AS-VAE-g) beats
#   the uniform model's $784 \log 2 \approx 543$ nats;
# * the importance-weighted bound is at least as tight as the ELBO;
# * `describe` calls a run converged only when it stopped by early stopping, and
#   flags stand-in data: it is run here on the stored runs and on altered copies
#   of one of them.

# %%
uniform_nats = 784 * math.log(2)
for r in runs:
    if r.dataset == "mnist" and r.metrics:
        for k in (1, *r.experiment.eval.iwae_ks):
            assert r.nll_nats(k) > 0 and (r.method == "asvae-g" or r.nll_nats(k) < uniform_nats), (r.method, k)
        if r.nll_nats(1) > uniform_nats:
            print(f"{r.method}: ELBO NLL {r.nll_nats(1):.1f} nats, worse than the uniform model's {uniform_nats:.1f}")
        assert r.nll_nats(max(r.experiment.eval.iwae_ks)) <= r.nll_nats(1), r.method
altered = [dataclasses.replace(runs[0], stop_reason=stop, stand_in=stand_in)
           for stop in ("early stopping", "time limit (20.0 min)", "step limit") for stand_in in (False, True)]
for r in altered:
    how = describe(r)
    assert ("NOT converged" not in how) == (r.stop_reason == "early stopping"), how
    assert ("STAND-IN" in how) == r.stand_in, how
print(f"checked {sum(r.dataset == 'mnist' for r in runs)} MNIST result files, and describe() on "
      f"{len(altered)} altered copies of one")

# %% [markdown]
# ## 3. What the table says, and what is open
#
# * **MNIST.** Each run's line above says how far it got. A run stopped by its
#   time budget, not by early stopping, measures the pipeline and the direction of
#   training, not the paper's claim (AS-VAE 82.51, AS-VAE-r 81.14, below the flow
#   VAE's 85.10); that claim compares three runs, and stays **open** until all three
#   have reached early stopping (chapter 7, section 7.5, judges it then). The cell
#   lists the rows that are converged and those that are not.
# * **CIFAR-10 and ImageNet 32x32.** No result file measures them yet (CIFAR-10 is
#   downloaded by the full profile; ImageNet 32x32 needs an account). Rows are open.

# %%
open_rows = [(d, m, q) for d, m, q, paper, value, how, run in rows if run is None or "NOT converged" in how]
converged_rows = [(d, m, q) for d, m, q, *_ in rows if (d, m, q) not in open_rows]
print(f"{len(converged_rows)} of {len(rows)} rows are converged:", converged_rows)
print(f"{len(open_rows)} of {len(rows)} rows are open or not converged:", open_rows)
claim_runs = [("mnist", m, "nll") for m in ("vae", "asvae", "asvae-r")]
assert any(row in open_rows for row in claim_runs), \
    "the three runs of the MNIST claim have converged: this section and the closing must state the comparison"
assert all(d == "mnist" for d, *_ in converged_rows), "a colour-image row converged: say so above"

# %% [markdown]
# ## 4. Does AS-VAE work? The verdict of chapter 6
#
# The paper's claims about its variants are qualitative; chapter 6 turns each into a
# measurement on two many-mode 2-D data sets, five seeds per configuration, and
# judges it on the medians over seeds (`asvae_lib.toy2d.verdict`). The table is built
# here from the stored records in `results/toy2d/`, each of which carries its
# settings, seed, commit and library versions.

# %%
import torch

from asvae_lib import toy2d
from asvae_lib.metrics2d import mode_coverage

verdicts = {}
for dataset in ("grid", "ring"):
    records = toy2d.load(dataset)
    for (config, seed), r in records.items():
        missing = [key for key in ("settings", "final", "curve", "commit", "torch", "python", "device") if key not in r]
        assert not missing, f"results/toy2d/{dataset}: {config} seed {seed} lacks {missing}"
    seeds = {c: sorted(s for cc, s in records if cc == c) for c in toy2d.MAIN + toy2d.MAIN_B
             if c in toy2d.MAIN or (c, 0) in records}          # reading B: the configurations run on this data set
    assert all(len(s) >= 5 for s in seeds.values()), f"{dataset}: fewer than 5 seeds for some method: {seeds}"
    centres, train_x, _, _ = toy2d.data(dataset)
    torch.manual_seed(0)
    chance = mode_coverage(torch.distributions.MultivariateNormal(train_x.mean(0), torch.cov(train_x.T)).sample((toy2d.N_GEN,)),
                           centres, toy2d.STD)["good"]
    verdicts[dataset] = toy2d.verdict(records, len(centres), chance)
    print(f"{dataset} ({len(centres)} modes, 5 seeds per configuration; median [min, max]; "
          f"[reading of the game (12)])")
    for row in verdicts[dataset]:
        print(f"  {row['verdict']:37s} [{row['reading']}] {row['claim']}\n  {'':37s} {row['measure']}")
    print()

# %% [markdown]
# On the ring, where reading B's samples were still improving at step 12 000, chapter 6
# also ran the VAE and AS-VAE (readings A and B at $\lambda = 3$) to twice the steps
# (`results/toy2d-long/`); the same two rows against the VAE at the same length:

# %%
long_runs = toy2d.load("ring", toy2d.LONG)
steps = {r["settings"]["steps"] for r in long_runs.values()}
assert steps == {24000}, steps
for name, reading in (("asvae", "A"), ("asvae, B, lam=3", "B, lam 3")):
    for row in (toy2d.balance_row(long_runs, name, reading), toy2d.works_row(long_runs, name, reading, 8, "asvae")):
        print(f"  {row['verdict']:10s} [{row['reading']}] {row['claim']}\n  {'':10s} {row['measure']}")

# %% [markdown]
# Read with chapter 6: the verdict depends on the reading of the game (12). Under reading
# A (the encoder and decoder ascend (11) alone) the claims that hold are the ones about
# reconstruction (AS-VAE-r behaves like the VAE; ALI reconstructs poorly), AS-VAE's exact
# reconstructions come from encoders collapsed onto their clamp, the claims about
# generation by AS-VAE-g and AS-VAE do not hold on either data set, and no configuration,
# the book's own `asvae-pathwise` included, meets the bar for "AS-VAE works". Under
# reading B (the saddle), on the ring, AS-VAE-r meets the bar on every seed at
# $\lambda = 1$, and AS-VAE at $\lambda = 3$ holds the balance claim on the medians at twice
# the steps while meeting the bar seed by seed on 3 of 5 seeds, one short of it; AS-VAE-g
# fails under both readings; on the grid no configuration, the VAE included, reaches the
# bar's generation half. Whether the VAE's samples "fall off the data" depends on the
# data set under the fixed threshold of half the samples. The paper's MNIST, CIFAR-10
# and ImageNet claims above remain open.

# %% [markdown]
# ## What this chapter showed
#
# * Which of the paper's numbers have a measurement of ours, and how each was made
#   (device, versions, seed, epochs, why the run stopped): the table of section 2.
# * Which rows are converged reproductions and which are open or measured on runs
#   stopped by their time budget (section 3 lists them); the paper's MNIST comparison
#   waits for its three runs to converge, and no CIFAR-10 or ImageNet row has a run.
# * In two dimensions, where five seeds per configuration are cheap, the verdict names
#   the reading of the game: under reading A the paper's claims about reconstruction
#   hold and its claims about generation do not; under reading B, on the ring, AS-VAE-r
#   meets the bar for "works" and AS-VAE comes within one seed of it at twice the steps
#   (section 4).

# %%
print(f"chapter run time: {time.time() - CHAPTER_START:.0f} s")

# %% [markdown]
# ## Exercises
#
# Each exercise cell is self-contained; the cell after it checks your answer
# (`make assignments` writes the student version of this chapter, with the
# solutions removed).
#
# **Exercise 10.1 (is a gap between two models real?).** Two models scored on the
# same test set give per-image NLLs $a_j$ and $b_j$. Their mean difference
# $\bar d = \frac1n\sum_j (a_j - b_j)$ has standard error $s_d/\sqrt n$, where $s_d$ is the
# standard deviation of the *paired* differences $a_j - b_j$. Implement it. Because
# hard images are hard for both models, the paired standard error is far smaller
# than the one that treats the two columns as independent,
# $\sqrt{(s_a^2 + s_b^2)/n}$: a gap of 1.4 nats between two MNIST models
# (the paper's 82.51 against 81.14) can be decisive when measured on the same 10,000
# digits, even though each model's NLL varies by tens of nats from digit to digit.

# %% nbgrader={"grade": false, "grade_id": "ex10_1", "locked": false, "schema_version": 3, "solution": true}
import torch


def paired_difference(a, b):
    """Mean of a - b and its standard error from the paired differences."""
    ### BEGIN SOLUTION
    d = a - b
    return d.mean().item(), (d.std() / len(d) ** 0.5).item()
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex10_1_check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
g = torch.Generator().manual_seed(10)
difficulty = 80 + 25 * torch.randn(10_000, generator=g, dtype=torch.float64)   # shared by both models
a = difficulty + 1.4 + 2 * torch.randn(10_000, generator=g, dtype=torch.float64)
b = difficulty + 2 * torch.randn(10_000, generator=g, dtype=torch.float64)
mean, se = paired_difference(a, b)
unpaired = ((a.var() + b.var()) / len(a)).sqrt().item()
print(f"difference {mean:.3f} nats, paired standard error {se:.3f}, unpaired {unpaired:.3f}")
assert abs(mean - 1.4) < 3 * se, "the difference should be near the 1.4 nats put in"
assert 0.02 < se < 0.04, "paired standard error: std of a - b (about 2.8) over sqrt(10000)"
assert se < unpaired / 5
### BEGIN HIDDEN TESTS
m, s = paired_difference(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
assert abs(m - 2.0) < 1e-12 and abs(s - 1.0 / 3**0.5) < 1e-12
### END HIDDEN TESTS
print("Exercise 10.1: correct")

# %% [markdown]
# **Exercise 10.2 (change the number of draws: predict, then measure).** The MNIST
# rows report the importance-weighted bound at $k = 1000$, the ELBO at $k = 1$. How
# much of the distance between the two does $k = 10$ already cover? Write your
# prediction as a fraction in `PREDICTION` first. Then implement `nested_bounds`:
# given log weights of shape `(k_max, n)` (draws in rows) and a list of $k$, return
# the mean over the $n$ columns of $\log\frac1k\sum_{i \le k} w_i$ for each $k$,
# using the *first* $k$ draws of each column (so every $k$ reuses the same draws and
# the curve is smooth). The check applies it to the stored full-profile VAE of
# `results/` on 100 digits.

# %% nbgrader={"grade": false, "grade_id": "ex10_2", "locked": false, "schema_version": 3, "solution": true}
import math

import torch


def nested_bounds(log_w, ks):
    """[mean_j log (1/k) sum_{i<k} exp(log_w[i, j]) for k in ks], computed stably."""
    ### BEGIN SOLUTION
    return [(torch.logsumexp(log_w[:k], dim=0) - math.log(k)).mean().item() for k in ks]
    ### END SOLUTION


# your prediction before measuring: the fraction of the k=1 -> k=1000 gap closed at k=10
### BEGIN SOLUTION
PREDICTION = 0.5
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex10_2_check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from asvae_lib import data, evaluate, experiments

mnist = data.load("mnist", "quick")
x = torch.bernoulli(data.fixed_dequantize(mnist.test[:100], 0), generator=torch.Generator().manual_seed(0))
stored = (experiments.load_trained("mnist", "vae", mnist.shape)                 # the run of `make mnist`, else
          or experiments.load_trained("mnist", "vae-lr0.0001", mnist.shape))   # the one at the paper's lr
assert stored is not None, "results/mnist-vae-full.pt is missing: run `make mnist` (or restore it from git)"
torch.manual_seed(0)
log_w = evaluate.log_weights(stored[0], x, 1000).double()
ks = [1, 10, 100, 1000]
bounds = nested_bounds(log_w, ks)
assert len(bounds) == len(ks) and all(isinstance(b, float) for b in bounds)
assert abs(bounds[0] - log_w[0].mean().item()) < 1e-9, "k = 1: the first draw's log weight, the ELBO"
assert abs(bounds[-1] - (torch.logsumexp(log_w, 0) - math.log(1000)).mean().item()) < 1e-9
w = torch.tensor([[0.0, 2.0], [math.log(3.0), 0.0]], dtype=torch.float64)
assert abs(nested_bounds(w, [2])[0] - 0.5 * (math.log(2.0) + math.log((math.exp(2) + 1) / 2))) < 1e-12
closed = (bounds[1] - bounds[0]) / (bounds[-1] - bounds[0])
print("mean bound (nats) at k =", dict(zip(ks, [round(b, 2) for b in bounds])))
print(f"fraction of the k=1 -> k=1000 gap closed at k=10: predicted {PREDICTION:.2f}, measured {closed:.2f}")
assert 0 <= PREDICTION <= 1, "a fraction"
print("Exercise 10.2: done")
