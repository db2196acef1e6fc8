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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/asvae-book/asvae-book/blob/main/chapters/03_two_discriminators.ipynb)
#
# Symbols as in [the book's notation table](../README.md#notation); builds on [chapter 1](01_why_symmetric.ipynb), [chapter 2](02_lemma1_density_ratio.ipynb).
#
# # Chapter 3. Corollary 1.1: the two discriminators of AS-VAE
#
# Chapter 2 showed that a classifier's logit converges to the log density ratio
# of its two classes (Lemma 1). AS-VAE needs two ratios it cannot compute:
#
# * $\log q(x) - \log p_\theta(x)$: how much more likely a data point is under the
#   data than under the model, which needs the unknown data density $q(x)$;
# * $\log p(z) - \log q_\phi(z)$: how much more likely a code is under the prior
#   than under the aggregated posterior $q_\phi(z) = \mathbb{E}_{q(x)} q_\phi(z|x)$,
#   an intractable mixture over the whole data set.
#
# Corollary 1.1 of the paper (Pu et al., 2017 [Pu17]) says which pairs $(x, z)$ to
# show two classifiers, $f_\psi$ and $h_{\psi'}$, so that Lemma 1 hands us exactly
# these two ratios. This chapter will show:
#
# 1. why the pairs of (5) and (6) give these ratios: each pair of classes shares one
#    conditional, which cancels, so that at the optimum $f$ depends on $x$ alone and
#    $h$ on $z$ alone, although both see the whole pair;
# 2. the two discriminators, trained on pairs drawn exactly as the paper prescribes,
#    learning their ratios in a Gaussian world where the answers are known, and
#    flat in the variable their optimum ignores;
# 3. that the discriminator of ALI (Dumoulin et al., 2017 [Dum17]), trained the same
#    way on its own pairs, learns a different ratio: the full joint one.

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
import matplotlib.pyplot as plt
import torch

from asvae_lib.density_ratio import MLPDiscriminator, ratio_rmse, train_discriminator
from asvae_lib.gaussian_world import GaussianWorld, add_to_class
from asvae_lib.profile import pick, profile

torch.set_num_threads(1)   # tiny tensors: one thread avoids costly thread synchronisation
torch.manual_seed(0)
N_TRAIN = pick(quick=20_000, full=200_000)   # pairs per class
STEPS = pick(quick=1500, full=10_000)        # discriminator steps
N_EVAL = pick(quick=4000, full=40_000)
print("profile:", profile(), "| pairs per class:", N_TRAIN, "| steps:", STEPS)

# %% [markdown]
# ## The pairs of (5) and (6), and why they give the ratios
#
# **The $f$-discriminator (5).** Positives are real data with their codes,
# $x \sim q(x)$, $z \sim q_\phi(z|x)$: density $q(x)\,q_\phi(z|x)$.
# Negatives are *synthetic* data with *their own* codes: $z' \sim p(z)$,
# $x \sim p_\theta(x|z')$, $z \sim q_\phi(z|x)$. Integrating out $z'$,
#
# $$\int p(z')\,p_\theta(x|z')\,dz'\; q_\phi(z|x) = p_\theta(x)\, q_\phi(z|x).$$
#
# Both classes share the conditional $q_\phi(z|x)$, so by Lemma 1 the optimum is
#
# $$f^*(x,z) = \log\frac{q(x)\,q_\phi(z|x)}{p_\theta(x)\,q_\phi(z|x)} = \log q(x) - \log p_\theta(x). \tag{7}$$
#
# **The $h$-discriminator (6).** Positives: $z \sim p(z)$, $x \sim p_\theta(x|z)$,
# density $p(z)\,p_\theta(x|z)$. Negatives: $x' \sim q(x)$, $z \sim q_\phi(z|x')$,
# $x \sim p_\theta(x|z)$, density $q_\phi(z)\,p_\theta(x|z)$. The decoder conditional
# cancels:
#
# $$h^*(x,z) = \log p(z) - \log q_\phi(z). \tag{7}$$
#
# So although both networks see the whole pair, at the optimum **$f^*$ depends on
# $x$ alone and $h^*$ on $z$ alone**: the shared conditional carries no
# information about the class.
#
# **ALI (3)** instead contrasts $q_\phi(x,z) = q(x) q_\phi(z|x)$ with
# $p_\theta(x,z) = p(z) p_\theta(x|z)$; nothing cancels and its optimum is the
# full joint ratio. Writing $p_\theta(x,z) = p_\theta(x)\,p_\theta(z|x)$,
#
# $$\log\frac{q_\phi(x,z)}{p_\theta(x,z)} = f^*(x) + \log q_\phi(z|x) - \log p_\theta(z|x).$$
#
# The pairs are drawn exactly as written, in one place that serves the Gaussian world
# here and the neural model from chapter 6 on: the cells marked `#@save pairs`, the
# library's module `asvae_lib/pairs.py`. Each sampling takes real data $x$, prior codes
# $z$ and the two stochastic maps, `encode(x)` $\sim q_\phi(z|x)$ and `decode(z)`
# $\sim p_\theta(x|z)$, and returns the positive and the negative class, each a pair
# $(x, z)$. The pairs of (5): a negative decodes a prior code, then encodes the result.

