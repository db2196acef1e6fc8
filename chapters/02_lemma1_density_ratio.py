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
# # Chapter 2. Lemma 1: a classifier's logit is a log density ratio
#
# AS-VAE needs two quantities nobody can write down: $\log q(x) - \log p_\theta(x)$,
# where $q(x)$ is the data distribution, known only through samples, and
# $\log p(z) - \log q_\phi(z)$, where the aggregated posterior $q_\phi(z)$ is an
# intractable average over the data. The paper gets both from one fact, its
# Lemma 1 (the analogue of Proposition 1 of Goodfellow et al.'s GAN paper):
# **train a classifier to tell samples of $p$ from samples of $q$, and its logit
# becomes $\log p - \log q$.**
#
# This chapter proves the lemma, then watches it happen in two dimensions, where
# the true log ratio is known and can be drawn, and measures how the learned
# ratio's error shrinks as the classifier gets more samples. The code is in
# `asvae_lib/density_ratio.py`; the chapter shows the parts it introduces.
#
# | section | what it shows |
# |---|---|
# | 1 | the statement, the proof, and the pointwise fact it rests on, checked on a grid |
# | 2 | a classifier trained on samples of two 2-D Gaussians learns their log ratio |
# | 3 | the error of the learned ratio against the number of samples: $1/\sqrt{n}$ |
# | 4 | why this is what AS-VAE needs |

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
import copy
import inspect
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from asvae_lib.density_ratio import (
    MLPDiscriminator,
    QuadraticDiscriminator,
    logistic_objective,
    ratio_rmse,
    train_discriminator,
)
from asvae_lib.gaussians import Gaussian
from asvae_lib.profile import pick, profile

# The networks here are tiny: one thread is faster than several (and far faster
# when another process shares the CPU, where threads spin waiting for each other).
torch.set_num_threads(1)
CHAPTER_START = time.time()
print("profile:", profile())

# %% [markdown]
# ## 1. The lemma and its proof
#
# Let $p(u)$ and $q(u)$ be two densities on the same space (in the paper, $u=(x,y)$
# is a pair and $p$, $q$ are joint densities; nothing below uses the pair
# structure). For a function $f$, with $\sigma(t) = 1/(1+e^{-t})$, the paper's
# objective (4) is
#
# $$
# V(f) \;=\; \mathbb{E}_{u\sim p}\big[\log \sigma(f(u))\big] \;+\; \mathbb{E}_{u\sim q}\big[\log\big(1-\sigma(f(u))\big)\big]. \tag{4}
# $$
#
# It is the log-likelihood of a logistic classifier with logit $f$ that labels
# samples of $p$ as 1 and samples of $q$ as 0, with equal numbers of each.
#
# **Lemma 1.** The maximiser of (4) over all functions $f$ is
# $f^*(u) = \log p(u) - \log q(u)$.
#
# **Proof.** Write the expectations as one integral,
#
# $$
# V(f) = \int \Big[\, p(u)\,\log \sigma(f(u)) + q(u)\,\log\big(1-\sigma(f(u))\big) \Big]\, du .
# $$
#
# The integrand at $u$ depends on $f$ only through the single number $s = \sigma(f(u))\in(0,1)$,
# so $V$ is maximised by maximising the integrand separately at every $u$. With
# $a = p(u) > 0$ and $b = q(u) > 0$ the integrand is
#
# $$
# \varphi(s) = a\log s + b\log(1-s), \qquad
# \varphi'(s) = \frac{a}{s} - \frac{b}{1-s}, \qquad
# \varphi''(s) = -\frac{a}{s^2} - \frac{b}{(1-s)^2} < 0 .
# $$
#
# $\varphi$ is strictly concave and $\varphi'(s)=0$ at exactly one point,
# $s^* = a/(a+b)$: the unique maximum, with value $a\log\frac{a}{a+b} + b\log\frac{b}{a+b}$.
# So the optimal classifier outputs $\sigma(f^*(u)) = \dfrac{p(u)}{p(u)+q(u)}$,
# the posterior probability of class $p$ under equal priors. The sigmoid's inverse
# is the logit, $\sigma^{-1}(s) = \log\frac{s}{1-s}$, hence
#
# $$
# f^*(u) = \log\frac{p(u)/(p(u)+q(u))}{q(u)/(p(u)+q(u))} = \log p(u) - \log q(u). \qquad\blacksquare
# $$
#
# Where exactly one of the densities vanishes the supremum is not attained
# ($f\to\pm\infty$): the ratio is infinite there. The Gaussians below have full
# support, so the ratio is finite everywhere.
#
# **Two facts that come with the proof** (both are checked below).
#
# *The value at the optimum.* With the mixture $m = \tfrac12(p+q)$,
# $V(f^*) = \mathbb{E}_p\log\frac{p}{2m} + \mathbb{E}_q\log\frac{q}{2m}
# = \mathrm{KL}(p\,\|\,m) + \mathrm{KL}(q\,\|\,m) - 2\log 2$, that is
#
# $$
# V(f^*) = 2\,\mathrm{JSD}(p,q) - \log 4 \;\in\; [-\log 4,\; 0],
# $$
#
# since the Jensen-Shannon divergence lies in $[0, \log 2]$: $-\log 4$ when $p=q$
# (the classifier can do no better than a coin), $0$ when they do not overlap.
#
# *How much a wrong $f$ loses.* Putting $s^*=\sigma(f^*(u))$ and $s=\sigma(f(u))$ in the
# integrand and subtracting,
#
# $$
# V(f^*) - V(f) = \int \big(p+q\big)\Big[s^*\log\tfrac{s^*}{s} + (1-s^*)\log\tfrac{1-s^*}{1-s}\Big]\,du
# = 2\,\mathbb{E}_{m}\Big[\mathrm{KL}\big(\mathrm{Bern}(\sigma(f^*))\,\big\|\,\mathrm{Bern}(\sigma(f))\big)\Big].
# $$
#
# In logit coordinates that Bernoulli KL is the Bregman divergence of
# $A(t) = \log(1+e^t)$, $\mathrm{KL} = A(f) - A(f^*) - \sigma(f^*)(f-f^*)$, and $A'' = \sigma(1-\sigma)\le \tfrac14$, so
# $\mathrm{KL} \le (f-f^*)^2/8$ and
#
# $$
# 0 \;\le\; V(f^*) - V(f) \;\le\; \tfrac14\,\mathbb{E}_{m}\big[(f-f^*)^2\big].
# $$
#
# The error that matters for the objective is the squared error **under the
# mixture** $m$, where the classifier has data. That is where this chapter
# measures the error of a learned logit (`ratio_rmse` on fresh draws from $m$).
#
# The objective (4) in the library, computed with $\log(1-\sigma(t)) = \log\sigma(-t)$
# for numerical stability:

