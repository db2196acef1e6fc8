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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/asvae-book/asvae-book/blob/main/chapters/02_lemma1_density_ratio.ipynb)
#
# Symbols as in [the book's notation table](../README.md#notation); builds on [chapter 1](01_why_symmetric.ipynb).
#
# # Chapter 2. Lemma 1: a classifier's logit is a log density ratio
#
# AS-VAE (Pu et al., 2017 [Pu17]) needs two log density ratios nobody can write
# down: $\log q(x) - \log p_\theta(x)$, where the data density $q(x)$ is known only
# through samples, and $\log p(z) - \log q_\phi(z)$, where the aggregated posterior
# $q_\phi(z)$ is an intractable average over the data. Both come from the paper's
# Lemma 1, the analogue of Proposition 1 of the GAN paper (Goodfellow et al., 2014
# [Goo14]) and an instance of density-ratio estimation by classification (Sugiyama
# et al., 2012 [SSK12]): **train a classifier to tell samples of $p$ from samples of
# $q$, and its logit becomes $\log p - \log q$.** This chapter will show:
#
# 1. the lemma, its proof, and what the classifier's objective is worth at the
#    optimum and near it;
# 2. a small network, trained on samples of two Gaussians in the plane, drawing
#    their log ratio where the samples are;
# 3. the error of the learned ratio falling like $1/\sqrt n$ in the number of
#    samples $n$ when the classifier can represent the ratio, and a flexible
#    classifier fitting its samples rather than the ratio when $n$ is small;
# 4. in one dimension, sliders that move $q$ and retrain the classifier.

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
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from asvae_lib.gaussians import Gaussian
from asvae_lib.profile import pick, profile

torch.set_num_threads(1)   # tiny networks: one thread is faster than several, which spin waiting for each other
CHAPTER_START = time.time()
print("profile:", profile())

# %% [markdown]
# ## 2.1 The lemma and its proof
#
# Let $p(u)$ and $q(u)$ be two densities on one space (in the paper $u=(x,z)$ and
# $p$, $q$ are joints; nothing below uses that). With $\sigma(t) = 1/(1+e^{-t})$,
# the paper's objective (4) for a function $f$ is
#
# $$
# V(f) \;=\; \mathbb{E}_{u\sim p}\big[\log \sigma(f(u))\big] \;+\; \mathbb{E}_{u\sim q}\big[\log\big(1-\sigma(f(u))\big)\big], \tag{4}
# $$
#
# the log-likelihood of a logistic classifier with logit $f$ that labels samples
# of $p$ as 1 and samples of $q$ as 0, equally many of each.
#
# **Lemma 1.** The maximiser of (4) over all functions $f$ is $f^*(u) = \log p(u) - \log q(u)$.
#
# **Proof.** $V(f) = \int \big[ p(u)\log \sigma(f(u)) + q(u)\log(1-\sigma(f(u))) \big]\, du$,
# and the integrand at $u$ depends on $f$ only through $s = \sigma(f(u))\in(0,1)$, so
# $V$ is maximised at every $u$ separately. With $a = p(u) > 0$, $b = q(u) > 0$ the
# integrand $\varphi(s) = a\log s + b\log(1-s)$ is strictly concave
# ($\varphi'' = -a/s^2 - b/(1-s)^2 < 0$) and $\varphi'(s) = a/s - b/(1-s)$ vanishes only
# at $s^* = a/(a+b)$. So $\sigma(f^*(u)) = p(u)/(p(u)+q(u))$, and inverting the
# sigmoid, $\sigma^{-1}(s) = \log\frac{s}{1-s}$, gives $f^*(u) = \log p(u) - \log q(u)$. $\blacksquare$
# (Where exactly one density vanishes, $f^*$ is $\pm\infty$; the Gaussians below have full support.)
#
# **At the optimum and near it.** With the mixture $m = \tfrac12(p+q)$,
# $\log\sigma(f^*) = \log\frac{p}{m} - \log 2$ and $\log(1-\sigma(f^*)) = \log\frac{q}{m} - \log 2$,
# so $V(f^*) = \mathrm{KL}(p\|m) + \mathrm{KL}(q\|m) - \log 4 = 2\,\mathrm{JSD}(p,q) - \log 4 \in [-\log 4, 0]$.
# Subtracting the integrand at $s = \sigma(f(u))$ from that at $s^*$, for any $f$,
#
# $$
# V(f^*) - V(f) = 2\,\mathbb{E}_{m}\Big[\mathrm{KL}\big(\mathrm{Bern}(\sigma(f^*))\,\big\|\,\mathrm{Bern}(\sigma(f))\big)\Big]
# \;\le\; \tfrac14\,\mathbb{E}_{m}\big[(f-f^*)^2\big],
# $$
#
# because in logits the Bernoulli KL is the Bregman divergence
# $A(f) - A(f^*) - \sigma(f^*)(f-f^*)$ of $A(t) = \log(1+e^t)$, whose curvature
# $\sigma(1-\sigma)$ is at most $\tfrac14$. So the error of a learned logit that
# matters is its squared error **under the mixture** $m$, where the classifier has
# data: this chapter measures it there (`ratio_rmse` at fresh draws from $m$).
#
# **The objective in code.** With samples in place of expectations, (4) is the mean
# of $\log\sigma(f)$ over the logits of the positives (samples of $p$) plus the mean of
# $\log(1-\sigma(f))$ over the logits of the negatives (samples of $q$). The second
# term is computed as $\log(1-\sigma(t)) = \log\sigma(-t)$: `logsigmoid` evaluates
# it without forming $1-\sigma(t)$, which rounds to 0 once $t$ exceeds about 17 in
# float32 (37 in float64) and would give $\log 0$. The cells marked
# `#@save density_ratio` are the library's module `asvae_lib/density_ratio.py`, which
# chapters 3 and 4 and the models import.