# %%
#@save pairs
"""Which pairs ``(x, z)`` each discriminator sees: (3), (5) and (6) (chapter 3).

One function per sampling scheme, written once and used both by the Gaussian
world (chapters 3-4) and by the neural model (chapter 6 on). Each takes real
data ``x``, prior codes ``z``, and the two stochastic maps
``encode(x) ~ q_phi(z|x)`` and ``decode(z) ~ p_theta(x|z)``, and returns the
positive and the negative class, each a tuple ``(x, z)``.
"""


def f_pairs(x, z, encode, decode):
    """(5), the x-side: positives ``x ~ q(x), z ~ q_phi(z|x)``; negatives are
    synthetic data with their own codes, ``z' ~ p(z), x ~ p_theta(x|z'), z ~ q_phi(z|x)``.
    Optimum: ``f* = log q(x) - log p_theta(x)``."""
    x_fake = decode(z)
    return (x, encode(x)), (x_fake, encode(x_fake))


# %% [markdown]
# The pairs of (6), the mirror: a positive decodes a prior code; a negative encodes real
# data, then decodes the code.

# %%
#@save pairs
def h_pairs(x, z, encode, decode):
    """(6), the z-side: positives ``z ~ p(z), x ~ p_theta(x|z)``; negatives are
    encoded data with their decodings, ``x' ~ q(x), z ~ q_phi(z|x'), x ~ p_theta(x|z)``.
    Optimum: ``h* = log p(z) - log q_phi(z)``."""
    z_real = encode(x)
    return (decode(z), z), (decode(z_real), z_real)


# %% [markdown]
# ALI's pairs (3): one draw from each joint.

# %%
#@save pairs
def ali_pairs(x, z, encode, decode):
    """ALI (3): positives from the encoder joint ``q_phi(x, z)``, negatives from
    the decoder joint ``p_theta(x, z)``. Optimum: ``log q_phi(x,z) - log p_theta(x,z)``."""
    return (x, encode(x)), (decode(z), z)


# %% [markdown]
# ## The optimal discriminators and the pairs in the Gaussian world
#
# Chapter 1's Gaussian world has every density in closed form, so the three optima are
# differences of Gaussian log-densities: $f^*$ of the data and the model (7), $h^*$ of the
# prior and the aggregated posterior (7), ALI's of the two joints.