# %%
print(inspect.getsource(logistic_objective))

# %% [markdown]
# ### Check: the pointwise maximum
#
# For a few pairs $(a, b)$, including very unequal ones, maximise
# $\varphi(s) = a\log s + b\log(1-s)$ by brute force on a grid of $10^6$ values of
# $s$, and compare the grid's argmax with $a/(a+b)$, its maximum with the closed
# form, and the logit of the argmax with $\log a - \log b$. The tolerance is the
# grid: the argmax can be off by one spacing $h$, which moves the logit by at most
# about $h/(s^*(1-s^*))$.

# %%
s_grid = torch.linspace(1e-7, 1 - 1e-7, 1_000_001, dtype=torch.float64)
h = (s_grid[1] - s_grid[0]).item()
print(f"{'a':>7} {'b':>7} | {'argmax s':>10} {'a/(a+b)':>10} | {'max phi':>11} {'closed form':>11} | "
      f"{'logit(argmax)':>13} {'log a - log b':>13}")
for a, b in [(1.0, 1.0), (0.3, 2.0), (5.0, 0.2), (0.01, 1.0), (2.0, 1e-3)]:
    phi = a * torch.log(s_grid) + b * torch.log1p(-s_grid)
    i = int(torch.argmax(phi))
    s_hat, s_star = s_grid[i].item(), a / (a + b)
    phi_star = a * math.log(a / (a + b)) + b * math.log(b / (a + b))
    logit_hat = math.log(s_hat / (1 - s_hat))
    print(f"{a:7.3g} {b:7.3g} | {s_hat:10.6f} {s_star:10.6f} | {phi[i].item():11.6f} {phi_star:11.6f} | "
          f"{logit_hat:13.5f} {math.log(a) - math.log(b):13.5f}")
    assert abs(s_hat - s_star) <= h
    assert phi[i].item() <= phi_star + 1e-12 and phi_star - phi[i].item() < 1e-6
    assert abs(logit_hat - math.log(a / b)) <= 2 * h / (s_star * (1 - s_star))
print("grid argmax = a/(a+b) and logit(argmax) = log a - log b, to the grid spacing h =", f"{h:.1e}")

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.6))
s_plot = torch.linspace(0.002, 0.998, 999, dtype=torch.float64)
for (a, b), colour in zip([(1.0, 1.0), (0.3, 2.0), (5.0, 0.2)], ["C0", "C1", "C2"]):
    phi = a * torch.log(s_plot) + b * torch.log1p(-s_plot)
    ax.plot(s_plot, phi / (a + b), color=colour, label=f"a={a:g}, b={b:g}")
    ax.axvline(a / (a + b), color=colour, ls="--", lw=1)
ax.set_ylim(-3, 0)
ax.set_xlabel("s = sigma(f(u))")
ax.set_ylabel("(a log s + b log(1-s)) / (a+b)")
ax.set_title("The integrand of (4) at one point u peaks at s = a/(a+b) (dashed)")
ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 2. Learning the log ratio of two Gaussians from samples
#
# Take two overlapping but clearly different Gaussians in $\mathbb{R}^2$,
#
# $$
# p = \mathcal N\!\left(\begin{pmatrix}0\\0\end{pmatrix}, I\right), \qquad
# q = \mathcal N\!\left(\mu, \Sigma\right),\quad
# \mu = \begin{pmatrix}1\\0.5\end{pmatrix},\;
# \Sigma = \begin{pmatrix}0.5 & 0.2\\0.2 & 1.5\end{pmatrix}.
# $$
#
# Their log ratio is a quadratic (the $2\pi$ terms cancel):
#
# $$
# f^*(u) = \log p(u) - \log q(u) = \tfrac12\,u^\top(\Sigma^{-1}-I)\,u \;-\; \mu^\top\Sigma^{-1}u
# \;+\; \tfrac12\,\mu^\top\Sigma^{-1}\mu + \tfrac12\log|\Sigma| .
# $$
#
# The classifier is never told this. It gets $n$ samples of each and maximises
# (4) with the sample means in place of the expectations. Two classifiers:
#
# * `QuadraticDiscriminator`: logistic regression on the features
#   $(u_1, u_2, u_1^2, u_1u_2, u_2^2)$ plus a bias. It can represent $f^*$ exactly
#   (checked next), so it is *well specified*: its only error is estimation error
#   from finitely many samples.
# * `MLPDiscriminator`: a small network (two hidden layers of 32 SiLU units) that
#   knows nothing about quadratics, as in the paper, where the discriminators are
#   neural networks.

# %%
dtype = torch.float64
p = Gaussian(torch.zeros(2, dtype=dtype), torch.eye(2, dtype=dtype))
q = Gaussian(torch.tensor([1.0, 0.5], dtype=dtype), torch.tensor([[0.5, 0.2], [0.2, 1.5]], dtype=dtype))


# Evaluation and Monte Carlo points: fresh draws, never used for training.
# n_eval from p and n_eval from q; concatenated, they are 2 n_eval draws from m = (p+q)/2.
n_eval = pick(quick=50_000, full=500_000)
g_eval = torch.Generator().manual_seed(2017)
u_p, u_q = p.sample(n_eval, g_eval), q.sample(n_eval, g_eval)
u_m = torch.cat([u_p, u_q])
f_p, f_q = p.log_prob(u_p) - q.log_prob(u_p), p.log_prob(u_q) - q.log_prob(u_q)  # f* = log p - log q
f_m = torch.cat([f_p, f_q])
print(f"{2 * n_eval} evaluation points from m; spread of f* there: std {f_m.std():.3f}, "
      f"range [{f_m.min():.1f}, {f_m.max():.1f}]")