# %%
#@save density_ratio
"""Density ratios by classification: Lemma 1 and the discriminators of AS-VAE (chapter 2).

Lemma 1: the ``f`` that maximises the objective (4),
``E_p[log sigma(f(u))] + E_q[log(1 - sigma(f(u)))]``, is ``f*(u) = log p(u) - log q(u)``. So
a classifier that tells samples of ``p`` (label 1) from samples of ``q`` (label 0) learns
the log density ratio in its logit. AS-VAE uses this twice (Corollary 1.1): ``f`` on the
pairs of (5) and ``h`` on the pairs of (6). Inputs are tuples of tensors (``(x, z)`` for
the joint discriminators, ``(u,)`` for a single variable), concatenated along the last axis.
"""
import torch
import torch.nn.functional as F


def logistic_objective(logit_pos: torch.Tensor, logit_neg: torch.Tensor) -> torch.Tensor:
    """The objective (4): ``mean log sigma(f_pos) + mean log(1 - sigma(f_neg))``.

    ``log(1 - sigma(t)) = log sigma(-t)``, computed stably by ``logsigmoid``.
    """
    return F.logsigmoid(logit_pos.float()).mean() + F.logsigmoid(-logit_neg.float()).mean()


# %% [markdown]
# **Check: the pointwise maximum.** For a few pairs $(a, b)$, some very unequal,
# the argmax of $\varphi$ over $10^6$ grid values of $s$ is $a/(a+b)$ and its logit
# is $\log a - \log b$, to within what one grid step allows: the argmax is at most
# one step from $s^*$, and moving $s$ by one step moves the logit
# $\log\frac{s}{1-s}$ by about the step divided by $s^*(1-s^*)$. The last line checks
# `logistic_objective` against (4) written out with $\log(1-\sigma)$, at logits mild
# enough for that form to be exact.

# %%
s_grid = torch.linspace(1e-7, 1 - 1e-7, 1_000_001, dtype=torch.float64)
dx = (s_grid[1] - s_grid[0]).item()
print(f"grid step dx = {dx:.1e}\n{'a':>6} {'b':>6} | {'argmax s':>9} {'a/(a+b)':>9} | {'its logit':>9} {'log a/b':>9}")
for a, b in [(1.0, 1.0), (0.3, 2.0), (5.0, 0.2), (0.01, 1.0), (2.0, 1e-3)]:
    s_hat = s_grid[int(torch.argmax(a * torch.log(s_grid) + b * torch.log1p(-s_grid)))].item()
    s_star, logit_hat = a / (a + b), math.log(s_hat / (1 - s_hat))
    print(f"{a:6.3g} {b:6.3g} | {s_hat:9.6f} {s_star:9.6f} | {logit_hat:9.5f} {math.log(a / b):9.5f}")
    assert abs(s_hat - s_star) <= dx                                              # at most one grid step off,
    assert abs(logit_hat - math.log(a / b)) <= 2 * dx / (s_star * (1 - s_star))   # which moves the logit ~dx/(s*(1-s*))
pos, neg = torch.tensor([0.0, 2.0, -1.5]), torch.tensor([-1.0, 0.5])
by_hand = torch.log(torch.sigmoid(pos)).mean() + torch.log(1 - torch.sigmoid(neg)).mean()
print(f"(4) at logits {pos.tolist()} and {neg.tolist()}: {logistic_objective(pos, neg).item():.6f}, by hand {by_hand.item():.6f}")
assert abs(logistic_objective(pos, neg) - by_hand) < 1e-6

# %% [markdown]
# ## 2.2 Two Gaussians and their log ratio
#
# Take $p = \mathcal N(0, I)$ and $q = \mathcal N(\mu, \Sigma)$ in $\mathbb{R}^2$ with
# $\mu = (1, 0.5)^\top$, $\Sigma = \begin{pmatrix}0.5 & 0.2\\0.2 & 1.5\end{pmatrix}$. Their log ratio is a quadratic,
#
# $$
# f^*(u) = \log p(u) - \log q(u) = \tfrac12\,u^\top(\Sigma^{-1}-I)\,u \;-\; \mu^\top\Sigma^{-1}u
# \;+\; \tfrac12\,\mu^\top\Sigma^{-1}\mu + \tfrac12\log|\Sigma| ,
# $$
#
# but a classifier is never told this: it gets $n$ samples of each and maximises
# (4) with sample means in place of expectations. The chapter trains two: one whose
# family contains $f^*$ (this section), and a small network that knows nothing about
# quadratics, like the paper's discriminators (section 2.3).
#
# **A well-specified classifier.** `QuadraticDiscriminator` is logistic regression on
# the features $(u_i)_i$ and $(u_iu_j)_{i\le j}$ plus a bias, in $\mathbb R^2$ on
# $(u_1, u_2, u_1^2, u_1u_2, u_2^2)$: its logit can be any quadratic polynomial in $u$,
# so it can represent $f^*$ exactly (checked below) and its only error is estimation
# error. It works in float64 and starts at the zero logit,
# $\sigma = \tfrac12$ everywhere.

# %%
#@save density_ratio
import torch
from torch import nn


class QuadraticDiscriminator(nn.Module):
    """Logistic regression on ``(1, u_i, u_i u_j)``: a logit ``u^T Q u + w^T u + a``.

    The log ratio of two Gaussians is exactly such a quadratic, so in the
    Gaussian world this discriminator is well specified: it can represent ``f*``,
    ``h*`` and ALI's ratio exactly, and its error is pure estimation error.
    """

    def __init__(self, in_dim: int):
        super().__init__()
        self.rows, self.cols = torch.triu_indices(in_dim, in_dim)
        self.linear = nn.Linear(in_dim + len(self.rows), 1, dtype=torch.float64)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        u = torch.cat(parts, -1).to(torch.float64)
        feats = torch.cat([u, u[:, self.rows] * u[:, self.cols]], -1)
        return self.linear(feats).squeeze(-1)


# %% [markdown]
# **The error that matters.** Section 2.1 showed that a learned logit $f$ costs (4) at
# most $\tfrac14\mathbb E_m[(f-f^*)^2]$, so the book scores a classifier by the root
# mean square of $f - f^*$ at fresh draws from the mixture $m$: equally many points
# from $p$ and from $q$, never used for training.