# %%
#@save gaussian_world
@add_to_class(GaussianWorld)
def f_star(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
    """``f*(x, z) = log q(x) - log p_theta(x)``: it ignores ``z``."""
    return self.data().log_prob(x) - self.model().log_prob(x)


@add_to_class(GaussianWorld)
def h_star(self, x: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor:
    """``h*(x, z) = log p(z) - log q_phi(z)``: it ignores ``x``."""
    return self.prior().log_prob(z) - self.aggregated_posterior().log_prob(z)


@add_to_class(GaussianWorld)
def ali_star(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """ALI's optimal discriminator for (3): ``log q_phi(x,z) - log p_theta(x,z)``."""
    xz = torch.cat([x, z], -1)
    return self.encoder_joint().log_prob(xz) - self.decoder_joint().log_prob(xz)


# %% [markdown]
# The world draws $n$ pairs of each scheme with the samplings above: data from $q(x)$,
# codes from the prior, and its reparametrised encoder and decoder as the two maps.

# %%
#@save gaussian_world
from asvae_lib import pairs


@add_to_class(GaussianWorld)
def _pairs(self, scheme, n: int, generator=None):
    x, z = self.sample_data(n, generator), self.sample_prior(n, generator)
    return scheme(x, z, lambda v: self.encode(v, generator), lambda v: self.decode(v, generator))


@add_to_class(GaussianWorld)
def f_pairs(self, n: int, generator=None):
    """``n`` positive and ``n`` negative pairs of (5): see :func:`asvae_lib.pairs.f_pairs`."""
    return self._pairs(pairs.f_pairs, n, generator)


@add_to_class(GaussianWorld)
def h_pairs(self, n: int, generator=None):
    """``n`` positive and ``n`` negative pairs of (6): see :func:`asvae_lib.pairs.h_pairs`."""
    return self._pairs(pairs.h_pairs, n, generator)


@add_to_class(GaussianWorld)
def ali_pairs(self, n: int, generator=None):
    """ALI's pairs (3): see :func:`asvae_lib.pairs.ali_pairs`."""
    return self._pairs(pairs.ali_pairs, n, generator)


# %% [markdown]
# ## A Gaussian world we can draw
#
# One-dimensional data and one-dimensional codes, so that every discriminator is
# a picture over the $(x, z)$ plane. Writing $\mathcal N(\text{mean}, \text{variance})$,
# the data are $q(x) = \mathcal N(1, 1.5^2)$; the decoder
# $p_\theta(x|z) = \mathcal N(1.2 z, 0.3)$ and encoder
# $q_\phi(z|x) = \mathcal N(0.5x + 0.3, 0.4)$ (variances 0.3 and 0.4) are deliberately *not* trained, so
# that the model $p_\theta(x)$ misses the data and the aggregated posterior misses
# the prior: both ratios are far from zero.

# %%
world = GaussianWorld(data_mean=[1.0], data_cov=[[2.25]], W=[[1.2]], b=[0.0], s2=0.3,
                      A=[[0.5]], c=[0.3], S=[0.4])
with torch.no_grad():
    for name, dist in [("data q(x)", world.data()), ("model p_theta(x)", world.model()),
                       ("prior p(z)", world.prior()), ("aggregated posterior q_phi(z)", world.aggregated_posterior())]:
        print(f"{name:32s} mean {dist.mean.item():+.3f}  variance {dist.cov.item():.3f}")

# %% [markdown]
# First, the claim about the negatives of (5) as a measurement: their joint
# density is $p_\theta(x)\,q_\phi(z|x)$, a Gaussian with mean $(b,\ A b + c)$ and
# covariance $\begin{pmatrix} P & P A^\top \\ A P & A P A^\top + S\end{pmatrix}$ with
# $P = WW^\top + s^2 I$. Sample moments must agree to within sampling error:
# five standard errors, each computed for its own entry (for a Gaussian, a sample
# mean has standard error $\sqrt{\Sigma_{ii}/n}$ and a sample covariance
# $\sqrt{(\Sigma_{ii}\Sigma_{jj} + \Sigma_{ij}^2)/n}$).

# %%
g = torch.Generator().manual_seed(0)
with torch.no_grad():
    (_, _), (x_neg, z_neg) = world.f_pairs(N_TRAIN, g)
    P, A, b, c = world.model().cov, world.A, world.b, world.c
    mean = torch.cat([b, A @ b + c])
    cov = torch.cat([torch.cat([P, P @ A.T], 1), torch.cat([A @ P, A @ P @ A.T + world.S], 1)], 0)
    sample = torch.cat([x_neg, z_neg], 1)
    emp_mean, emp_cov = sample.mean(0), torch.cov(sample.T)
print("closed form mean", mean.numpy().round(3), " sample", emp_mean.numpy().round(3))
print("closed form cov\n", cov.numpy().round(3), "\nsample cov\n", emp_cov.numpy().round(3))
se_mean = torch.sqrt(torch.diagonal(cov) / N_TRAIN)
se_cov = torch.sqrt((torch.outer(torch.diagonal(cov), torch.diagonal(cov)) + cov**2) / N_TRAIN)
z_mean, z_cov = ((emp_mean - mean) / se_mean).abs().max().item(), ((emp_cov - cov) / se_cov).abs().max().item()
print(f"largest deviation in standard errors: mean {z_mean:.2f}, covariance {z_cov:.2f} (allowed: 5)")
assert z_mean < 5 and z_cov < 5, "negatives of (5) are not p_theta(x) q_phi(z|x)"

# %% [markdown]
# ## Training $f$, $h$ and ALI's discriminator
#
# Three identical small networks (two hidden layers of 64 units), each trained
# with the objective (4) on its own pairs. The library's training loop is the one
# of chapter 2; the only difference between the three is which pairs they see.

# %%
samplers = {"f (5)": world.f_pairs, "h (6)": world.h_pairs, "ALI (3)": world.ali_pairs}
truths = {"f (5)": world.f_star, "h (6)": world.h_star, "ALI (3)": world.ali_star}
discs, histories = {}, {}
for k, (name, draw) in enumerate(samplers.items()):
    with torch.no_grad():
        pos, neg = draw(N_TRAIN, torch.Generator().manual_seed(10 + k))
    torch.manual_seed(k)
    discs[name] = MLPDiscriminator(in_dim=2, hidden=64)
    histories[name] = train_discriminator(discs[name], pos, neg, steps=STEPS, batch_size=512, lr=3e-3, seed=k)

fig, ax = plt.subplots(figsize=(6, 3))
for name, h in histories.items():
    ax.plot(torch.tensor(h).unfold(0, 50, 10).mean(1), label=name)
ax.set_xlabel("step / 10"); ax.set_ylabel("objective (4), running mean"); ax.legend()
ax.set_title("Training the three discriminators (mean over 50 steps)"); plt.show()

# %% [markdown]
# ## Learned against true, over the $(x, z)$ plane
#
# Top row: what each discriminator learned. Bottom row: the closed-form optimum.
# The dots are a few of the training pairs (white: positives, black: negatives),
# marking where the classifier has seen data; far from them nothing constrains it.
# Look at the stripes: $f^*$ is constant along $z$ (vertical stripes), $h^*$
# constant along $x$ (horizontal stripes), ALI's optimum depends on both.

# %%
xs, zs = torch.linspace(-4, 6, 121), torch.linspace(-3, 4, 101)
X, Z = torch.meshgrid(xs, zs, indexing="xy")
flat_x, flat_z = X.reshape(-1, 1).double(), Z.reshape(-1, 1).double()
fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True, sharey=True)
for col, name in enumerate(samplers):
    with torch.no_grad():
        learned = discs[name](flat_x, flat_z).reshape(X.shape)
        true = truths[name](flat_x, flat_z).reshape(X.shape)
        (px, pz), (nx, nz) = samplers[name](150, torch.Generator().manual_seed(99))
        on_data = truths[name](torch.cat([px, nx]), torch.cat([pz, nz]))
    lim = on_data.abs().max().item()   # colour scale set by the values where the pairs live; colours saturate beyond
    for row, field in enumerate([learned, true]):
        ax = axes[row, col]
        im = ax.pcolormesh(X, Z, field.float(), cmap="RdBu_r", vmin=-lim, vmax=lim, shading="auto")
        ax.scatter(px, pz, s=3, c="white"); ax.scatter(nx, nz, s=3, c="black")
        ax.set_title(("learned " if row == 0 else "true ") + name)
        fig.colorbar(im, ax=ax)
for ax in axes[1]:
    ax.set_xlabel("x")
for ax in axes[:, 0]:
    ax.set_ylabel("z")
plt.tight_layout(); plt.show()

# %% [markdown]
# ## The claims, measured
#
# At fresh pairs drawn from both classes (where the classifier saw data) we
# measure the root mean squared difference between each learned logit and
# (a) its own optimum and (b) the *other* scheme's optimum. Lemma 1 and
# Corollary 1.1 predict (a) small and, for $f$ against ALI, (b) large.

# %%
rows = {}
for k, name in enumerate(samplers):
    with torch.no_grad():
        pos, neg = samplers[name](N_EVAL, torch.Generator().manual_seed(100 + k))
        x, z = torch.cat([pos[0], neg[0]]), torch.cat([pos[1], neg[1]])
        learned = discs[name](x, z)
        rows[name] = {"rmse to own optimum": ratio_rmse(learned, truths[name](x, z)),
                      "rmse to f*": ratio_rmse(learned, world.f_star(x)),
                      "rmse to ALI's optimum": ratio_rmse(learned, world.ali_star(x, z)),
                      "spread of own optimum (std)": truths[name](x, z).std().item()}
print(f"{'':10s}" + "".join(f"{c:>30s}" for c in next(iter(rows.values()))))
for name, r in rows.items():
    print(f"{name:10s}" + "".join(f"{v:30.3f}" for v in r.values()))

# %% [markdown]
# The tolerance: an optimum that varies with a standard deviation of about one
# nat is learned from $2\times10^4$ pairs per class to within a few hundredths of a
# nat by a well-specified model (chapter 2's $1/\sqrt n$ law); the small MLP adds
# approximation and optimisation error. We require each learned logit to be
# within a quarter of its optimum's spread, and the $f$-discriminator to be at
# least three times closer to $f^*$ than to ALI's optimum.

# %%
for name, r in rows.items():
    assert r["rmse to own optimum"] < 0.25 * r["spread of own optimum (std)"], f"{name} did not learn its ratio"
assert rows["f (5)"]["rmse to ALI's optimum"] > 3 * rows["f (5)"]["rmse to own optimum"]
assert rows["ALI (3)"]["rmse to f*"] > 3 * rows["ALI (3)"]["rmse to own optimum"]
print("each discriminator learned its own ratio; f and ALI learn different ratios")

# %% [markdown]
# ## Flat in $z$, flat in $x$
#
# Slices make the flatness visible: the learned $f(x, z)$ as a function of $x$ at
# three codes $z$ falls on one curve, $f^*(x)$; the learned $h(x, z)$ as a function
# of $z$ at three data values $x$ falls on $h^*(z)$. ALI's discriminator, sliced the
# same way, fans out.

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 3.5))
x_line, z_line = torch.linspace(-2, 4, 100).double()[:, None], torch.linspace(-1.5, 2.5, 100).double()[:, None]
with torch.no_grad():
    for value in (-0.5, 0.8, 2.0):
        const = torch.full_like(x_line, value)
        axes[0].plot(x_line, discs["f (5)"](x_line, const), label=f"learned f, z={value}")
        axes[2].plot(x_line, discs["ALI (3)"](x_line, const), label=f"learned ALI, z={value}")
    for value in (-1.0, 1.0, 3.0):
        axes[1].plot(z_line, discs["h (6)"](torch.full_like(z_line, value), z_line), label=f"learned h, x={value}")
    axes[0].plot(x_line, world.f_star(x_line), "k--", lw=2, label="f*(x)")
    axes[1].plot(z_line, world.h_star(None, z_line), "k--", lw=2, label="h*(z)")