# %% [markdown]
# ### Check: the quadratic classifier can represent $f^*$ exactly
#
# Put the closed-form coefficients into a `QuadraticDiscriminator` by hand (the
# feature $u_1u_2$ gets the off-diagonal entry twice, since $u^\top M u$ counts it twice)
# and compare with $\log p - \log q$ at the evaluation points: the difference should be
# float64 rounding.

# %%
S_inv = torch.linalg.inv(q.cov)
M = 0.5 * (S_inv - torch.eye(2, dtype=dtype))
w_lin = -(q.mean @ S_inv)
w_quad = torch.stack([M[0, 0], 2 * M[0, 1], M[1, 1]])  # features u1^2, u1 u2, u2^2 (triu order)
bias = 0.5 * q.mean @ S_inv @ q.mean + 0.5 * torch.logdet(q.cov)
exact_quad = QuadraticDiscriminator(2)
print("feature pairs (i, j):", list(zip(exact_quad.rows.tolist(), exact_quad.cols.tolist())))
with torch.no_grad():
    exact_quad.linear.weight.copy_(torch.cat([w_lin, w_quad])[None])
    exact_quad.linear.bias.copy_(bias[None])
    err = ratio_rmse(exact_quad(u_m), f_m)
print(f"f*(u) = {w_quad[0]:.3f} u1^2 + {w_quad[1]:.3f} u1 u2 + {w_quad[2]:.3f} u2^2 "
      f"+ {w_lin[0]:.3f} u1 + {w_lin[1]:.3f} u2 + {bias:.3f}")
print(f"RMSE between the hand-set quadratic and log p - log q: {err:.2e}")
assert err < 1e-10

# %% [markdown]
# ### The value of (4) at the optimum
#
# $V(f^*) = 2\,\mathrm{JSD}(p,q) - \log 4$ has no closed form for two Gaussians, so
# it is estimated by Monte Carlo on the fresh samples, with its standard error
# $\sqrt{\mathrm{Var}_p/n + \mathrm{Var}_q/n}$. It must lie in $[-\log 4, 0]$. The step
# from $V(f^*)$ to the JSD rests on $\log\sigma(f^*) = \log\frac{p}{p+q} = \log\frac{p}{m} - \log 2$
# (and the same for $q$ with $\log\sigma(-f^*)$), an identity at every point, checked
# at the evaluation points against $\log m$ computed directly from the two densities.

# %%
lp_star, lq_star = F.logsigmoid(f_p), F.logsigmoid(-f_q)  # per-point terms of (4) at f*
V_star = (lp_star.mean() + lq_star.mean()).item()
V_star_se = math.sqrt(lp_star.var().item() / n_eval + lq_star.var().item() / n_eval)
print(f"V(f*) = {V_star:.4f} +- {V_star_se:.4f}   (-log 4 = {-math.log(4):.4f})")
print(f"JSD(p, q) = (V(f*) + log 4) / 2 = {(V_star + math.log(4)) / 2:.4f} nats  (max log 2 = {math.log(2):.4f})")
assert -math.log(4) < V_star - 3 * V_star_se and V_star + 3 * V_star_se < 0
log_m_p = torch.logaddexp(p.log_prob(u_p), q.log_prob(u_p)) - math.log(2)  # log m at the p-draws
log_m_q = torch.logaddexp(p.log_prob(u_q), q.log_prob(u_q)) - math.log(2)
ident = max((lp_star - (p.log_prob(u_p) - log_m_p - math.log(2))).abs().max().item(),
            (lq_star - (q.log_prob(u_q) - log_m_q - math.log(2))).abs().max().item())
print(f"largest |log sigma(+-f*) - (log p/m or log q/m - log 2)| over the evaluation points: {ident:.1e}")
assert ident < 1e-10

# %% [markdown]
# ### Training
#
# `train_discriminator` is plain stochastic gradient ascent (Adam) on (4) over
# minibatches drawn from the fixed training samples:

# %%
print(inspect.getsource(train_discriminator))

# %% [markdown]
# With a constant step size, Adam's last iterates keep jumping around the optimum
# by an amount set by the minibatch noise; `anneal=True` decays the step size to
# zero on a cosine, so the final classifier sits still. The run below takes 400
# steps of 1024 samples of each class (about 40 passes over the data). What is left
# after annealing is mostly the network's estimation error from finitely many
# samples, which more passes over the same data cannot remove (the full profile
# takes ten times the data and the steps).

# %%
n_train = pick(quick=10_000, full=100_000)
mlp_recipe = dict(batch_size=1024, steps=pick(quick=400, full=4000), lr=2e-2, anneal=True)
g_train = torch.Generator().manual_seed(0)
x_pos, x_neg = p.sample(n_train, g_train), q.sample(n_train, g_train)  # labels: p -> 1, q -> 0

torch.manual_seed(0)
mlp = MLPDiscriminator(2, hidden=32)
t0 = time.time()
history = train_discriminator(mlp, (x_pos,), (x_neg,), seed=0, **mlp_recipe)
print(f"trained on {n_train} + {n_train} samples, {len(history)} steps, {time.time() - t0:.1f} s")

with torch.no_grad():
    f_hat_p, f_hat_q, f_hat_m = mlp(u_p).double(), mlp(u_q).double(), mlp(u_m).double()
rmse_mlp = ratio_rmse(f_hat_m, f_m)
print(f"RMSE of the learned logit against log p - log q on fresh mixture draws: {rmse_mlp:.4f}")
print(f"for scale: RMSE of the best constant (std of f*) {f_m.std():.3f};  "
      f"R^2 = {1 - rmse_mlp**2 / f_m.var().item():.4f}")