# %%
#@save density_ratio
import torch


def ratio_rmse(learned: torch.Tensor, true: torch.Tensor) -> float:
    """Root mean squared difference between a learned logit and the true log ratio,
    both evaluated at the same points (drawn from where the classes live)."""
    return torch.sqrt(((learned.double() - true.double()) ** 2).mean()).item()


# %% [markdown]
# The evaluation points, $f^*$ at them, and the quadratic classifier with its
# weights set by hand to the coefficients of $f^*$ above ($u_1u_2$ gets the
# off-diagonal of $\tfrac12(\Sigma^{-1}-I)$ twice). The cell also estimates
# $V(f^*) = 2\,\mathrm{JSD}(p,q) - \log 4$ by Monte Carlo (no closed form here).

# %%
dtype = torch.float64
p = Gaussian(torch.zeros(2, dtype=dtype), torch.eye(2, dtype=dtype))
q = Gaussian(torch.tensor([1.0, 0.5], dtype=dtype), torch.tensor([[0.5, 0.2], [0.2, 1.5]], dtype=dtype))
# evaluation points, never used for training: n_eval draws from p and n_eval from q = 2 n_eval from m
n_eval = pick(quick=50_000, full=500_000)
g_eval = torch.Generator().manual_seed(2017)
u_p, u_q = p.sample(n_eval, g_eval), q.sample(n_eval, g_eval)
u_m = torch.cat([u_p, u_q])
f_p, f_q = p.log_prob(u_p) - q.log_prob(u_p), p.log_prob(u_q) - q.log_prob(u_q)  # f* = log p - log q
f_m = torch.cat([f_p, f_q])
print(f"{2 * n_eval} evaluation points from m; f* there has std {f_m.std():.3f}, range [{f_m.min():.1f}, {f_m.max():.1f}]")

S_inv = torch.linalg.inv(q.cov)   # f* as a QuadraticDiscriminator (u1 u2 gets the off-diagonal twice)
M = 0.5 * (S_inv - torch.eye(2, dtype=dtype))
exact_quad = QuadraticDiscriminator(2)
with torch.no_grad():
    exact_quad.linear.weight.copy_(torch.cat([-(q.mean @ S_inv), torch.stack([M[0, 0], 2 * M[0, 1], M[1, 1]])])[None])
    exact_quad.linear.bias.copy_((0.5 * q.mean @ S_inv @ q.mean + 0.5 * torch.logdet(q.cov))[None])
    err = ratio_rmse(exact_quad(u_m), f_m)
print(f"RMSE between the hand-set quadratic and log p - log q: {err:.1e}")
assert err < 1e-10   # float64 rounding: the quadratic family contains f*

lp_star, lq_star = F.logsigmoid(f_p), F.logsigmoid(-f_q)  # per-point terms of (4) at f*
V_star = (lp_star.mean() + lq_star.mean()).item()
V_star_se = math.sqrt(lp_star.var().item() / n_eval + lq_star.var().item() / n_eval)
print(f"V(f*) = {V_star:.4f} +- {V_star_se:.4f} (-log 4 = {-math.log(4):.4f}), "
      f"so JSD(p, q) = {(V_star + math.log(4)) / 2:.4f} nats (at most log 2 = {math.log(2):.4f})")
assert -math.log(4) < V_star - 3 * V_star_se and V_star + 3 * V_star_se < 0   # inside [-log 4, 0], to 3 s.e.

# %% [markdown]
# ## 2.3 A network learns the ratio
#
# A multilayer perceptron alternates affine maps with a pointwise nonlinearity:
# `depth` hidden layers of `hidden` units, each a linear map, the activation and
# (optionally) dropout, then a linear map to the output. Every fully connected network
# of the book is one `mlp`: the discriminators here, with the smooth SiLU
# $t\,\sigma(t)$, and the encoders and decoders of the models of chapters 6 to 8, with
# the leaky ReLU $\max(t, 0.2\,t)$.

# %%
#@save density_ratio
from torch import nn


def mlp(in_dim: int, out_dim: int, hidden: int = 128, depth: int = 2, dropout: float = 0.0,
        activation=lambda: nn.LeakyReLU(0.2)) -> nn.Sequential:
    """A plain multilayer perceptron: ``depth`` times (linear, ``activation()``, dropout), then linear.
    Every fully connected network of the library is one: the discriminators here (SiLU), the
    encoders and decoders of ``models`` (leaky ReLU, the default)."""
    layers, d = [], in_dim
    for _ in range(depth):
        layers += [nn.Linear(d, hidden), activation(), nn.Dropout(dropout)]
        d = hidden
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


# %% [markdown]
# `MLPDiscriminator` is such a network with one output, the logit $f(u)$: it
# concatenates its inputs (one tensor $u$ here, a pair $(x, z)$ in chapter 3) and
# knows nothing about quadratics. Here it has two hidden layers of 32 SiLU units.
# Dropout is the regulariser the paper puts on its discriminators; this chapter
# trains without it.

# %%
#@save density_ratio
import torch
from torch import nn


class MLPDiscriminator(nn.Module):
    """A small multilayer perceptron ``f_psi(x, z)`` returning a logit.

    Smooth activations (SiLU) suit a smooth target ratio; ``dropout`` is the
    regulariser the paper uses on its discriminators.
    """

    def __init__(self, in_dim: int, hidden: int = 64, depth: int = 2, dropout: float = 0.0):
        super().__init__()
        self.net = mlp(in_dim, 1, hidden, depth, dropout, activation=nn.SiLU)

    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        u = torch.cat(parts, -1).to(self.net[0].weight.dtype)
        return self.net(u).squeeze(-1)


# %% [markdown]
# Training is gradient ascent on the sample version of (4) with Adam (Kingma and
# Ba, 2015 [KB15]) over minibatches drawn, with a fixed seed, from fixed samples of
# each class; with `anneal` the step size decays to zero on a cosine, so that the
# final classifier does not jitter with the minibatch noise.

# %%
#@save density_ratio
import torch
from torch import nn
from tqdm.auto import tqdm