for ax, title, var in zip(axes, ["learned f(x, z) against x, at three codes z", "learned h(x, z) against z, at three data x",
                                 "ALI's learned logit against x, at three codes z"], "xzx"):
    ax.set_title(title, fontsize=10); ax.set_xlabel(var); ax.set_ylabel("logit"); ax.legend(fontsize=7)
plt.tight_layout(); plt.show()

# %% [markdown]
# As a number: for $f$, the variance *across codes* at a fixed $x$,
# $\mathbb E_x \operatorname{Var}_{z\sim q_\phi(z|x)} f(x,z)$, should be a small
# fraction of the variance *across data points*,
# $\operatorname{Var}_x \mathbb E_z f(x,z)$ (for $f^*$ it is exactly 0). Likewise for
# $h$ with $x \sim p_\theta(x|z)$ at fixed $z$. We compute both on 400 points with
# 64 draws each, and for ALI's discriminator by the same recipe as $f$'s.

# %%
spread = lambda v: (v.var(1).mean() / v.mean(1).var()).item()   # rows: outer points, columns: 64 inner draws
with torch.no_grad():
    pos, neg = world.f_pairs(200, torch.Generator().manual_seed(7))
    x_rep = torch.cat([pos[0], neg[0]]).repeat_interleave(64, 0)      # each x, 64 times
    z_given_x = world.encode(x_rep, torch.Generator().manual_seed(8))  # z ~ q_phi(z|x)
    pos, neg = world.h_pairs(200, torch.Generator().manual_seed(9))
    z_rep = torch.cat([pos[1], neg[1]]).repeat_interleave(64, 0)      # each z, 64 times
    x_given_z = world.decode(z_rep, torch.Generator().manual_seed(10))  # x ~ p_theta(x|z)
    flatness = {"f: z-variance / x-variance": spread(discs["f (5)"](x_rep, z_given_x).reshape(-1, 64)),
                "h: x-variance / z-variance": spread(discs["h (6)"](x_given_z, z_rep).reshape(-1, 64)),
                "ALI: z-variance / x-variance": spread(discs["ALI (3)"](x_rep, z_given_x).reshape(-1, 64))}