# %%
fig, ax = plt.subplots(figsize=(7, 3.2))
window = 20
smooth = np.convolve(history, np.ones(window) / window, mode="valid")
ax.plot(history, color="0.8", lw=0.5, label="objective (4) on each minibatch")
ax.plot(np.arange(window - 1, len(history)), smooth, color="C0", label=f"running mean ({window} steps)")
ax.axhline(V_star, color="k", ls="--", label="V(f*) = 2 JSD - log 4 (Monte Carlo)")
ax.axhline(-math.log(4), color="C3", ls=":", label="-log 4 (a coin flip)")
ax.set_ylim(-math.log(4) - 0.05, V_star + 0.1)
ax.set_xlabel("step (learning rate annealed to zero)")
ax.set_ylabel("objective (4)")
ax.set_title("Training the MLP classifier climbs to the optimum V(f*)")
ax.legend(fontsize=8, loc="lower right")
plt.tight_layout()
plt.show()

# %% [markdown]
# The learned logit next to the true log ratio, on a grid. The black lines are
# contours of the **true** $f^*$, drawn on both panels; the dashed grey line
# encloses the region where the mixture $m$ has most of its mass
# (density above 1% of its peak), i.e. where the classifier saw data.
# Right: learned against true at 3000 of the fresh evaluation points.

# %%
lo, hi, res = -3.5, 4.5, 161
axis = torch.linspace(lo, hi, res, dtype=dtype)
G1, G2 = torch.meshgrid(axis, axis, indexing="xy")
grid = torch.stack([G1.reshape(-1), G2.reshape(-1)], -1)
with torch.no_grad():
    learned_grid = mlp(grid).double().reshape(res, res)
true_grid = (p.log_prob(grid) - q.log_prob(grid)).reshape(res, res)
m_grid = (0.5 * (p.log_prob(grid).exp() + q.log_prob(grid).exp())).reshape(res, res)
vlim, levels = 6.0, [-4, -2, 0, 2, 4]

fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
for ax, field, title in [(axes[0], learned_grid, "learned logit f(u) (MLP)"),
                         (axes[1], true_grid, "true log p(u) - log q(u)")]:
    im = ax.imshow(field.numpy(), origin="lower", extent=[lo, hi, lo, hi], cmap="RdBu_r",
                   vmin=-vlim, vmax=vlim)
    cs = ax.contour(G1, G2, true_grid, levels=levels, colors="k", linewidths=0.8, linestyles="solid")
    ax.clabel(cs, fontsize=7)
    ax.contour(G1, G2, m_grid, levels=[0.01 * m_grid.max().item()], colors="0.4", linestyles="--")
    ax.set_title(title)
    ax.set_xlabel("u1")
    ax.set_ylabel("u2")
fig.colorbar(im, ax=axes[:2], shrink=0.85, label=f"log ratio (colours clipped at +-{vlim:g})")
idx = torch.randperm(2 * n_eval, generator=torch.Generator().manual_seed(1))[:3000]
from_p = idx < n_eval
axes[2].scatter(f_m[idx][from_p], f_hat_m[idx][from_p], s=3, alpha=0.4, label="points drawn from p")
axes[2].scatter(f_m[idx][~from_p], f_hat_m[idx][~from_p], s=3, alpha=0.4, label="points drawn from q")
span = [f_m[idx].min().item(), f_m[idx].max().item()]
axes[2].plot(span, span, "k--", lw=1, label="identity")
axes[2].set_xlabel("true log p - log q")
axes[2].set_ylabel("learned logit")
axes[2].set_title(f"at fresh draws from m: RMSE {rmse_mlp:.3f}")
axes[2].legend(markerscale=4, fontsize=8)
plt.show()

# %% [markdown]
# Where the data are (inside the dashed line) the two heatmaps agree and the
# contours of $f^*$ run along the learned colour bands; far outside it the network
# extrapolates with whatever shape it happened to learn, because (4) says nothing
# about places where neither $p$ nor $q$ puts mass. That is why the error is
# measured under $m$.
#
# ### Check: the learned logit is close to $\log p - \log q$, and (4) is close to its maximum
#
# *Error threshold.* The largest error that is still a success is set from
# measurements. On the 8 seeds above (seed 0 is the run shown), with this recipe
# and $n = 10^4$ samples of each class, the MLP's RMSE under $m$ ranged from 0.13 to
# 0.25 (geometric mean 0.20), and the well-specified quadratic reaches about 0.05
# at the same $n$ (section 3). A threshold of 0.35 (1.4 times the worst seed; 17% of
# the spread of $f^*$, i.e. $R^2 > 0.97$) leaves a margin over that
# seed-to-seed scatter, while an untrained or badly trained classifier (error of
# the order of the spread of $f^*$, 2.0) fails it.
#
# *Objective.* On the fresh samples, compare (4) at the learned $f$ with (4) at $f^*$.
# Both are evaluated at the same points, so the difference (the loss from using the
# learned $f$) has a small paired standard error. Three claims from section 1:
# the loss is non-negative (nothing beats $f^*$ on fresh data); it is at most
# $\tfrac14\mathbb{E}_m[(f-f^*)^2] = \mathrm{RMSE}^2/4$ (both checked to three
# standard errors); and it equals
# $2\,\mathbb{E}_m[\mathrm{KL}(\mathrm{Bern}(\sigma(f^*))\|\mathrm{Bern}(\sigma(f)))]$.
# The last one holds point by point before any averaging: with
# $d_p = \log\sigma(f^*) - \log\sigma(f)$ and $d_q = \log\sigma(-f^*) - \log\sigma(-f)$ the
# per-point losses on the two classes, $p\,d_p + q\,d_q = (p+q)\,\mathrm{KL}$, i.e.
# $\sigma(f^*)\,d_p + (1-\sigma(f^*))\,d_q = \mathrm{KL}$ at every $u$, which is checked to
# rounding at all the evaluation points (the two Monte Carlo averages are printed
# side by side as well). Finally, the second-order (curvature-weighted) version of
# the bound, $\mathbb{E}_m[\sigma(f^*)(1-\sigma(f^*))(f-f^*)^2]$, should match the loss
# to within 25% when $f$ is this close to $f^*$.