def train_discriminator(disc: nn.Module, pos: tuple, neg: tuple, steps: int = 1000,
                        batch_size: int = 256, lr: float = 1e-2, seed: int = 0,
                        progress: bool = True, anneal: bool = False) -> list:
    """Maximise (4) over ``disc`` on a fixed set of positive and negative samples.

    ``pos`` and ``neg`` are tuples of tensors (``(x, z)`` or ``(u,)``) with the same
    number of rows each. Minibatches are drawn from them with a fixed seed.
    With ``anneal`` the learning rate decays to zero on a cosine, which removes
    most of the minibatch noise from the final discriminator.
    Returns the objective (4) per step, so a chapter can plot it.
    """
    g = torch.Generator().manual_seed(seed)
    n_pos, n_neg = pos[0].shape[0], neg[0].shape[0]
    opt = torch.optim.Adam(disc.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps) if anneal else None
    history = []
    disc.train()
    for _ in tqdm(range(steps), desc="discriminator", disable=not progress, leave=False):
        i = torch.randint(n_pos, (min(batch_size, n_pos),), generator=g)
        j = torch.randint(n_neg, (min(batch_size, n_neg),), generator=g)
        objective = logistic_objective(disc(*[t[i] for t in pos]), disc(*[t[j] for t in neg]))
        opt.zero_grad()
        (-objective).backward()
        opt.step()
        if schedule is not None:
            schedule.step()
        history.append(objective.item())
    disc.eval()
    return history


# %% [markdown]
# The MLP gets $10^4$ samples of each class and 400 steps of 1024 (the full profile
# ten times both). The maps carry the contours of the **true** $f^*$ (black) and,
# dashed, the line inside which the mixture $m$ has its mass (density above 1% of its
# peak): where the classifier saw data. Right: learned against true at fresh points.

# %%
n_train = pick(quick=10_000, full=100_000)
mlp_recipe = dict(batch_size=1024, steps=pick(quick=400, full=4000), lr=2e-2, anneal=True)
g_train = torch.Generator().manual_seed(0)
x_pos, x_neg = p.sample(n_train, g_train), q.sample(n_train, g_train)  # labels: p -> 1, q -> 0
torch.manual_seed(0)
mlp_disc = MLPDiscriminator(2, hidden=32)
history = train_discriminator(mlp_disc, (x_pos,), (x_neg,), seed=0, **mlp_recipe)
with torch.no_grad():
    f_hat_p, f_hat_q = mlp_disc(u_p).double(), mlp_disc(u_q).double()
f_hat_m = torch.cat([f_hat_p, f_hat_q])
rmse_mlp = ratio_rmse(f_hat_m, f_m)
print(f"MLP trained on {n_train} samples of each class, {len(history)} steps of {mlp_recipe['batch_size']}; "
      f"objective (4) on the last 20 minibatches {np.mean(history[-20:]):.4f}, V(f*) = {V_star:.4f}")
print(f"RMSE of the learned logit against log p - log q at fresh draws from m: {rmse_mlp:.4f} "
      f"(the best constant scores the std of f*, {f_m.std():.3f}; R^2 = {1 - rmse_mlp**2 / f_m.var().item():.4f})")

lo, hi, res = -3.5, 4.5, 161
G1, G2 = torch.meshgrid(torch.linspace(lo, hi, res, dtype=dtype), torch.linspace(lo, hi, res, dtype=dtype), indexing="xy")
grid = torch.stack([G1.reshape(-1), G2.reshape(-1)], -1)
with torch.no_grad():
    learned_grid = mlp_disc(grid).double().reshape(res, res)
true_grid = (p.log_prob(grid) - q.log_prob(grid)).reshape(res, res)
m_grid = (0.5 * (p.log_prob(grid).exp() + q.log_prob(grid).exp())).reshape(res, res)
fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
for ax, field, title in [(axes[0], learned_grid, "learned logit f(u) (MLP)"), (axes[1], true_grid, "true log p(u) - log q(u)")]:
    # colours saturate at +-6: f* reaches 18 in a corner, where neither class has samples
    im = ax.imshow(field.numpy(), origin="lower", extent=[lo, hi, lo, hi], cmap="RdBu_r", vmin=-6, vmax=6)
    ax.clabel(ax.contour(G1, G2, true_grid, levels=[-4, -2, 0, 2, 4], colors="k", linewidths=0.8, linestyles="solid"), fontsize=7)
    ax.contour(G1, G2, m_grid, levels=[0.01 * m_grid.max().item()], colors="0.4", linestyles="--")
    ax.set_title(title); ax.set_xlabel("u1"); ax.set_ylabel("u2")
fig.colorbar(im, ax=axes[:2], shrink=0.85, label="log ratio (colours saturate at +-6)")
idx = torch.randperm(2 * n_eval, generator=torch.Generator().manual_seed(1))[:3000]
for part, label in [(idx < n_eval, "points drawn from p"), (idx >= n_eval, "points drawn from q")]:
    axes[2].scatter(f_m[idx][part], f_hat_m[idx][part], s=3, alpha=0.4, label=label)
span = [f_m[idx].min().item(), f_m[idx].max().item()]
axes[2].plot(span, span, "k--", lw=1, label="identity")
axes[2].set_xlabel("true log p - log q"); axes[2].set_ylabel("learned logit")
axes[2].set_title(f"at fresh draws from m: RMSE {rmse_mlp:.3f}"); axes[2].legend(markerscale=4, fontsize=8)
plt.show()

# %% [markdown]
# Inside the dashed line the two maps agree; outside it the network extrapolates
# with whatever shape it happened to learn, because (4) says nothing about places
# where neither $p$ nor $q$ puts mass.
#
# **Check.** (a) The RMSE under $m$ is below 0.35, where a classifier that learned
# nothing scores the spread of $f^*$ (section 2.4 checks this threshold on more
# seeds). (b) The loss $V(f^*) - V(f)$ on the fresh samples lies between 0 and
# $\mathrm{RMSE}^2/4$ (section 2.1), to three paired standard errors. (c) The identity
# behind the bound holds at every point: with $d_p = \log\sigma(f^*) - \log\sigma(f)$ and
# $d_q = \log\sigma(-f^*) - \log\sigma(-f)$, $\sigma(f^*)\,d_p + (1-\sigma(f^*))\,d_q$ is the Bernoulli KL.