for k, v in flatness.items():
    print(f"{k:32s} {v:.4f}")
assert flatness["f: z-variance / x-variance"] < 0.05, "f is not flat in z"
assert flatness["h: x-variance / z-variance"] < 0.05, "h is not flat in x"
assert flatness["ALI: z-variance / x-variance"] > 10 * flatness["f: z-variance / x-variance"]

# %% [markdown]
# ## ALI's ratio, in closed form
#
# Finally the identity of the derivation above, checked exactly: ALI's optimum
# equals $f^*(x) + \log q_\phi(z|x) - \log p_\theta(z|x)$, where the decoder's
# posterior $p_\theta(z|x) = p_\theta(x,z)/p_\theta(x)$.

# %%
with torch.no_grad():
    (x, z), _ = world.ali_pairs(1000, torch.Generator().manual_seed(3))
    xz = torch.cat([x, z], 1)
    log_p_z_given_x = world.decoder_joint().log_prob(xz) - world.model().log_prob(x)
    rebuilt = world.f_star(x) + world.encoder_log_prob(z, x) - log_p_z_given_x
    gap = (world.ali_star(x, z) - rebuilt).abs().max().item()
print(f"max |ALI* - (f* + log q(z|x) - log p(z|x))| = {gap:.2e}")
assert gap < 1e-10