# %%
rmse_threshold = 0.35
lp_hat, lq_hat = F.logsigmoid(f_hat_p), F.logsigmoid(-f_hat_q)
V_hat = (lp_hat.mean() + lq_hat.mean()).item()
d_p, d_q = lp_star - lp_hat, lq_star - lq_hat  # per-point loss of the learned f
gap = (d_p.mean() + d_q.mean()).item()
gap_se = math.sqrt(d_p.var().item() / n_eval + d_q.var().item() / n_eval)
# Bernoulli KL between the optimal and the learned classifier, per point, in logit form:
# A(f) - A(f*) - sigma(f*) (f - f*) with A(t) = log(1 + e^t) = -logsigmoid(-t), computed exactly
# (F.softplus switches to the linear approximation above t = 20, an error of up to 2e-9)
kl_p = F.logsigmoid(-f_p) - F.logsigmoid(-f_hat_p) - torch.sigmoid(f_p) * (f_hat_p - f_p)
kl_q = F.logsigmoid(-f_q) - F.logsigmoid(-f_hat_q) - torch.sigmoid(f_q) * (f_hat_q - f_q)
gap_kl = (kl_p.mean() + kl_q.mean()).item()  # = 2 E_m[KL], the mixture being half p, half q
s_m = torch.sigmoid(f_m)
gap_2nd = (s_m * (1 - s_m) * (f_hat_m - f_m) ** 2).mean().item()  # 2nd order: 2 E_m[sigma'(f*) (f - f*)^2 / 2]
diff_se = math.sqrt((d_p - kl_p).var().item() / n_eval + (d_q - kl_q).var().item() / n_eval)
# the pointwise identity s* d_p + (1 - s*) d_q = KL, at every evaluation point
d_p_m = F.logsigmoid(f_m) - F.logsigmoid(f_hat_m)
d_q_m = F.logsigmoid(-f_m) - F.logsigmoid(-f_hat_m)
kl_m = F.logsigmoid(-f_m) - F.logsigmoid(-f_hat_m) - s_m * (f_hat_m - f_m)
pointwise = (s_m * d_p_m + (1 - s_m) * d_q_m - kl_m).abs().max().item()

print(f"RMSE under m                      {rmse_mlp:.4f}   (threshold {rmse_threshold})")
print(f"V(learned f) on fresh samples     {V_hat:.5f}")
print(f"V(f*)        on the same samples  {V_star:.5f} +- {V_star_se:.5f}")
print(f"loss V(f*) - V(f)                 {gap:.5f} +- {gap_se:.5f}")
print(f"2 E_m KL(Bern(s*) || Bern(s))     {gap_kl:.5f}  (difference {gap - gap_kl:+.1e} +- {diff_se:.1e})")
print(f"bound RMSE^2 / 4                  {rmse_mlp**2 / 4:.5f}")
print(f"second order E_m[s*(1-s*)(f-f*)^2] {gap_2nd:.5f}")
print(f"pointwise |s* d_p + (1-s*) d_q - KL|, largest over {2 * n_eval} points: {pointwise:.1e}")
assert rmse_mlp < rmse_threshold
assert gap > -3 * gap_se
assert gap < rmse_mlp**2 / 4 + 3 * gap_se
assert pointwise < 1e-10
assert abs(gap_2nd / gap_kl - 1) < 0.25

# %% [markdown]
# The learned classifier loses only about two thousandths of a nat of (4) to $f^*$,
# although its logit is off by about 0.2 (RMSE): the objective is flat near its
# maximum (the loss is quadratic in the error of $f$), which is good news for
# training and bad news for anyone who wants to read the ratio off a classifier
# because it is "nearly optimal" in the objective. The bound $\mathrm{RMSE}^2/4$ is
# several times too pessimistic here: the largest errors sit where $|f^*|$ is large
# (the right end of the scatter), and there the curvature $\sigma(f^*)(1-\sigma(f^*))$
# is far below its maximum $\tfrac14$.
#
# ## 3. How the error shrinks with the number of samples
#
# Train both classifiers on $n$ samples of each class, for a range of $n$ and a few
# seeds (each seed draws new training data and a new initialisation), and measure
# the RMSE under $m$ on the same fresh evaluation points.
#
# For the quadratic classifier the maximiser of the sample objective is the
# maximum-likelihood estimate of six logistic-regression coefficients $\theta$. The
# model is well specified, so $\hat\theta - \theta^* = O_p(n^{-1/2})$ (asymptotic normality of
# the MLE), and the RMSE, the square root of a quadratic form in $\hat\theta - \theta^*$,
# falls like $1/\sqrt n$: a slope of $-\tfrac12$ on log-log axes. The MLP has no
# such guarantee; with few samples and no regularisation it can do much worse.
#
# Training: the quadratic classifier uses full-size batches (a bootstrap
# resample of the $n$ points at every step), 300 steps from lr 0.1 annealed to
# zero, which brings it close to the exact maximiser of the sample objective
# (checked after the loop; the full profile, which goes to $n = 10^5$ where the
# estimation error is smaller, takes 1000 steps). The MLP uses the recipe of
# section 2 (with $n < 1024$ a batch is a resample of the whole sample), with 400
# steps, or about 40 passes over the data where that is more (the full profile's
# $n \ge 3\cdot 10^4$).

# %%
n_list = pick(quick=[100, 300, 1000, 3000, 10_000], full=[100, 300, 1000, 3000, 10_000, 30_000, 100_000])
n_seeds = pick(quick=3, full=10)
quad_recipe = dict(steps=pick(quick=300, full=1000), lr=0.1, anneal=True)  # batch: all n (resampled)
last = {}  # the largest n's data and quadratic fits, for the check below

results = {"quadratic": np.zeros((len(n_list), n_seeds)), "MLP": np.zeros((len(n_list), n_seeds))}
objective = {k: {"train": np.zeros((len(n_list), n_seeds)), "test": np.zeros((len(n_list), n_seeds)),
                 "test_se": np.zeros((len(n_list), n_seeds))} for k in results}
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
        if n == n_list[-1]:
            last[seed] = (pos, neg, quad)
        for name, disc in [("quadratic", quad), ("MLP", net)]:
            with torch.no_grad():
                fp_, fq_ = disc(u_p).double(), disc(u_q).double()
                results[name][i, seed] = ratio_rmse(torch.cat([fp_, fq_]), f_m)
                # (4) on the training sample, minus (4) of f* on the same sample
                f_star_pos, f_star_neg = p.log_prob(pos[0]) - q.log_prob(pos[0]), p.log_prob(neg[0]) - q.log_prob(neg[0])
                objective[name]["train"][i, seed] = (logistic_objective(disc(*pos), disc(*neg))
                                                     - logistic_objective(f_star_pos, f_star_neg)).item()
                d_p, d_q = lp_star - F.logsigmoid(fp_), lq_star - F.logsigmoid(-fq_)
                objective[name]["test"][i, seed] = -(d_p.mean() + d_q.mean()).item()  # V(f) - V(f*), fresh
                objective[name]["test_se"][i, seed] = math.sqrt(d_p.var().item() / n_eval + d_q.var().item() / n_eval)
    print(f"n = {n:>6}:  quadratic RMSE " + " ".join(f"{r:.3f}" for r in results["quadratic"][i])
          + "  |  MLP RMSE " + " ".join(f"{r:.3f}" for r in results["MLP"][i]))