# %%
d_p, d_q = lp_star - F.logsigmoid(f_hat_p), lq_star - F.logsigmoid(-f_hat_q)  # per-point loss of the learned f
loss, loss_se = (d_p.mean() + d_q.mean()).item(), math.sqrt(d_p.var().item() / n_eval + d_q.var().item() / n_eval)
s_m = torch.sigmoid(f_m)   # Bernoulli KL in logits, A(f) - A(f*) - s* (f - f*) with A(t) = -logsigmoid(-t)
kl_m = F.logsigmoid(-f_m) - F.logsigmoid(-f_hat_m) - s_m * (f_hat_m - f_m)
identity = s_m * (F.logsigmoid(f_m) - F.logsigmoid(f_hat_m)) + (1 - s_m) * (F.logsigmoid(-f_m) - F.logsigmoid(-f_hat_m))
pointwise = (identity - kl_m).abs().max().item()
print(f"loss V(f*) - V(f) = {loss:.5f} +- {loss_se:.5f};  2 E_m KL = {2 * kl_m.mean().item():.5f};  "
      f"bound RMSE^2 / 4 = {rmse_mlp**2 / 4:.5f}")
print(f"largest |s* d_p + (1 - s*) d_q - KL| over {2 * n_eval} points: {pointwise:.1e}")
assert rmse_mlp < 0.35
assert -3 * loss_se < loss < rmse_mlp**2 / 4 + 3 * loss_se
assert pointwise < 1e-10

# %% [markdown]
# The classifier loses only thousandths of a nat of (4) to $f^*$ although its logit
# is off by tenths of a nat: (4) is flat at its maximum, good news for training and
# bad news for anyone who reads a ratio off a classifier because its objective is
# "nearly optimal". The bound is loose here because the largest errors sit where
# $|f^*|$ is large (right of the scatter plot) and the curvature $\sigma(f^*)(1-\sigma(f^*))$ is small.

# %% [markdown]
# ## 2.4 How the error shrinks with the number of samples
#
# Both classifiers are trained on $n$ samples of each class for a range of $n$ and a
# few seeds, and measured at the same fresh points. The quadratic's sample optimum
# is the maximum-likelihood estimate of six logistic-regression coefficients; the
# model is well specified, so the estimate is off by $O_p(n^{-1/2})$ and the RMSE,
# the square root of a quadratic form in that error, falls like $1/\sqrt n$: slope
# $-\tfrac12$ on log-log axes. The MLP has no such guarantee. The loop also records
# (4) of each classifier minus (4) of $f^*$, on its training samples and on fresh ones.

# %%
n_list = pick(quick=[100, 300, 1000, 3000, 10_000], full=[100, 300, 1000, 3000, 10_000, 30_000, 100_000],
              smoke=[100, 300, 1000, 3000, 10_000])