# %% [markdown]
# ## What this chapter showed
#
# * **In each pair of classes one conditional is shared, and it cancels.** So $f$
#   learns $\log q(x) - \log p_\theta(x)$ and $h$ learns $\log p(z) - \log q_\phi(z)$ from
#   samples alone: neither the data density nor the aggregated posterior is ever
#   evaluated. Trained on the pairs of (5) and (6), both networks came within a
#   quarter of their optimum's spread of it, and were flat in the variable their
#   optimum ignores.
# * **What the two ratios buy AS-VAE.** The mean of $f^*$ over real data is
#   $\mathrm{KL}(q(x)\,\|\,p_\theta(x))$, the quantity that turns the ELBO into the
#   bound $\mathcal L_x$ (chapter 4); the mean of $h^*$ over prior codes is
#   $\mathrm{KL}(p(z)\,\|\,q_\phi(z))$, the mirror quantity the VAE never looks at (chapter 1).
# * **ALI's single discriminator learns something else**: the joint ratio, which
#   adds to $f^*$ the mismatch $\log q_\phi(z|x) - \log p_\theta(z|x)$ between the encoder
#   and the decoder's posterior.
#
# A caution that chapter 4 measures: since $f^*$ ignores $z$ and $h^*$ ignores $x$,
# an *optimal* discriminator passes no gradient to the encoder through $z$ (nor to
# the decoder through $x$) in the reparametrised bound (11).