print(f"{len(n_list) * n_seeds * 2} classifiers trained in {time.time() - t0:.1f} s")

# %% [markdown]
# ### Check: the quadratic fits are (nearly) the exact maximisers
#
# At the largest $n$, polish each trained quadratic classifier with L-BFGS on the
# full sample objective (4) until it stops moving: that is the exact
# maximum-likelihood fit. The distance between the trained and the polished logits
# (optimisation error) should be well below the polished fit's distance to $f^*$
# (estimation error), so that the errors plotted below are estimation error. We ask
# for less than half; since the two add roughly in quadrature, half would inflate the
# measured RMSE by at most about 12%.

# %%
opt_err, est_err = [], []
for seed, (pos, neg, quad) in last.items():
    exact = copy.deepcopy(quad)
    lbfgs = torch.optim.LBFGS(exact.parameters(), lr=1, max_iter=500, tolerance_grad=1e-10,
                              tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():  # L-BFGS re-evaluates the (negated) objective (4) through this callback
        lbfgs.zero_grad()
        loss = -logistic_objective(exact(*pos), exact(*neg))
        loss.backward()
        return loss

    lbfgs.step(closure)
    with torch.no_grad():
        opt_err.append(ratio_rmse(quad(u_m), exact(u_m)))
        est_err.append(ratio_rmse(exact(u_m), f_m))
opt_rms, est_rms = math.sqrt(np.mean(np.square(opt_err))), math.sqrt(np.mean(np.square(est_err)))
print(f"n = {n_list[-1]}: trained vs exact fit (optimisation error) per seed " + " ".join(f"{e:.4f}" for e in opt_err))
print(f"           exact fit vs f* (estimation error) per seed      " + " ".join(f"{e:.4f}" for e in est_err))
print(f"root mean square: optimisation {opt_rms:.4f}, estimation {est_rms:.4f}")
assert opt_rms < 0.5 * est_rms

# %%
log_n = np.log(np.repeat(np.array(n_list, dtype=float), n_seeds))
slopes = {}
for name, r in results.items():
    y = np.log(r.reshape(-1))
    slope, intercept = np.polyfit(log_n, y, 1)
    resid = y - (slope * log_n + intercept)
    se = math.sqrt(resid.var(ddof=2) / ((log_n - log_n.mean()) ** 2).sum())
    slopes[name] = (slope, se)
geo = {k: np.exp(np.log(v).mean(1)) for k, v in results.items()}  # geometric mean over seeds

print(f"{'n':>7} | {'quadratic':>9} {'x sqrt(n)':>9} | {'MLP':>9}   (geometric means over {n_seeds} seeds)")
for n, rq, rm in zip(n_list, geo["quadratic"], geo["MLP"]):
    print(f"{n:>7} | {rq:9.4f} {rq * math.sqrt(n):9.2f} | {rm:9.4f}")
for name, (slope, se) in slopes.items():
    print(f"{name:>9}: fitted log-log slope {slope:+.3f} +- {se:.3f}")
print(f"quadratic: error ratio smallest/largest n = {geo['quadratic'][0] / geo['quadratic'][-1]:.1f}, "
      f"sqrt(n_max/n_min) = {math.sqrt(n_list[-1] / n_list[0]):.1f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
ns = np.array(n_list, dtype=float)
for (name, r), colour in zip(results.items(), ["C0", "C1"]):
    for s in range(n_seeds):
        axes[0].scatter(ns * (0.95 + 0.05 * s), r[:, s], color=colour, s=12, alpha=0.5)
    axes[0].plot(ns, geo[name], "o-", color=colour,
                 label=f"{name} (slope {slopes[name][0]:+.2f})")
c = np.exp(np.mean(np.log(geo["quadratic"]) + 0.5 * np.log(ns)))
axes[0].plot(ns, c / np.sqrt(ns), "k--", lw=1, label="c / sqrt(n)")
axes[0].set_xscale("log")
axes[0].set_yscale("log")
axes[0].set_xlabel("n (samples of each class)")
axes[0].set_ylabel("RMSE of learned logit vs log p - log q, under m")
axes[0].set_title("Error of the learned log ratio")
axes[0].legend()

for (name, o), colour in zip(objective.items(), ["C0", "C1"]):
    axes[1].plot(ns, o["train"].mean(1), "^-", color=colour, label=f"{name}: on its training samples")
    axes[1].plot(ns, o["test"].mean(1), "v--", color=colour, label=f"{name}: on fresh samples")
axes[1].axhline(0, color="k", lw=1, label="f* itself")
axes[1].set_xscale("log")
axes[1].set_yscale("symlog", linthresh=1e-4)
axes[1].set_xlabel("n (samples of each class)")
axes[1].set_ylabel("(4) at learned f minus (4) at f*, same samples")
axes[1].set_title("Learned f against f*: on the training samples and on fresh ones")
axes[1].legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Left: the quadratic classifier's error follows the $1/\sqrt n$ line; the MLP's
# error is larger at every $n$ (it has to discover the shape of $f^*$, with about
# 1200 parameters instead of 6) and falls as $n$ grows too, though nothing
# guarantees its rate: at large $n$ the error that more samples do not remove (a
# small network trained for a finite number of steps) takes over. In the full
# profile we measured the MLP at 0.099 for both $n = 3\cdot10^4$ and $n = 10^5$
# (geometric means over 10 seeds), while the quadratic went on down to 0.015.
# Right (mean over seeds, on a scale that is logarithmic away from zero): the
# objective (4) of the learned $f$ minus that of $f^*$, once on the classifier's own
# training samples and once on the fresh samples. On its training samples a
# learned classifier usually scores *more* than $f^*$: it maximised (4) on exactly
# those samples, so it fits their accidents as well as the ratio (the quadratic,
# which contains $f^*$, can always match $f^*$ there; the MLP only nearly). On fresh samples it
# scores less, as Lemma 1 requires: no classifier beats $f^*$ on fresh data, which
# is Lemma 1 checked once more, on every classifier trained here. The difference
# between the two curves (the generalisation gap) closes as $n$ grows. With
# $n=100$ the MLP's gap is large: it memorises its samples (overfitting) and reports
# a badly wrong ratio, which is why the paper regularises its discriminators
# (dropout).
#
# ### Check: the rate, and the claims just made
#
# * The quadratic classifier's fitted log-log slope lies in $[-0.8, -0.3]$. Theory
#   says $-0.5$; the window allows for the seed-to-seed scatter (the RMSE of one
#   fit is the square root of a weighted sum of a few squared normal variables, so
#   single runs vary by tens of percent) and for the small optimisation error that
#   flattens the curve at the largest $n$. The printed standard error of the slope
#   shows how much of the window that scatter uses.
# * The MLP's error at the largest $n$ is below its error at the smallest $n$.
# * At every $n$ the MLP's error (geometric mean over seeds) is above the
#   well-specified quadratic's (the price of not knowing the form of $f^*$).
# * For every trained classifier, (4) on fresh samples does not exceed $V(f^*)$
#   (to three paired standard errors).
# * At the smallest $n$ the MLP scores more than $f^*$ on its training samples (mean
#   over seeds), and for both classifiers the generalisation gap (training excess
#   minus fresh-sample excess, mean over seeds) is larger at the smallest $n$ than at
#   the largest.

# %%
slope_q, se_q = slopes["quadratic"]
assert -0.8 < slope_q < -0.3, slope_q
assert geo["MLP"][-1] < geo["MLP"][0]
assert (geo["MLP"] > geo["quadratic"]).all()
print("MLP parameters:", sum(t.numel() for t in MLPDiscriminator(2, hidden=32).parameters()),
      " quadratic parameters:", sum(t.numel() for t in QuadraticDiscriminator(2).parameters()))
for name, o in objective.items():
    excess = o["test"] / o["test_se"]
    print(f"{name:>9}: largest (V(f) - V(f*)) / SE over all runs on fresh samples = {excess.max():+.2f}")
    assert (excess < 3).all()
print(f"{'n':>7} | {'(4) of learned f minus (4) of f*:':^50}")
print(f"{'':>7} | {'quad train':>11} {'quad fresh':>11} | {'MLP train':>11} {'MLP fresh':>11}")
for i, n in enumerate(n_list):
    print(f"{n:>7} | {objective['quadratic']['train'][i].mean():+11.5f} {objective['quadratic']['test'][i].mean():+11.5f} | "
          f"{objective['MLP']['train'][i].mean():+11.5f} {objective['MLP']['test'][i].mean():+11.5f}")
assert objective["MLP"]["train"][0].mean() > 0
for name, o in objective.items():
    gen_gap = (o["train"] - o["test"]).mean(1)
    print(f"{name:>9}: generalisation gap at n = {n_list[0]}: {gen_gap[0]:.4f}, at n = {n_list[-1]}: {gen_gap[-1]:.5f}")
    assert gen_gap[0] > gen_gap[-1]
print("all checks passed")

# %% [markdown]
# ### Explore: move $q$ and watch the learned ratio follow the true one
#
# In one dimension the whole lemma fits in one picture. Keep $p = \mathcal N(0, 1)$
# and let $q = \mathcal N(\mu, \sigma^2)$. Then
# $f^*(x) = \log p(x) - \log q(x) = \log\sigma - \tfrac12 x^2 + \tfrac{(x-\mu)^2}{2\sigma^2}$,
# a parabola (a straight line when $\sigma = 1$). Each panel below draws $n$
# samples of each class, trains a classifier on them with the same
# `train_discriminator` and recipes as above (the quadratic gets 1000 steps
# instead of 300: its $x^2$ feature is slow to converge in one dimension), and plots its logit (learned)
# over $f^*$ (true), with the two densities underneath to show where the samples
# are. The RMSE in each title is measured at fresh draws from the mixture
# $(p+q)/2$, where the lemma makes its promise.
#
# The three panels are the static picture: the well-specified quadratic with many
# samples (the curves agree where the samples are), the same with 30 samples
# (they part), and the MLP with 100 samples of each class (it bends to fit its
# samples; with $\sigma = 1$ the true ratio is a straight line). In JupyterLab or Colab the sliders under
# them redraw the panel for any $\mu$, $\sigma$, $n$ and classifier; a redraw
# trains a classifier afresh, which takes a second or two.

# %%
import ipywidgets as widgets


def lemma1_panel(ax, mean_q, std_q, n, classifier, seed=0):
    """Train `classifier` on n samples of p = N(0, 1) (label 1) and q = N(mean_q, std_q^2)
    (label 0); plot its logit over the true log p - log q; return the RMSE under the mixture."""
    p1 = Gaussian(torch.zeros(1, dtype=dtype), torch.eye(1, dtype=dtype))
    q1 = Gaussian(torch.tensor([mean_q], dtype=dtype), torch.tensor([[std_q**2]], dtype=dtype))
    g = torch.Generator().manual_seed(seed)
    xp, xq, fresh = p1.sample(n, g), q1.sample(n, g), torch.cat([p1.sample(2000, g), q1.sample(2000, g)])
    torch.manual_seed(seed)
    if classifier == "quadratic":
        disc = QuadraticDiscriminator(1)
        train_discriminator(disc, (xp,), (xq,), batch_size=n, seed=seed, progress=False,
                            **dict(quad_recipe, steps=1000))
    else:
        disc = MLPDiscriminator(1, hidden=32)
        train_discriminator(disc, (xp,), (xq,), seed=seed, progress=False, **mlp_recipe)
    true_ratio = lambda x: p1.log_prob(x) - q1.log_prob(x)
    with torch.no_grad():
        rmse = ratio_rmse(disc(fresh).double(), true_ratio(fresh))
        x = torch.linspace(-5, 5, 401, dtype=dtype)[:, None]
        learned = disc(x).double()
    ax.plot(x[:, 0], true_ratio(x), "k", lw=2, label="true $f^* = \\log p - \\log q$")
    ax.plot(x[:, 0], learned, "C3--", lw=2, label=f"learned ({classifier})")
    ax.set_ylim(-8, 8)
    ax.set_xlabel("x")
    ax.set_title(f"q = N({mean_q:.1f}, {std_q:.1f}$^2$), n = {n}: RMSE {rmse:.2f}", fontsize=9)
    dens = ax.twinx()
    dens.fill_between(x[:, 0], p1.log_prob(x).exp(), alpha=0.2, color="C0", label="p")
    dens.fill_between(x[:, 0], q1.log_prob(x).exp(), alpha=0.2, color="C1", label="q")
    dens.set_ylim(0, 2.5)
    dens.set_yticks([])
    return rmse


settings = [(1.5, 0.7, 3000, "quadratic"), (1.5, 0.7, 30, "quadratic"), (2.0, 1.0, 100, "MLP")]
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
for ax, setting in zip(axes, settings):
    print(f"mu = {setting[0]}, sigma = {setting[1]}, n = {setting[2]}, {setting[3]:>9}: "
          f"RMSE {lemma1_panel(ax, *setting):.3f}")
axes[0].legend(fontsize=8, loc="upper left")
plt.tight_layout()
plt.show()


# %%
def lemma1_explorer(mu=1.5, sigma=0.7, n=1000, classifier="quadratic"):
    fig, ax = plt.subplots(figsize=(6, 3.4))
    lemma1_panel(ax, mu, sigma, n, classifier)
    ax.legend(fontsize=8, loc="upper left")
    plt.show()


widgets.interact(
    lemma1_explorer,
    mu=widgets.FloatSlider(value=1.5, min=-3, max=3, step=0.1, continuous_update=False, description="μ of q"),
    sigma=widgets.FloatSlider(value=0.7, min=0.3, max=2.0, step=0.05, continuous_update=False, description="σ of q"),
    n=widgets.IntSlider(value=1000, min=20, max=5000, step=20, continuous_update=False, description="n per class"),
    classifier=widgets.Dropdown(options=["quadratic", "MLP"], value="quadratic", description="classifier"),
);

# %% [markdown]
# ## 4. What this buys AS-VAE
#
# Nothing in this chapter ever gave a classifier a density. It saw samples of $p$
# and samples of $q$ and nothing else, and its logit came out as
# $\log p - \log q$: exactly in the limit (Lemma 1), to within $O(1/\sqrt n)$ for a
# well-specified classifier with $n$ samples, and to within about 0.2 (RMSE, against
# a spread of 2) for a small network with $10^4$ samples, where the data are.
#
# That is the whole trick AS-VAE relies on. The bound it maximises contains
# $\log q(x) - \log p_\theta(x)$, where $q(x)$ is the data distribution, which no one can
# evaluate, and $p_\theta(x) = \int p(z)p_\theta(x|z)\,dz$, which is intractable;
# and $\log p(z) - \log q_\phi(z)$, where the aggregated posterior $q_\phi(z)$ is an average
# over the whole data set. Both distributions can be *sampled*: real data and its
# encodings on one side, the decoder's samples on the other. So a classifier can
# learn both ratios. Corollary 1.1, the subject of chapter 3, builds the two
# classifiers of AS-VAE on pairs $(x, z)$, and shows why their optima depend on $x$
# alone and on $z$ alone, although each sees the pair.
#
# Two lessons from this chapter carry over. The learned ratio is only trustworthy
# where the two classes have samples (under the mixture), and a flexible
# classifier with too few samples fits the samples rather than the ratio.

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
# Lemma 1, $f^*(x) = \log p(x) - \log q(x)$, as an explicit quadratic in $x$ and
# implement it. The check estimates the objective (4),
# $\mathbb E_p \log\sigma(f) + \mathbb E_q \log(1-\sigma(f))$, on 200,000 samples
# from each side and confirms that moving $f^*$ in any of several directions
# lowers it.

# %% nbgrader={"grade": false, "grade_id": "ex2_1", "locked": false, "schema_version": 3, "solution": true}
import math

import torch


def optimal_logit(x):
    """f*(x) = log N(x; 1, 1) - log N(x; -1, 4), written out as a quadratic in x."""
    ### BEGIN SOLUTION
    return -0.5 * (x - 1) ** 2 + (x + 1) ** 2 / 8 + math.log(2)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex2_1_check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
g = torch.Generator().manual_seed(0)
xp = 1 + torch.randn(200_000, generator=g, dtype=torch.float64)
xq = -1 + 2 * torch.randn(200_000, generator=g, dtype=torch.float64)
objective = lambda f: (torch.nn.functional.logsigmoid(f(xp)).mean()
                       + torch.nn.functional.logsigmoid(-f(xq)).mean()).item()
best = objective(optimal_logit)
for name, move in (("+0.3", lambda x: 0.3 + 0 * x), ("-0.3", lambda x: -0.3 + 0 * x),
                   ("+0.2x", lambda x: 0.2 * x), ("-0.05x^2", lambda x: -0.05 * x**2)):
    moved = objective(lambda x: optimal_logit(x) + move(x))
    print(f"objective at f*: {best:.5f}; moved by {name}: {moved:.5f}")
    assert moved < best - 1e-3, f"moving f* by {name} should lower the objective (4)"
### BEGIN HIDDEN TESTS
x = torch.linspace(-6, 6, 101, dtype=torch.float64)
truth = (torch.distributions.Normal(1.0, 1.0).log_prob(x) - torch.distributions.Normal(-1.0, 2.0).log_prob(x))
assert torch.allclose(optimal_logit(x), truth, atol=1e-10)
### END HIDDEN TESTS
print("Exercise 2.1: correct")