n_seeds = pick(quick=3, full=10, smoke=3)
quad_recipe = dict(steps=pick(quick=300, full=1000), lr=0.1, anneal=True)  # batches: bootstrap resamples of all n
results = {"quadratic": np.zeros((len(n_list), n_seeds)), "MLP": np.zeros((len(n_list), n_seeds))}
objective = {k: {part: np.zeros((len(n_list), n_seeds)) for part in ("train", "fresh", "fresh_se")} for k in results}
t0 = time.time()
for i, n in enumerate(n_list):
    for seed in range(n_seeds):
        g = torch.Generator().manual_seed(10_000 * seed + n)
        pos, neg = (p.sample(n, g),), (q.sample(n, g),)
        torch.manual_seed(seed)
        quad, net = QuadraticDiscriminator(2), MLPDiscriminator(2, hidden=32)
        train_discriminator(quad, pos, neg, batch_size=n, seed=seed, progress=False, **quad_recipe)
        mlp_steps = max(400, 40 * n // mlp_recipe["batch_size"])  # at least 400 steps, else ~40 passes
        train_discriminator(net, pos, neg, seed=seed, progress=False, **dict(mlp_recipe, steps=mlp_steps))
        f_star_pos, f_star_neg = p.log_prob(pos[0]) - q.log_prob(pos[0]), p.log_prob(neg[0]) - q.log_prob(neg[0])
        for name, disc in [("quadratic", quad), ("MLP", net)]:
            with torch.no_grad():
                fp_, fq_ = disc(u_p).double(), disc(u_q).double()
                results[name][i, seed] = ratio_rmse(torch.cat([fp_, fq_]), f_m)
                objective[name]["train"][i, seed] = (logistic_objective(disc(*pos), disc(*neg))
                                                     - logistic_objective(f_star_pos, f_star_neg)).item()
                dp, dq = lp_star - F.logsigmoid(fp_), lq_star - F.logsigmoid(-fq_)
                objective[name]["fresh"][i, seed] = -(dp.mean() + dq.mean()).item()  # V(f) - V(f*)
                objective[name]["fresh_se"][i, seed] = math.sqrt(dp.var().item() / n_eval + dq.var().item() / n_eval)
print(f"{len(n_list) * n_seeds * 2} classifiers trained in {time.time() - t0:.1f} s")
geo = {k: np.exp(np.log(v).mean(1)) for k, v in results.items()}  # geometric mean over seeds
log_n, slopes = np.log(np.repeat(np.array(n_list, dtype=float), n_seeds)), {}
for name, r in results.items():
    y = np.log(r.reshape(-1))
    slope, intercept = np.polyfit(log_n, y, 1)
    slopes[name] = (slope, math.sqrt((y - slope * log_n - intercept).var(ddof=2) / ((log_n - log_n.mean()) ** 2).sum()))
o_q, o_m = objective["quadratic"], objective["MLP"]
print(f"{'':7} | {'RMSE under m, geometric mean':^33} | {'(4) of f minus (4) of f*, mean over seeds':^47}")
print(f"{'n':>7} | {'quadratic':>11}{'x sqrt(n)':>11}{'MLP':>11} | {'quad train':>11}{'quad fresh':>12}{'MLP train':>12}{'MLP fresh':>12}")
for i, n in enumerate(n_list):
    print(f"{n:>7} | {geo['quadratic'][i]:11.4f}{geo['quadratic'][i] * math.sqrt(n):11.2f}{geo['MLP'][i]:11.4f} | "
          f"{o_q['train'][i].mean():+11.5f}{o_q['fresh'][i].mean():+12.5f}{o_m['train'][i].mean():+12.5f}{o_m['fresh'][i].mean():+12.5f}")
for name, (slope, se) in slopes.items():
    print(f"{name:>9}: fitted log-log slope {slope:+.3f} +- {se:.3f}; "
          f"{sum(t.numel() for t in (quad if name == 'quadratic' else net).parameters())} parameters")

fig, ax = plt.subplots(figsize=(7, 4.4))
ns = np.array(n_list, dtype=float)
for (name, r), colour in zip(results.items(), ["C0", "C1"]):
    for s in range(n_seeds):   # one point per seed, shifted sideways a little so that they do not overlap
        ax.scatter(ns * (0.95 + 0.05 * s), r[:, s], color=colour, s=12, alpha=0.5)
    ax.plot(ns, geo[name], "o-", color=colour, label=f"{name}: geometric mean over seeds (slope {slopes[name][0]:+.2f})")
ax.plot(ns, np.exp(np.mean(np.log(geo["quadratic"] * np.sqrt(ns)))) / np.sqrt(ns), "k--", lw=1, label="c / sqrt(n)")
ax.set_xscale("log"); ax.set_yscale("log")
ax.set_xlabel("n (samples of each class)"); ax.set_ylabel("RMSE of the learned logit under m")
ax.set_title("Error of the learned log ratio against the number of samples"); ax.legend(fontsize=8)
plt.tight_layout(); plt.show()

# %% [markdown]
# The quadratic classifier follows the $1/\sqrt n$ line; the MLP, which must discover
# the shape of $f^*$ with about 1200 parameters instead of 6, is worse at every $n$.
# In the table, on its own training samples a classifier usually scores *more* than
# $f^*$ (it maximised (4) on exactly those samples and fits their accidents as well
# as the ratio), and on fresh samples less, as Lemma 1 requires. That generalisation
# gap closes as $n$ grows; at $n = 100$ the MLP memorises its samples and reports a
# badly wrong ratio, which is why the paper regularises its discriminators (dropout).
#
# **Check.** The quadratic's slope lies in $[-0.8, -0.3]$ around $-0.5$ (single fits
# scatter by tens of percent; optimisation error would flatten the curve at large
# $n$). The MLP's error falls from the smallest to the largest $n$ and is above the
# quadratic's at every $n$. No classifier beats $f^*$ on fresh samples (to three
# paired standard errors); at the smallest $n$ the MLP beats it on its training
# samples, and both generalisation gaps shrink from the smallest $n$ to the largest.
# Every seed of the MLP at $n = 10^4$ meets section 2.3's threshold 0.35.

# %%
assert -0.8 < slopes["quadratic"][0] < -0.3
assert geo["MLP"][-1] < geo["MLP"][0] and (geo["MLP"] > geo["quadratic"]).all()
for name, o in objective.items():
    gap = (o["train"] - o["fresh"]).mean(1)
    print(f"{name:>9}: largest (V(f) - V(f*)) / s.e. on fresh samples {(o['fresh'] / o['fresh_se']).max():+.2f}; "
          f"generalisation gap {gap[0]:.4f} at n = {n_list[0]}, {gap[-1]:.5f} at n = {n_list[-1]}")
    assert (o["fresh"] < 3 * o["fresh_se"]).all() and gap[0] > gap[-1]
assert o_m["train"][0].mean() > 0
at_1e4 = results["MLP"][n_list.index(10_000)]
print(f"MLP at n = 10^4, seed by seed: {' '.join(f'{r:.3f}' for r in at_1e4)} (threshold 0.35)")
assert (at_1e4 < 0.35).all()

# %% [markdown]
# ## 2.5 Explore: move $q$ and watch the learned ratio follow the true one
#
# In one dimension the lemma fits in one picture. Keep $p = \mathcal N(0, 1)$ and let
# $q = \mathcal N(\mu, \sigma^2)$, so that $f^*(x) = \log\sigma - \tfrac12 x^2 + \tfrac{(x-\mu)^2}{2\sigma^2}$,
# a parabola (a line when $\sigma = 1$). Each panel trains a classifier on $n$
# samples of each class with the recipes above (the quadratic with 1000 steps: its
# $x^2$ feature is slow to converge in one dimension) and plots its logit over
# $f^*$, with the densities underneath to show where the samples are; the RMSE is
# measured at fresh draws from $(p+q)/2$. The three panels: the quadratic with many
# samples (the curves agree where the samples are), with 30 (they part), and the
# MLP with 100 (it bends to fit its samples, although the true ratio is a line). In
# JupyterLab or Colab the sliders under them redraw a panel for any $\mu$, $\sigma$,
# $n$ and classifier, training a classifier afresh (a second or two).

# %%
import ipywidgets as widgets


def lemma1_panel(ax, mean_q, std_q, n, classifier, seed=0):
    """Train `classifier` on n samples of p = N(0, 1) (label 1) and q = N(mean_q, std_q^2) (label 0),
    plot its logit over the true log p - log q; return the RMSE under the mixture and the legend entries."""
    p1 = Gaussian(torch.zeros(1, dtype=dtype), torch.eye(1, dtype=dtype))
    q1 = Gaussian(torch.tensor([mean_q], dtype=dtype), torch.tensor([[std_q**2]], dtype=dtype))
    g = torch.Generator().manual_seed(seed)
    xp, xq, fresh = p1.sample(n, g), q1.sample(n, g), torch.cat([p1.sample(2000, g), q1.sample(2000, g)])
    torch.manual_seed(seed)
    if classifier == "quadratic":
        disc = QuadraticDiscriminator(1)
        train_discriminator(disc, (xp,), (xq,), batch_size=n, seed=seed, progress=False, **dict(quad_recipe, steps=1000))
    else:
        disc = MLPDiscriminator(1, hidden=32)
        train_discriminator(disc, (xp,), (xq,), seed=seed, progress=False, **mlp_recipe)
    true_ratio = lambda x: p1.log_prob(x) - q1.log_prob(x)
    x = torch.linspace(-5, 5, 401, dtype=dtype)[:, None]
    with torch.no_grad():
        rmse, learned = ratio_rmse(disc(fresh).double(), true_ratio(fresh)), disc(x).double()
    ax.plot(x[:, 0], true_ratio(x), "k", lw=2, label="true $f^* = \\log p - \\log q$")
    ax.plot(x[:, 0], learned, "C3--", lw=2, label="learned logit")
    ax.set_ylim(-8, 8)   # the parabola leaves the frame far from the samples, where nothing is learned
    ax.set_xlabel("x"); ax.set_ylabel("log ratio")
    ax.set_title(f"{classifier}, q = N({mean_q:.1f}, {std_q:.1f}$^2$), n = {n}: RMSE {rmse:.2f}", fontsize=9)
    dens = ax.twinx()   # the densities, on their own (unlabelled) scale in the lower part of the panel
    dens.fill_between(x[:, 0], p1.log_prob(x).exp(), alpha=0.2, color="C0", label="density of p")
    dens.fill_between(x[:, 0], q1.log_prob(x).exp(), alpha=0.2, color="C1", label="density of q")
    dens.set_ylim(0, 2.5); dens.set_yticks([])
    return rmse, [sum(pair, []) for pair in zip(ax.get_legend_handles_labels(), dens.get_legend_handles_labels())]


fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for ax, setting in zip(axes, [(1.5, 0.7, 3000, "quadratic"), (1.5, 0.7, 30, "quadratic"), (2.0, 1.0, 100, "MLP")]):
    rmse, (handles, labels) = lemma1_panel(ax, *setting)
    print(f"mu = {setting[0]}, sigma = {setting[1]}, n = {setting[2]}, {setting[3]:>9}: RMSE {rmse:.3f}")
fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)   # one legend for the three panels
plt.tight_layout(rect=(0, 0.07, 1, 1)); plt.show()