# %% [markdown]
# ## Exercises
#
# Each exercise cell is self-contained; the cell after it checks your answer
# (`make assignments` writes the student version of this chapter, with the
# solutions removed).
#
# **Exercise 3.1 (the decoder cancels in $h^*$).** A one-dimensional world:
# prior $p(z) = \mathcal N(0, 1)$, decoder $p_\theta(x|z) = \mathcal N(1.2z, 0.5^2)$,
# data $q(x) = \mathcal N(1, 1.5^2)$, encoder $q_\phi(z|x) = \mathcal N(0.5x, 0.4^2)$.
# Work out the aggregated posterior $q_\phi(z) = \int q(x)\,q_\phi(z|x)\,dx$ (a Gaussian:
# what are its mean and variance?) and implement the optimal $h$-discriminator
# $h^*(x, z) = \log p(z) - \log q_\phi(z)$ of (7). It must accept tensors $x$ and $z$
# of the same shape and ignore $x$. The check draws the pairs of (6) as the
# chapter does and confirms that moving $h^*$ in any of several directions,
# including directions that depend on $x$, lowers the objective (4).

# %% nbgrader={"grade": false, "grade_id": "ex3_1", "locked": false, "schema_version": 3, "solution": true}
import math

import torch


def h_star(x, z):
    """log p(z) - log q_phi(z) for the world above, element-wise; x is ignored."""
    ### BEGIN SOLUTION
    mean, var = 0.5 * 1.0, 0.5**2 * 1.5**2 + 0.4**2    # z = 0.5 x + 0.4 e with x ~ N(1, 1.5^2)
    log_prior = -0.5 * (math.log(2 * math.pi) + z**2)
    log_aggregate = -0.5 * (math.log(2 * math.pi * var) + (z - mean) ** 2 / var)
    return log_prior - log_aggregate + 0 * x
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex3_1_check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
g = torch.Generator().manual_seed(0)
n = 400_000
randn = lambda: torch.randn(n, generator=g, dtype=torch.float64)
z_pos = randn()                                      # positives of (6): z ~ p(z), x ~ p(x|z)
x_pos = 1.2 * z_pos + 0.5 * randn()
x_data = 1 + 1.5 * randn()                           # negatives: x' ~ q(x), z ~ q(z|x'), x ~ p(x|z)
z_neg = 0.5 * x_data + 0.4 * randn()
x_neg = 1.2 * z_neg + 0.5 * randn()
objective = lambda h: (torch.nn.functional.logsigmoid(h(x_pos, z_pos)).mean()
                       + torch.nn.functional.logsigmoid(-h(x_neg, z_neg)).mean()).item()
best = objective(h_star)
for name, move in (("+0.2", lambda x, z: 0.2 + 0 * x), ("+0.1 x", lambda x, z: 0.1 * x),
                   ("-0.1 x", lambda x, z: -0.1 * x), ("+0.1 z", lambda x, z: 0.1 * z),
                   ("+0.05 z^2", lambda x, z: 0.05 * z**2)):
    moved = objective(lambda x, z, move=move: h_star(x, z) + move(x, z))
    print(f"(4) at h*: {best:.5f}; moved by {name}: {moved:.5f}")
    assert moved < best - 2e-4, f"moving h* by {name} should lower the objective (4)"
### BEGIN HIDDEN TESTS
x, z = torch.meshgrid(torch.linspace(-4, 4, 41, dtype=torch.float64),
                      torch.linspace(-3, 3, 31, dtype=torch.float64), indexing="ij")
N = torch.distributions.Normal
q_z = N(0.5, math.sqrt(0.5**2 * 1.5**2 + 0.4**2))
truth = N(0.0, 1.0).log_prob(z) + N(1.2 * z, 0.5).log_prob(x) - q_z.log_prob(z) - N(1.2 * z, 0.5).log_prob(x)
assert torch.allclose(h_star(x, z), truth, atol=1e-10)
### END HIDDEN TESTS
print("Exercise 3.1: correct")