# %%
def lemma1_explorer(mu=1.5, sigma=0.7, n=1000, classifier="quadratic"):
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.legend(*lemma1_panel(ax, mu, sigma, n, classifier)[1], fontsize=8, loc="upper left")
    plt.show()


widgets.interact(
    lemma1_explorer,
    mu=widgets.FloatSlider(value=1.5, min=-3, max=3, step=0.1, continuous_update=False, description="μ of q"),
    sigma=widgets.FloatSlider(value=0.7, min=0.3, max=2.0, step=0.05, continuous_update=False, description="σ of q"),
    n=widgets.IntSlider(value=1000, min=20, max=5000, step=20, continuous_update=False, description="n per class"),
    classifier=widgets.Dropdown(options=["quadratic", "MLP"], value="quadratic", description="classifier"),
);

# %% [markdown]
# ## What this chapter showed
#
# * **A classifier learns a density ratio from samples alone.** The optimal logit of
#   the objective (4) is $\log p - \log q$ (Lemma 1); the optimum is worth
#   $2\,\mathrm{JSD}(p,q) - \log 4$, and a logit off by $\delta$ loses at most
#   $\mathbb E_m[\delta^2]/4$ of it: the loss is quadratic in the error, so a nearly
#   optimal objective need not mean a nearly exact ratio.
# * **The learned ratio is right only where the samples are**; outside the region
#   they cover, nothing in (4) constrains the classifier.
# * **The error falls like $1/\sqrt n$ when the classifier can represent the ratio.**
#   A flexible classifier is worse at every $n$, and with few samples it fits the
#   samples rather than the ratio.
#
# This is what AS-VAE needs. Its bound contains $\log q(x) - \log p_\theta(x)$ and
# $\log p(z) - \log q_\phi(z)$; none of these densities can be evaluated, but all
# can be *sampled* (real data and its codes on one side, the decoder's samples on
# the other), so classifiers can learn both ratios. Chapter 3 builds the two
# classifiers of Corollary 1.1 on pairs $(x, z)$.

# %%
print(f"chapter ran in {time.time() - CHAPTER_START:.0f} s (profile {profile()})")

# %% [markdown]
# ## Exercises
#
# Each exercise cell is self-contained; the cell after it checks your answer
# (`make assignments` writes the student version of this chapter, with the
# solutions removed).
#
# **Exercise 2.1 (Lemma 1 by hand).** Let $p = \mathcal N(1, 1)$ and
# $q = \mathcal N(-1, 2^2)$ on the real line. Write the optimal discriminator of
# Lemma 1, $f^*(x) = \log p(x) - \log q(x)$, as an explicit quadratic
# $c_2 x^2 + c_1 x + c_0$ and return its coefficients. The check estimates the
# objective (4) on 200,000 samples from each side and confirms that moving your
# $f^*$ in any of several directions lowers it.

# %% nbgrader={"grade": false, "grade_id": "ex2_1", "locked": false, "schema_version": 3, "solution": true}
import math


def optimal_logit_coefficients():
    """(c2, c1, c0) with log N(x; 1, 1) - log N(x; -1, 2^2) = c2 x^2 + c1 x + c0."""
    ### BEGIN SOLUTION
    # -(x - 1)^2 / 2 + (x + 1)^2 / 8 + log 2 = -3/8 x^2 + 5/4 x - 3/8 + log 2
    return -3 / 8, 5 / 4, math.log(2) - 3 / 8
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex2_1_check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
import torch