# %% [markdown]
# **Exercise 3.2 (draw the negatives of (6) differently: predict, then measure).**
# In (6) a negative is made in three steps: $x' \sim q(x)$, $z \sim q_\phi(z|x')$,
# and then $x \sim p_\theta(x|z)$, a fresh $x$ decoded from the code. Skip the last
# step and use the pair $(x', z)$ as the negative, keeping the positives of (6).
# What does $h$ learn now? Work out its optimum in the world of exercise 3.1 and
# implement it as `h_changed(x, z)` (element-wise; it may depend on $x$ and $z$).
# That is your prediction. The check trains a classifier on the changed pairs (a
# logistic regression on $(1, x, z, x^2, xz, z^2)$, which can represent the log
# ratio of any two Gaussians) and measures how far its logit is from your
# prediction, from the $h^*$ of (7), and how much it depends on $x$.

# %% nbgrader={"grade": false, "grade_id": "ex3_2", "locked": false, "schema_version": 3, "solution": true}
import math

import torch


def h_changed(x, z):
    """The optimum of (4) for positives z ~ p(z), x ~ p(x|z) and negatives x ~ q(x), z ~ q(z|x)."""
    ### BEGIN SOLUTION
    # Lemma 1 with positives p(z) p(x|z) and negatives q(x) q(z|x): nothing is shared, nothing
    # cancels, and the optimum is minus ALI's joint ratio, a function of x and z
    log_normal = lambda v, mean, std: -0.5 * ((v - mean) / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)
    return log_normal(z, 0.0, 1.0) + log_normal(x, 1.2 * z, 0.5) - log_normal(x, 1.0, 1.5) - log_normal(z, 0.5 * x, 0.4)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex3_2_check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
import math

import torch

g = torch.Generator().manual_seed(0)
randn = lambda n: torch.randn(n, generator=g, dtype=torch.float64)


def pairs(n):
    """The positives of (6), and the changed negatives (x', z) with x' ~ q(x), z ~ q(z|x')."""
    z_pos = randn(n)
    x_pos = 1.2 * z_pos + 0.5 * randn(n)
    x_neg = 1 + 1.5 * randn(n)
    return (x_pos, z_pos), (x_neg, 0.5 * x_neg + 0.4 * randn(n))


features = lambda x, z: torch.stack([torch.ones_like(x), x, z, x * x, x * z, z * z], 1)
(xp, zp), (xn, zn) = pairs(50_000)
phi, label = torch.cat([features(xp, zp), features(xn, zn)]), torch.cat([torch.ones(50_000), torch.zeros(50_000)]).double()
w = torch.zeros(6, dtype=torch.float64)
for _ in range(30):   # Newton's method on the logistic log-likelihood, i.e. on (4)
    s = torch.sigmoid(phi @ w)
    w = w + torch.linalg.solve((phi * (s * (1 - s))[:, None]).T @ phi, phi.T @ (label - s))
(xp, zp), (xn, zn) = pairs(20_000)                    # fresh pairs from both classes
x, z = torch.cat([xp, xn]), torch.cat([zp, zn])
learned = features(x, z) @ w
var_q = 0.5**2 * 1.5**2 + 0.4**2                       # the aggregated posterior N(0.5, var_q) of exercise 3.1
h_star_7 = -0.5 * z**2 + 0.5 * (z - 0.5) ** 2 / var_q + 0.5 * math.log(var_q)
rmse = lambda a: ((learned - a) ** 2).mean().sqrt().item()
print(f"RMSE of the learned logit to your prediction {rmse(h_changed(x, z)):.3f}, to h* of (7) {rmse(h_star_7):.3f} "
      f"(spread of the learned logit {learned.std():.3f})")
print(f"learned coefficients of x, x^2, x z: {w[1]:+.3f}, {w[3]:+.3f}, {w[4]:+.3f} (all 0 for h* of (7))")
assert rmse(h_changed(x, z)) < 0.1, "the classifier learned something else than your prediction"
print("Exercise 3.2: done")