c2, c1, c0 = optimal_logit_coefficients()
optimal_logit = lambda x: c2 * x**2 + c1 * x + c0
g = torch.Generator().manual_seed(0)
xp = 1 + torch.randn(200_000, generator=g, dtype=torch.float64)
xq = -1 + 2 * torch.randn(200_000, generator=g, dtype=torch.float64)
objective = lambda f: (torch.nn.functional.logsigmoid(f(xp)).mean() + torch.nn.functional.logsigmoid(-f(xq)).mean()).item()
best = objective(optimal_logit)
for name, move in (("+0.3", lambda x: 0.3 + 0 * x), ("-0.3", lambda x: -0.3 + 0 * x), ("+0.2x", lambda x: 0.2 * x),
                   ("-0.2x", lambda x: -0.2 * x), ("+0.05x^2", lambda x: 0.05 * x**2), ("-0.05x^2", lambda x: -0.05 * x**2)):
    moved = objective(lambda x, move=move: optimal_logit(x) + move(x))
    print(f"objective at your f*: {best:.5f}; moved by {name}: {moved:.5f}")
    assert moved < best - 1e-3, f"moving f* by {name} should lower the objective (4)"
### BEGIN HIDDEN TESTS
x = torch.linspace(-6, 6, 101, dtype=torch.float64)
truth = torch.distributions.Normal(1.0, 1.0).log_prob(x) - torch.distributions.Normal(-1.0, 2.0).log_prob(x)
assert torch.allclose(optimal_logit(x), truth, atol=1e-10)
### END HIDDEN TESTS
print("Exercise 2.1: correct")

# %% [markdown]
# **Exercise 2.2 (quadruple the samples, or misspecify the classifier: predict,
# then measure).** Take $p = \mathcal N(0, 1)$ and $q = \mathcal N(1, 0.6^2)$. Their
# $f^*$ has an $x^2$ term, so logistic regression on the features $(1, x, x^2)$ is
# well specified, and on $(1, x)$, which can only draw a line, it is not. When the
# sample size goes from $n = 1000$ to $4000$ per class, by what factor does the
# RMSE of each learned logit against $f^*$ under the mixture change (root mean
# square over 100 seeds)? Write your prediction in `PREDICTION` first. Then implement
# `fit_logistic(phi_p, phi_q)`: the weights $w$ that maximise the sample objective
# (4), $\frac1n\sum_i \log\sigma(\phi_{p,i}^\top w) + \frac1n\sum_j \log\sigma(-\phi_{q,j}^\top w)$,
# for feature matrices $\Phi_p$ (label 1) and $\Phi_q$ (label 0) of $n$ rows each. It
# is concave in $w$: Newton's method from $w = 0$ converges in a few dozen steps
# (derive the gradient and the Hessian). The check measures both factors with it.

# %% nbgrader={"grade": false, "grade_id": "ex2_2", "locked": false, "schema_version": 3, "solution": true}
import torch


def fit_logistic(phi_p, phi_q):
    """The maximiser w of mean log sigma(phi_p @ w) + mean log sigma(-phi_q @ w)."""
    ### BEGIN SOLUTION
    phi = torch.cat([phi_p, phi_q])
    y = torch.cat([torch.ones(len(phi_p)), torch.zeros(len(phi_q))]).to(phi.dtype)
    w = torch.zeros(phi.shape[1], dtype=phi.dtype)
    for _ in range(50):   # Newton on the summed log-likelihood: gradient phi^T (y - s), Hessian -phi^T diag(s(1-s)) phi
        s = torch.sigmoid(phi @ w)
        step = torch.linalg.solve((phi * (s * (1 - s))[:, None]).T @ phi, phi.T @ (y - s))
        w = w + step
        if step.abs().max() < 1e-12:
            break
    return w
    ### END SOLUTION


# your prediction before measuring: RMSE(n = 4000) / RMSE(n = 1000) for each classifier
### BEGIN SOLUTION
PREDICTION = {"quadratic": 0.5, "linear": 1.0}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex2_2_check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
import math

import torch

g = torch.Generator().manual_seed(0)
normal = lambda n, mean, std: mean + std * torch.randn(n, generator=g, dtype=torch.float64)
features = {"quadratic": lambda x: torch.stack([torch.ones_like(x), x, x**2], 1),
            "linear": lambda x: torch.stack([torch.ones_like(x), x], 1)}
# your fit is the maximiser: the gradient of (4) there, by autograd, vanishes
x_p, x_q = normal(500, 0, 1), normal(500, 1, 0.6)
phi_p, phi_q = features["quadratic"](x_p), features["quadratic"](x_q)
w = fit_logistic(phi_p, phi_q).clone().requires_grad_(True)
(torch.nn.functional.logsigmoid(phi_p @ w).mean() + torch.nn.functional.logsigmoid(-phi_q @ w).mean()).backward()
print(f"largest |gradient of (4)| at your w: {w.grad.abs().max().item():.1e}")
assert w.grad.abs().max() < 1e-8, "fit_logistic does not return the maximiser of (4)"
f_star = lambda x: -0.5 * x**2 + 0.5 * ((x - 1) / 0.6) ** 2 + math.log(0.6)
x_eval = torch.cat([normal(20_000, 0, 1), normal(20_000, 1, 0.6)])   # fresh draws from the mixture
measured = {}
for name, phi in features.items():
    rmse = {}
    for n in (1000, 4000):   # root mean square over 100 seeds of the RMSE of each fit
        fits = [fit_logistic(phi(normal(n, 0, 1)), phi(normal(n, 1, 0.6))) for _ in range(100)]
        rmse[n] = math.sqrt(sum(((phi(x_eval) @ w - f_star(x_eval)) ** 2).mean().item() for w in fits) / 100)
    measured[name] = rmse[4000] / rmse[1000]
    print(f"{name:>9}: RMSE {rmse[1000]:.3f} at n = 1000, {rmse[4000]:.3f} at n = 4000; "
          f"factor predicted {PREDICTION[name]:.2f}, measured {measured[name]:.2f}")
assert set(PREDICTION) == {"quadratic", "linear"}
assert 0.35 < measured["quadratic"] < 0.7, "the well-specified classifier should follow 1/sqrt(n)"
assert 0.9 < measured["linear"] < 1.1, "the misspecified classifier should be stuck at its approximation error"
print("Exercise 2.2: done")
