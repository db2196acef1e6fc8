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
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/asvae-book/asvae-book/blob/main/chapters/04_symmetric_bound.ipynb)
#
# Symbols as in [the book's notation table](../README.md#notation); builds on [chapter 1](01_why_symmetric.ipynb), [chapter 2](02_lemma1_density_ratio.ipynb), [chapter 3](03_two_discriminators.ipynb).
#
# # Chapter 4. The symmetric bound and Proposition 1
#
# With the two discriminators of chapter 3 in hand, the paper [Pu17] builds a bound
# that looks at the joint distribution of data and codes from both sides:
#
# $$\mathcal L_x(\theta,\phi) = \mathbb E_{q(x)}[\log p_\theta(x)] - \mathrm{KL}\big(q_\phi(x,z)\,\|\,p_\theta(x,z)\big) \tag{8}$$
# $$\mathcal L_z(\theta,\phi) = \mathbb E_{p(z)}[\log q_\phi(z)] - \mathrm{KL}\big(p_\theta(x,z)\,\|\,q_\phi(x,z)\big) \tag{9}$$
#
# Every identity below is checked in the Gaussian world of chapters 1-3, where all
# of them are closed form. The chapter will show:
#
# * that $\mathcal L_x$ is the ELBO minus the mean of the optimal $f$-discriminator,
#   and that $\mathcal L_z$ has a term that needs the data density (section 1);
# * what "symmetric" means: the bound is two reconstructions, two mutual
#   informations and two symmetric KLs (section 2);
# * Proposition 1: the bound's optimum matches the two joints, and on PPCA-shaped
#   data it is the maximum-likelihood PPCA fit of [TB99] (section 3); where no
#   model of the family fits, the symmetric optimum trades forward KL for reverse
#   KL (section 4);
# * the paper's practical objective (10)/(11) with trained discriminators, under
#   both readings of its x-side KL weight, and what it leaves out (sections 5-6);
# * the model and the game (11)-(12) as the library runs them (section 7);
# * that the gradient of (11) is not the gradient of the bound, however good the
#   discriminators (section 8), and a surrogate, the book's and not the paper's,
#   whose gradient is exact at the optimal discriminators, with the heavy tails it
#   pays for that (section 9);
# * the game (12) under both of its readings (A: the encoder and decoder ascend (11)
#   only; B: a saddle, in which they also play against the discriminators), what each
#   follows at the optimal discriminators, and where each goes when played: A runs
#   off to infinity, B settles near (10)'s optimum (section 10).

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

import matplotlib.pyplot as plt
import torch

from asvae_lib import objectives
from asvae_lib.density_ratio import QuadraticDiscriminator, train_discriminator
from asvae_lib.gaussian_world import GaussianWorld, add_to_class, exact_posterior
from asvae_lib.gaussians import kl
from asvae_lib.profile import pick, profile

torch.set_num_threads(1)   # tiny tensors: one thread avoids costly thread synchronisation
torch.manual_seed(0)
N_MC = pick(quick=100_000, full=1_000_000)       # Monte Carlo samples for estimates
STEPS, LR = pick(quick=600, full=3000), pick(quick=0.03, full=0.01)   # Adam paths "over training"
N_DISC, DISC_STEPS = pick(quick=50_000, full=500_000), pick(quick=300, full=3000, smoke=300)
print("profile:", profile())
dt = torch.float64
m = torch.tensor([1.0, -0.5, 0.3], dtype=dt)
C_general = torch.tensor([[3.0, 0.8, 0.2], [0.8, 1.5, 0.1], [0.2, 0.1, 0.6]], dtype=dt)   # not PPCA-shaped
W_true = torch.tensor([[1.5], [0.8], [-0.5]], dtype=dt)
C_ppca = W_true @ W_true.T + 0.2 * torch.eye(3, dtype=dt)                                # PPCA-shaped, K = 1
world = GaussianWorld.random(m, C_general, K=1, seed=0)    # data in R^3, codes in R^1

# %% [markdown]
# ## 1. $\mathcal L_x$ is the ELBO minus $\mathbb E_q f^*$
#
# From chapter 1, $\mathcal L_{\rm VAE} = -\mathrm{KL}(q_\phi(x,z)\|p_\theta(x,z)) - H(q(x))$,
# and $\mathbb E_{q(x)}[\log p_\theta(x)] = -H(q(x)) - \mathrm{KL}(q(x)\|p_\theta(x))$. Subtracting,
#
# $$\mathcal L_x = \mathcal L_{\rm VAE} - \mathrm{KL}(q(x)\|p_\theta(x)) = \mathcal L_{\rm VAE} - \mathbb E_{q_\phi(x,z)}[f^*(x,z)],$$
#
# since $f^* = \log q(x) - \log p_\theta(x)$ averages to that KL over real data. This is
# the paper's "one may readily demonstrate": the ELBO, which needs only the
# encoder and decoder, plus the $f$-discriminator, give $\mathcal L_x$.
#
# For $\mathcal L_z$, expand the joint KL with $p_\theta(x,z) = p(z)p_\theta(x|z)$ and
# $q_\phi(x,z) = q(x)q_\phi(z|x)$, and add and subtract $\log q_\phi(z)$:
#
# $$\mathcal L_z = \mathbb E_{p_\theta(x,z)}[\log q_\phi(z|x)] - \mathbb E_{p(z)}\mathrm{KL}(p_\theta(x|z)\|q(x)) - \mathbb E_{p_\theta(x,z)}[h^*(x,z)].$$
#
# The middle term is the mirror of the ELBO's KL, and it needs $q(x)$, the data
# density nobody has. Each identity is checked exactly (closed form against
# closed form) and by Monte Carlo (samples and the optimal discriminators
# against closed form, within four standard errors).

# %% [markdown]
# In the Gaussian world both bounds are closed forms, written as (8) and (9): minus a
# cross-entropy (the data term $-H(q) - \mathrm{KL}(q\|p_\theta)$, or its mirror on the codes)
# minus a KL between the two joints of chapter 1.

# %%
#@save gaussian_world
from asvae_lib.gaussians import cross_entropy, kl


@add_to_class(GaussianWorld)
def L_x(self) -> torch.Tensor:
    """(8): ``E_q(x)[log p_theta(x)] - KL(q_phi(x,z) || p_theta(x,z))``."""
    return -cross_entropy(self.data(), self.model()) - kl(self.encoder_joint(), self.decoder_joint())


@add_to_class(GaussianWorld)
def L_z(self) -> torch.Tensor:
    """(9): ``E_p(z)[log q_phi(z)] - KL(p_theta(x,z) || q_phi(x,z))``."""
    return (-cross_entropy(self.prior(), self.aggregated_posterior())
            - kl(self.decoder_joint(), self.encoder_joint()))


# %% [markdown]
# The first two terms of the rebuilt $\mathcal L_z$ mirror chapter 1's ELBO terms. The
# reconstruction of $z$: $\log q_\phi(z|x)$ is the encoder noise's log-density at the
# residual $r = z - Ax - c$, a linear map of the decoder joint, so its mean is minus a
# cross-entropy. The term that needs the data density: the cross-entropy to $q(x)$ is linear
# in its first argument, so $\mathbb E_{p(z)}\mathrm{KL}(p_\theta(x|z)\|q(x))$ is the cross-entropy
# of the model $p_\theta(x)$ to $q(x)$ minus the entropy of the decoder noise.

# %%
#@save gaussian_world
from asvae_lib.gaussians import Gaussian, cross_entropy


@add_to_class(GaussianWorld)
def reconstruction_z(self) -> torch.Tensor:
    """``E_{p_theta(x,z)}[log q_phi(z|x)]``: reconstruct z through the decoder; as
    :meth:`reconstruction_x`, with the residual ``r = z - A x - c`` and the encoder noise."""
    J = self.decoder_joint()
    L = torch.cat([-self.A, torch.eye(self.K, dtype=J.mean.dtype)], 1)
    return -cross_entropy(Gaussian(L @ J.mean - self.c, L @ J.cov @ L.T), self.encoder_noise())


@add_to_class(GaussianWorld)
def decoder_kl_to_data(self) -> torch.Tensor:
    """``E_p(z) KL(p_theta(x|z) || q(x))``: the z-side term that (10) leaves out.

    It needs the data density ``q(x)``, which nobody has outside this world.
    As in :meth:`encoder_kl`: ``E_z CE(p_theta(x|z), q) = CE(p_theta(x), q)``, and every
    ``p_theta(x|z)`` has the entropy of the decoder noise.
    """
    return cross_entropy(self.model(), self.data()) - self.decoder_noise().entropy()


# %%
with torch.no_grad():
    kl_x = kl(world.data(), world.model())
    print(f"L_x = {world.L_x():.6f}   L_VAE - KL(q||p_theta) = {world.elbo() - kl_x:.6f}")
    assert abs(world.L_x() - (world.elbo() - kl_x)) < 1e-10
    h_mean = kl(world.prior(), world.aggregated_posterior())
    rebuilt_z = world.reconstruction_z() - world.decoder_kl_to_data() - h_mean
    print(f"L_z = {world.L_z():.6f}   rebuilt from its three terms = {rebuilt_z:.6f}")
    assert abs(world.L_z() - rebuilt_z) < 1e-10

    g = torch.Generator().manual_seed(1)
    x = world.sample_data(N_MC, g)
    z = world.encode(x, g)
    per_sample = world.decoder_log_prob(x, z) + world.prior().log_prob(z) - world.encoder_log_prob(z, x) - world.f_star(x, z)
    mc, se = per_sample.mean(), per_sample.std() / N_MC**0.5
    print(f"Monte Carlo L_VAE - E f* = {mc:.4f} +- {se:.4f}   closed-form L_x = {world.L_x():.4f}")
    assert abs(mc - world.L_x()) < 4 * se

    zp = world.sample_prior(N_MC, g)
    xp = world.decode(zp, g)
    per_sample = world.encoder_log_prob(zp, xp) - (world.decoder_log_prob(xp, zp) - world.data().log_prob(xp)) - world.h_star(xp, zp)
    mc, se = per_sample.mean(), per_sample.std() / N_MC**0.5
    print(f"Monte Carlo L_z = {mc:.4f} +- {se:.4f}   closed form = {world.L_z():.4f}")
    assert abs(mc - world.L_z()) < 4 * se

# %% [markdown]
# ## 2. What "symmetric" means: the bound taken apart
#
# Write $\mathcal L_{\rm VAE} = \mathbb E_{q_\phi(x,z)}\log p_\theta(x|z) - \mathbb E_{q(x)}\mathrm{KL}(q_\phi(z|x)\|p(z))$
# and use $\mathbb E_{q(x)}\mathrm{KL}(q_\phi(z|x)\|p(z)) = I_q(x;z) + \mathrm{KL}(q_\phi(z)\|p(z))$; mirror
# it with $\mathbb E_{p(z)}\mathrm{KL}(p_\theta(x|z)\|q(x)) = I_p(x;z) + \mathrm{KL}(p_\theta(x)\|q(x))$. Then
#
# $$\mathcal L_x + \mathcal L_z = \underbrace{\mathbb E_{q_\phi(x,z)}\log p_\theta(x|z) + \mathbb E_{p_\theta(x,z)}\log q_\phi(z|x)}_{\text{two reconstructions}}
#  - \underbrace{I_q(x;z) - I_p(x;z)}_{\text{two mutual informations}}
#  - \underbrace{\mathrm{KL}_{\rm sym}(q(x), p_\theta(x)) - \mathrm{KL}_{\rm sym}(p(z), q_\phi(z))}_{\text{two symmetric marginal KLs}}.$$
#
# Each symmetric KL is the gap between the optimal discriminator's means on its
# two classes: $\mathrm{KL}_{\rm sym}(x) = \mathbb E_{q(x)} f^* - \mathbb E_{p_\theta(x)} f^*$ and
# $\mathrm{KL}_{\rm sym}(z) = \mathbb E_{p(z)} h^* - \mathbb E_{q_\phi(z)} h^*$.

# %% [markdown]
# $I_p(x;z)$ mirrors chapter 1's $I_q(x;z)$: $H(p_\theta(x)) - H(p_\theta(x|z))
# = \tfrac12\big[\log|WW^\top + s^2 I| - D\log s^2\big]$. The six pieces, in closed form:

# %%
#@save gaussian_world
from asvae_lib.gaussians import kl


@add_to_class(GaussianWorld)
def mutual_information_p(self) -> torch.Tensor:
    """``I_p(x; z) = H(p_theta(x)) - H(p_theta(x|z))`` under the decoder joint."""
    return 0.5 * (torch.logdet(self.model().cov) - self.D * self.log_s2)


@add_to_class(GaussianWorld)
def symmetric_terms(self) -> dict:
    """The pieces of ``L_x + L_z`` as the book takes it apart (chapter 4)."""
    return {
        "reconstruction of x": self.reconstruction_x(),
        "reconstruction of z": self.reconstruction_z(),
        "I_q(x;z)": self.mutual_information_q(),
        "I_p(x;z)": self.mutual_information_p(),
        "KL_sym(x)": kl(self.data(), self.model()) + kl(self.model(), self.data()),
        "KL_sym(z)": kl(self.prior(), self.aggregated_posterior()) + kl(self.aggregated_posterior(), self.prior()),
    }


# %%
with torch.no_grad():
    terms = {k: v.item() for k, v in world.symmetric_terms().items()}
    signs = {"reconstruction of x": 1, "reconstruction of z": 1, "I_q(x;z)": -1, "I_p(x;z)": -1, "KL_sym(x)": -1, "KL_sym(z)": -1}
    total = sum(signs[k] * v for k, v in terms.items())
    print(f"sum of the six terms {total:.8f}   L_x + L_z {(world.L_x() + world.L_z()).item():.8f}")
    assert abs(total - (world.L_x() + world.L_z()).item()) < 1e-10

    g = torch.Generator().manual_seed(2)
    (x_pos, _), (x_neg, _) = world.f_pairs(N_MC, g)
    gap_f = world.f_star(x_pos).mean() - world.f_star(x_neg).mean()
    se_f = (world.f_star(x_pos).var() / N_MC + world.f_star(x_neg).var() / N_MC).sqrt()
    (_, z_pos), (_, z_neg) = world.h_pairs(N_MC, g)
    gap_h = world.h_star(None, z_pos).mean() - world.h_star(None, z_neg).mean()
    se_h = (world.h_star(None, z_pos).var() / N_MC + world.h_star(None, z_neg).var() / N_MC).sqrt()
    print(f"KL_sym(x) = {terms['KL_sym(x)']:.4f}   E_q f* - E_p f* = {gap_f:.4f} +- {se_f:.4f}")
    print(f"KL_sym(z) = {terms['KL_sym(z)']:.4f}   E_p h* - E_q h* = {gap_h:.4f} +- {se_h:.4f}")
    assert abs(gap_f - terms["KL_sym(x)"]) < 4 * se_f and abs(gap_h - terms["KL_sym(z)"]) < 4 * se_h

fig, ax = plt.subplots(figsize=(7, 3))
ax.barh(list(terms), [signs[k] * v for k, v in terms.items()], color=["tab:green"] * 2 + ["tab:orange"] * 2 + ["tab:red"] * 2)
ax.axvline(0, color="k", lw=0.5); ax.set_xlabel("signed contribution to L_x + L_z (nats)")
ax.set_title(f"a random encoder/decoder: L_x + L_z = {total:.3f}"); plt.tight_layout(); plt.show()

# %% [markdown]
# ## 3. Proposition 1: the optimum matches the joints
#
# Since $\mathbb E_{q}\log p_\theta(x) = -H(q) - \mathrm{KL}(q(x)\|p_\theta(x))$ and
# $\mathbb E_p\log q_\phi(z) = -H(p) - \mathrm{KL}(p(z)\|q_\phi(z))$,
#
# $$\mathcal L_x + \mathcal L_z = -H(q(x)) - H(p(z)) - \Big[\mathrm{KL}(q_\phi(x,z)\|p_\theta(x,z)) + \mathrm{KL}(p_\theta(x,z)\|q_\phi(x,z)) + \mathrm{KL}(q(x)\|p_\theta(x)) + \mathrm{KL}(p(z)\|q_\phi(z))\Big].$$
#
# The bracket is non-negative and vanishes exactly when the two joints match
# (which makes the marginals match too): then the encoder is the decoder's exact
# posterior, $p_\theta(x) = q(x)$ and $q_\phi(z) = p(z)$. Whether this optimum is
# *reachable* depends on the model family. First, data whose covariance is
# PPCA-shaped ($C = W W^\top + s^2 I$ with $K = 1$), so a perfect fit exists. We
# maximise the exact $\mathcal L_x + \mathcal L_z$ from a random start: Adam for a
# few hundred steps (the path we plot), then L-BFGS to the optimum (what we check).
# In the right-hand panel a KL below $10^{-8}$ is drawn on the dotted line at
# $10^{-8}$: a logarithmic axis cannot show zero, and at the optimum the four KLs are
# zero up to float64 rounding (the cell after the figure prints the two joint KLs; a
# closed-form KL that is zero can come out a few $10^{-16}$ below zero).

# %% [markdown]
# Both optimisers work on any closed-form objective of the world, over $\theta$ and $\phi$
# together. Adam takes a fixed number of steps and can report each one, so a figure can
# follow the path:

# %%
#@save gaussian_world
def ascend(world: GaussianWorld, objective, steps: int = 2000, lr: float = 0.02, on_step=None) -> list:
    """Maximise ``objective(world)`` (a closed-form scalar) over theta and phi with Adam.

    ``on_step(step, world)``, if given, is called before every step and once at
    the end (with ``step == steps``), so a chapter can record the path.
    Returns the objective's value at every step, for plotting.
    """
    opt = torch.optim.Adam(world.parameters(), lr=lr)
    history = []
    for step in range(steps):
        if on_step is not None:
            on_step(step, world)
        value = objective(world)
        opt.zero_grad()
        (-value).backward()
        opt.step()
        history.append(value.item())
    if on_step is not None:
        on_step(steps, world)
    return history


# %% [markdown]
# The objective is smooth, deterministic and low-dimensional, so L-BFGS with a line search
# finds its optimum to float64 precision in tens of evaluations, where Adam needs thousands:

# %%
#@save gaussian_world
def maximise(world: GaussianWorld, objective, max_iter: int = 500) -> int:
    """Find the optimum of a closed-form ``objective(world)`` with L-BFGS.

    Smooth, deterministic and low-dimensional: L-BFGS with a line search
    converges in tens of evaluations, where Adam (:func:`ascend`) needs
    thousands. Returns the number of evaluations used.
    """
    opt = torch.optim.LBFGS(world.parameters(), lr=1, max_iter=max_iter, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-10, tolerance_change=1e-14)
    evaluations = 0

    def closure():
        nonlocal evaluations
        evaluations += 1
        opt.zero_grad()
        loss = -objective(world)
        loss.backward()
        return loss

    opt.step(closure)
    return evaluations


# %%
def track(w):
    """The bound's pieces at the current parameters (for plotting over training)."""
    with torch.no_grad():
        return {"L_x": w.L_x().item(), "L_z": w.L_z().item(),
                "KL(q_joint||p_joint)": kl(w.encoder_joint(), w.decoder_joint()).item(),
                "KL(p_joint||q_joint)": kl(w.decoder_joint(), w.encoder_joint()).item(),
                "KL(q(x)||p(x))": kl(w.data(), w.model()).item(),
                "KL(p(z)||q(z))": kl(w.prior(), w.aggregated_posterior()).item()}

fit = GaussianWorld.random(m, C_ppca, K=1, seed=1)
trace, steps_axis = [], []
def record(step, w):
    if step % 25 == 0:
        trace.append(track(w)); steps_axis.append(step)
ascend(fit, lambda v: v.L_x() + v.L_z(), steps=STEPS, lr=LR, on_step=record)
evaluations = maximise(fit, lambda v: v.L_x() + v.L_z())   # then polish to the optimum with L-BFGS
trace.append(track(fit)); steps_axis.append(STEPS + evaluations)
print(f"Adam for {STEPS} steps, then L-BFGS converged in {evaluations} evaluations")

FLOOR = 1e-8   # a log axis cannot show 0 (nor a rounding error below it): smaller KLs are drawn at FLOOR
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
for key in ("L_x", "L_z"):
    axes[0].plot(steps_axis, [t[key] for t in trace], label=key)
axes[0].plot(steps_axis, [t["L_x"] + t["L_z"] for t in trace], "k", label="L_x + L_z")
axes[0].axhline(-(fit.data().entropy() + fit.prior().entropy()).item(), color="k", ls="--", label="-H(q) - H(p)")
axes[0].set_ylim(-12, 0); axes[0].legend(fontsize=8); axes[0].set_ylabel("nats")
axes[0].set_title("the bound rises to its ceiling -H(q) - H(p)")
for key in list(trace[0])[2:]:
    axes[1].semilogy(steps_axis, [max(t[key], FLOOR) for t in trace], label=key)
axes[1].axhline(FLOOR, color="0.5", ls=":", lw=1, label=f"below {FLOOR:g}: drawn on this line")
axes[1].legend(fontsize=8); axes[1].set_ylabel("nats (log scale)"); axes[1].set_title("the four KLs of Proposition 1 go to zero")
for ax in axes:
    ax.set_xlabel("Adam step (the last point: after L-BFGS)")
plt.tight_layout(); plt.show()

# %% [markdown]
# What the optimum should be: Tipping and Bishop's maximum-likelihood PPCA [TB99]. With the
# eigendecomposition $C = U\Lambda U^\top$, eigenvalues in decreasing order, $s^2$ is the mean
# of the $D-K$ smallest eigenvalues and $W = U_K(\Lambda_K - s^2 I)^{1/2}$ (the first $K$
# columns and eigenvalues), unique up to a rotation of $z$; its exact posterior (chapter 1) is
# the encoder to compare with.

# %%
#@save gaussian_world
def ppca_maximum_likelihood(data_cov: torch.Tensor, K: int):
    """Tipping & Bishop's maximum-likelihood PPCA fit to covariance ``C``.

    ``s2`` = the mean of the ``D - K`` smallest eigenvalues, ``W = U_K (Lambda_K - s2 I)^(1/2)``
    (unique up to a rotation of z; this is the one with orthogonal columns).
    """
    evals, evecs = torch.linalg.eigh(data_cov)            # ascending
    evals, evecs = evals.flip(0), evecs.flip(1)
    s2 = evals[K:].mean()
    W = evecs[:, :K] * torch.sqrt(torch.clamp(evals[:K] - s2, min=0.0))
    return W, s2


# %%
with torch.no_grad():
    ceiling = -(fit.data().entropy() + fit.prior().entropy())
    W_ml, s2_ml = ppca_maximum_likelihood(C_ppca, K=1)
    A_post, c_post, S_post = exact_posterior(fit.W, fit.b, fit.s2)
    final = trace[-1]
    print(f"L_x + L_z = {final['L_x'] + final['L_z']:.6f}   ceiling -H(q) - H(p) = {ceiling:.6f}")
    print("joint KLs:", f"{final['KL(q_joint||p_joint)']:.2e}", f"{final['KL(p_joint||q_joint)']:.2e}")
    print(f"s2 = {fit.s2:.4f} (ML {s2_ml:.4f}); max |W W^T - W_ml W_ml^T| = {(fit.W @ fit.W.T - W_ml @ W_ml.T).abs().max():.2e}")
    print(f"encoder vs the decoder's exact posterior: max |A - A_post| = {(fit.A - A_post).abs().max():.2e}, "
          f"|S - S_post| = {(fit.S - S_post).abs().max():.2e}")
    # Tolerances: the optimisation is deterministic and converged (L-BFGS); what is left is
    # optimiser precision, far below these thresholds.
    assert abs(final["L_x"] + final["L_z"] - ceiling) < 1e-6
    assert final["KL(q_joint||p_joint)"] < 1e-6 and final["KL(p_joint||q_joint)"] < 1e-6
    assert (fit.W @ fit.W.T - W_ml @ W_ml.T).abs().max() < 1e-3 and abs(fit.s2 - s2_ml) < 1e-3
    assert (fit.A - A_post).abs().max() < 1e-3 and (fit.S - S_post).abs().max() < 1e-3

# %% [markdown]
# The symmetric bound's optimum *is* the maximum-likelihood PPCA fit with its
# exact posterior as encoder, and both joints coincide.
#
# ## 4. When the family cannot match: symmetric optimum against maximum likelihood
#
# Now data whose covariance is not PPCA-shaped (three distinct eigenvalues, one
# latent dimension). No decoder matches $q(x)$, so the bracket cannot vanish.
# We maximise (a) the ELBO, which with $K=1$ can use the exact posterior and so
# reaches maximum likelihood, and (b) $\mathcal L_x + \mathcal L_z$, and compare both with
# Tipping and Bishop's closed-form ML solution [TB99].

# %%
W_ml, s2_ml = ppca_maximum_likelihood(C_general, K=1)
A_ml, c_ml, S_ml = exact_posterior(W_ml, m, s2_ml)
candidates = {"ML (closed form)": GaussianWorld(m, C_general, W_ml, m, s2_ml, A_ml, c_ml, torch.diagonal(S_ml))}
candidates["VAE optimum"] = GaussianWorld.random(m, C_general, K=1, seed=2)
maximise(candidates["VAE optimum"], lambda v: v.elbo())
candidates["AS-VAE optimum"] = GaussianWorld.random(m, C_general, K=1, seed=2)
maximise(candidates["AS-VAE optimum"], lambda v: v.L_x() + v.L_z())

table = {}
with torch.no_grad():
    for name, w in candidates.items():
        table[name] = {"L_VAE": w.elbo().item(), "L_x + L_z": (w.L_x() + w.L_z()).item(),
                       "KL(q||p_theta)": kl(w.data(), w.model()).item(), "KL(p_theta||q)": kl(w.model(), w.data()).item(),
                       "joint KL sym": (kl(w.encoder_joint(), w.decoder_joint()) + kl(w.decoder_joint(), w.encoder_joint())).item(),
                       "s2": w.s2.item()}
cols = list(next(iter(table.values())))
print(f"{'':18s}" + "".join(f"{c:>16s}" for c in cols))
for name, row in table.items():
    print(f"{name:18s}" + "".join(f"{v:16.5f}" for v in row.values()))
print(f"ceiling -H(q)-H(p) = {-(candidates['ML (closed form)'].data().entropy() + candidates['ML (closed form)'].prior().entropy()).item():.5f}")

# %%
ml, vae, asvae = table["ML (closed form)"], table["VAE optimum"], table["AS-VAE optimum"]
# The VAE reaches maximum likelihood (the exact posterior is in the encoder family).
assert abs(vae["KL(q||p_theta)"] - ml["KL(q||p_theta)"]) < 1e-4 and abs(vae["L_VAE"] - ml["L_VAE"]) < 1e-4
# Each optimum is best at its own objective ...
assert asvae["L_x + L_z"] >= ml["L_x + L_z"] - 1e-6 and ml["L_VAE"] >= asvae["L_VAE"] - 1e-6
# ... and the symmetric one trades a little forward KL for less reverse KL (less model mass off the data).
assert asvae["KL(p_theta||q)"] < ml["KL(p_theta||q)"] and asvae["KL(q||p_theta)"] > ml["KL(q||p_theta)"]
# The joints cannot match in this family: the bound stays below its ceiling.
assert asvae["joint KL sym"] > 1e-2
print(f"reverse KL: ML {ml['KL(p_theta||q)']:.4f} -> AS-VAE {asvae['KL(p_theta||q)']:.4f};  "
      f"forward KL: ML {ml['KL(q||p_theta)']:.4f} -> AS-VAE {asvae['KL(q||p_theta)']:.4f}")

# %% [markdown]
# The difference is small in this world (a few thousandths of a nat, printed above) but its
# direction is the paper's point, made measurable: against maximum likelihood,
# the symmetric optimum gives up a little $\mathrm{KL}(q\|p_\theta)$ to reduce
# $\mathrm{KL}(p_\theta\|q)$, the divergence that punishes model mass where there
# is no data.
#
# ## 5. The plug-in estimate with trained discriminators
#
# In practice nobody has $f^*$ and $h^*$; the paper plugs in the trained
# $f_\psi, h_{\psi'}$ and estimates (10) from samples, with the reparametrised
# form (11):
#
# $$\mathcal L_{xz} = \mathbb E_{x\sim q,\epsilon}\big[\log p_\theta(x|z_\epsilon) - f_\psi(x, z_\epsilon)\big] - \beta\,\mathbb E_q\mathrm{KL}(q_\phi(z|x)\|p(z)) + \mathbb E_{z\sim p,\epsilon}\big[\log q_\phi(z|x_\epsilon) - h_{\psi'}(x_\epsilon, z)\big].$$
#
# **Uncertain in the paper.** The extracted text lost the formula, and it is not
# clear whether (10) carries the ELBO's $-\mathrm{KL}(q_\phi(z|x)\|p(z))$ on the x-side
# (weight $\beta = 1$; then the x-half is exactly $\mathcal L_x$ at $f^*$) or not ($\beta = 0$,
# the literal "$\log p_\theta(x|z) - f$"). We report both. The z-half, at $h^*$, is
# not $\mathcal L_z$ but $\mathcal L_z + \mathbb E_{p(z)}\mathrm{KL}(p_\theta(x|z)\|q(x))$: (10)
# leaves out the term that needs $q(x)$.
#
# Along an AS-VAE optimisation path we stop five times, train quadratic
# discriminators (well specified here, chapter 2) on the pairs of (5) and (6),
# and compare the plug-in halves with the exact values.

# %% [markdown]
# The plug-in halves are computed by the library's own losses, `x_half` and `z_half`,
# whose code section 7 shows. They are written for a model with an `encoder` and a
# `decoder` (each with `rsample` and `log_prob`), a `sample_prior`, and discriminators `f`,
# `h` (and `g` for the book's surrogate of section 9). `WorldAsModel` gives the Gaussian
# world that interface, so the losses run on it unchanged, on a model whose exact values and
# gradients we know.

# %%
#@save gaussian_world
class _Conditional:
    """One side of the world seen through the interface of ``models.GaussianConditional``."""

    def __init__(self, sample, log_prob):
        self.rsample, self.log_prob = sample, log_prob

    def rsample_with_log_prob(self, c):
        y = self.rsample(c)
        return y, self.log_prob(y, c)


class WorldAsModel:
    """The Gaussian world dressed as an ``models.ASVAE``, so that the library's objectives
    (``objectives.generator_loss``, ``pathwise_surrogate``) run on it unchanged.

    ``f``, ``h`` and ``g`` are any callables ``(x, z) -> logit``: the closed-form optima
    of a frozen copy of the world (``frozen.f_star``, ...) or trained discriminators.
    Gradients reach the world's parameters through the reparametrised samples only.
    """

    def __init__(self, world: "GaussianWorld", f, h, g=None, generator=None):
        self.world, self.f, self.h, self.g, self.generator = world, f, h, g, generator
        self.encoder = _Conditional(lambda x: world.encode(x, generator), world.encoder_log_prob)
        self.decoder = _Conditional(lambda z: world.decode(z, generator), world.decoder_log_prob)

    def sample_prior(self, n: int) -> torch.Tensor:
        return self.world.sample_prior(n, self.generator)


# %% [markdown]
# The estimate of (11) on `n` draws. One difference from a network's x-half: the world
# knows the encoder's KL at each drawn $x$ exactly,
# $\tfrac12\big[\mathrm{tr}\,S + \|Ax + c\|^2 - K - \log|S|\big]$, where a network uses the one-sample
# $\log q_\phi(z_\epsilon|x) - \log p(z_\epsilon)$ (the same expectation, with more noise).

# %%
#@save gaussian_world
from asvae_lib import objectives


@add_to_class(GaussianWorld)
def symmetric_bound_estimate(self, f, h, n: int, kl_weight: float = 1.0, generator=None):
    """Monte Carlo estimate of (11), the reparametrised cumulative bound (10), by the library's
    :func:`objectives.x_half` and :func:`objectives.z_half` run on this world (:class:`WorldAsModel`).

    x-half: ``E_{x~q, eps}[log p_theta(x|z_eps) - f(x, z_eps)] - kl_weight * E_q KL(q_phi(z|x)||p(z))``;
    z-half: ``E_{z~p, eps}[log q_phi(z|x_eps) - h(x_eps, z)]``; ``n`` draws each.
    One difference from ``objectives.x_half``: the KL is exact at each drawn x,
    ``1/2 [tr S + ||A x + c||^2 - K - log|S|]``, where a network's is the one-sample
    ``log q_phi(z_eps|x) - log p(z_eps)`` (the same expectation, with more noise).
    ``kl_weight`` is the uncertain ELBO term of the x-side (1: the x-half is
    ``L_x`` at the optimal ``f``; 0: the other reading, chapter 4). Returns the two halves;
    gradients flow to theta and phi through the reparametrised samples.
    """
    model = WorldAsModel(self, f, h, generator=generator)
    x = self.sample_data(n, generator)
    x_half = objectives.x_half(model, x, kl_weight=0.0)
    if kl_weight:
        z_mean = x @ self.A.T + self.c
        enc_kl = 0.5 * (self.log_S.exp().sum() + (z_mean**2).sum(-1) - self.K - self.log_S.sum())
        x_half = x_half - kl_weight * enc_kl.mean()
    return x_half, objectives.z_half(model, n)


# %%
path = GaussianWorld.random(m, C_general, K=1, seed=3)
stops = [0, 20, 60, 200, STEPS]
rows = []
def measure(step, w):
    """At a stop: train f and h on the pairs of (5) and (6), compare plug-in and exact halves."""
    if step not in stops:
        return
    frozen = copy.deepcopy(w).requires_grad_(False)
    g = torch.Generator().manual_seed(10 + step)
    f, h = QuadraticDiscriminator(4), QuadraticDiscriminator(4)
    train_discriminator(f, *frozen.f_pairs(N_DISC, g), steps=DISC_STEPS, batch_size=4000, lr=0.1, seed=step, progress=False, anneal=True)
    train_discriminator(h, *frozen.h_pairs(N_DISC, g), steps=DISC_STEPS, batch_size=4000, lr=0.1, seed=step, progress=False, anneal=True)
    with torch.no_grad():
        x1, z1 = frozen.symmetric_bound_estimate(f, h, N_MC, kl_weight=1.0, generator=g)
        x0, _ = frozen.symmetric_bound_estimate(f, h, N_MC, kl_weight=0.0, generator=g)
        rows.append({"step": step, "L_x": frozen.L_x().item(), "x-half, β=1": x1.item(), "x-half, β=0": x0.item(),
                     "E_q KL(q(z|x)||p)": frozen.encoder_kl().item(), "L_z": frozen.L_z().item(),
                     "z-half": z1.item(), "left out": frozen.decoder_kl_to_data().item()})
ascend(path, lambda v: v.L_x() + v.L_z(), steps=STEPS, lr=LR, on_step=measure)
print("".join(f"{c:>19s}" for c in rows[0]))
for r in rows:
    print("".join(f"{v:19.4f}" for v in r.values()))

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
s = [r["step"] for r in rows]
axes[0].plot(s, [r["L_x"] for r in rows], "k-o", label="exact L_x")
axes[0].plot(s, [r["x-half, β=1"] for r in rows], "C0--s", label="plug-in x-half, β=1")
axes[0].plot(s, [r["x-half, β=0"] for r in rows], "C1--^", label="plug-in x-half, β=0 (the other reading)")
axes[1].plot(s, [r["L_z"] for r in rows], "k-o", label="exact L_z")
axes[1].plot(s, [r["L_z"] + r["left out"] for r in rows], "k:", label="exact L_z + left-out term")
axes[1].plot(s, [r["z-half"] for r in rows], "C2--s", label="plug-in z-half")
axes[0].set_title("x-half: (11) with a trained f against L_x"); axes[1].set_title("z-half: (11) with a trained h against L_z")
for ax in axes:
    ax.set_xscale("symlog", linthresh=20); ax.set_xlabel("Adam step on L_x + L_z (linear below 20, log above)")
    ax.set_ylabel("nats"); ax.legend(fontsize=8)
plt.tight_layout(); plt.show()

# %% [markdown]
# Tolerance: each plug-in half is a mean over $10^5$ samples (standard error about
# 0.005 nats here) of a logit learned from $5\times10^4$ pairs per class by a
# 14-parameter logistic regression (trained with a cosine-annealed learning
# rate, so little minibatch noise is left), whose error in the mean is of order
# $\sqrt{14/n} \approx 0.017$ nats (chapter 2). We allow 0.06 nat: three of those
# plus the sampling error.

# %%
for r in rows:
    assert abs(r["x-half, β=1"] - r["L_x"]) < 0.06, r
    assert abs(r["x-half, β=0"] - (r["L_x"] + r["E_q KL(q(z|x)||p)"])) < 0.06, r
    assert abs(r["z-half"] - (r["L_z"] + r["left out"])) < 0.06, r
print("the plug-in estimate tracks the exact bound at every stop;",
      f"the z-half overestimates L_z by the left-out term ({min(r['left out'] for r in rows):.2f} to {max(r['left out'] for r in rows):.2f} nats)")

# %% [markdown]
# ## 6. What (10) leaves out, as an objective
#
# The left-out term is $\mathbb E_{p(z)}\mathrm{KL}(p_\theta(x|z)\|q(x)) = I_p(x;z) + \mathrm{KL}(p_\theta(x)\|q(x))$.
# Dropping it from the objective rewards a decoder whose codes are very
# informative (large $I_p$, i.e. small $s^2$) and stops penalising model mass off
# the data. With *optimal* discriminators, (10) is a closed form here
# (`cumulative_bound`), so we can maximise it, under both readings of the x-side,
# and see where it lands compared with the optimum of $\mathcal L_x + \mathcal L_z$.

# %% [markdown]
# At $f^*$ the x-half of (10) is $\mathbb E_q\log p_\theta(x|z) - \beta\,\mathbb E_q\mathrm{KL}(q_\phi(z|x)\|p(z)) - \mathrm{KL}(q(x)\|p_\theta(x))$
# and at $h^*$ the z-half is $\mathbb E_p\log q_\phi(z|x) - \mathrm{KL}(p(z)\|q_\phi(z))$:

# %%
#@save gaussian_world
from asvae_lib.gaussians import kl


@add_to_class(GaussianWorld)
def cumulative_bound(self, kl_weight: float = 1.0):
    """(10) at the optimal discriminators, in closed form, as its two halves.

    x-half: ``E_q[log p_theta(x|z)] - kl_weight * E_q KL(q_phi(z|x)||p(z)) - KL(q(x)||p_theta(x))``
    (equal to ``L_x`` when ``kl_weight`` is 1);
    z-half: ``E_p[log q_phi(z|x)] - KL(p(z)||q_phi(z))``
    (equal to ``L_z + E_p KL(p_theta(x|z)||q(x))``: (10) leaves that term out).
    """
    x_half = self.reconstruction_x() - kl_weight * self.encoder_kl() - kl(self.data(), self.model())
    z_half = self.reconstruction_z() - kl(self.prior(), self.aggregated_posterior())
    return x_half, z_half


# %%
landing = {"L_x + L_z (Prop. 1)": candidates["AS-VAE optimum"]}
for beta in (1.0, 0.0):
    landing[f"(10), β={beta:g}"] = GaussianWorld.random(m, C_general, K=1, seed=2)
    maximise(landing[f"(10), β={beta:g}"], lambda v, beta=beta: sum(v.cumulative_bound(beta)))
with torch.no_grad():
    out = {name: {"L_x + L_z": (w.L_x() + w.L_z()).item(), "I_p(x;z)": w.mutual_information_p().item(),
                  "KL(p_theta||q)": kl(w.model(), w.data()).item(), "left out": w.decoder_kl_to_data().item(),
                  "s2": w.s2.item()} for name, w in landing.items()}
print(f"{'':22s}" + "".join(f"{c:>16s}" for c in next(iter(out.values()))))
for name, row in out.items():
    print(f"{name:22s}" + "".join(f"{v:16.4f}" for v in row.values()))
best = out["L_x + L_z (Prop. 1)"]
for name in ("(10), β=1", "(10), β=0"):
    assert out[name]["L_x + L_z"] < best["L_x + L_z"] - 0.05      # (10)'s optimum is not Prop. 1's
    assert out[name]["I_p(x;z)"] > best["I_p(x;z)"]               # it buys mutual information ...
    assert out[name]["KL(p_theta||q)"] > best["KL(p_theta||q)"]   # ... and puts more mass off the data

# %% [markdown]
# Even with perfect discriminators, the paper's practical objective does not have
# Proposition 1's optimum: the term it must leave out (it needs $q(x)$) is what
# holds the decoder's noise and the reverse KL in check. Dropping the ELBO's KL
# on the x-side ($\beta = 0$) moves the optimum further. This is a property of (10),
# measured here in the one world where everything is known; Part II measures
# what it does to real training.
#
# ## 7. The whole model, and the game it is trained by
#
# Part II trains neural networks with exactly the objective of section 5. Written
# out, the encoder and decoder ($\theta, \phi$) maximise the reparametrised bound (11),
#
# $$\mathcal L_{xz}(\theta,\phi;\psi,\psi') = \underbrace{\mathbb E_{x\sim q,\,\epsilon}\big[\log p_\theta(x|z_\epsilon) - f_\psi(x, z_\epsilon)\big] - \beta\,\mathbb E_q\mathrm{KL}(q_\phi(z|x)\|p(z))}_{\text{x-half (AS-VAE-r)}} + \underbrace{\mathbb E_{z\sim p,\,\epsilon}\big[\log q_\phi(z|x_\epsilon) - h_{\psi'}(x_\epsilon, z)\big]}_{\text{z-half (AS-VAE-g)}},$$
#
# with $z_\epsilon = \mu_\phi(x) + \sigma_\phi(x)\,\epsilon$ and $x_\epsilon = \mu_\theta(z) + \sigma_\theta(z)\,\epsilon$
# (the reparametrised draws of [KW14]; through a flow, chapter 5, the draw is then pushed
# through the flow), while the discriminators $\psi, \psi'$ maximise the logistic
# objectives (5) and (6). The weight $\beta$ is the uncertain reading of section 5: the
# library takes it as a setting (`kl_weight`), and chapter 6 trains both $\beta = 1$ and $\beta = 0$.
#
# **$x_\epsilon$ for binary pixels.** On MNIST the decoder is Bernoulli (each pixel
# intensity read as the probability that the pixel is on; chapter 7). A binary draw is
# not a differentiable function of $z$ and the noise, so it has no reparametrised
# $x_\epsilon$, and the paper does not say what it used. The library's choice, ours and
# not the paper's, is the decoder's mean image, the pixel probabilities
# $\sigma(\ell_\theta(z))$ for the decoder's logits $\ell_\theta(z)$
# (`BernoulliConditional.rsample`): the z-half then asks the encoder to recover $z$ from
# that image. A relaxed (Concrete) draw would be the alternative.
# The game (12) alternates the two: a step (or several) of the discriminators with
# the encoder and decoder fixed, then a step of the encoder and decoder with the
# discriminators fixed. The paper's typeset (12) was lost, and its sentence admits two
# readings of what the encoder and decoder ascend: (11) alone (reading A, shown here and
# measured in section 8) or (11) together with a stake in the discriminators' game
# (reading B, section 10). Both steps are written once, as the library's module
# `asvae_lib/objectives.py` (the cells marked `#@save objectives`): the losses that every
# model of Part II and III minimises, for one minibatch $x$. First the methods it knows: the
# VAE, ALI, the two halves of (11) alone or together, and the book's surrogate of section 9;
# and the two readings of (12).

# %%
#@save objectives
"""The objectives of the paper, as losses to minimise, for one minibatch ``x`` (chapter 4).

* ``"vae"``: the negative ELBO (1).
* ``"ali"``: ALI (3), one joint discriminator (the ``f`` network, fed ALI's pairs).
* ``"asvae-r"``, ``"asvae-g"``, ``"asvae"``: the x-half, the z-half, or both halves
  of the reparametrised cumulative bound (11), with the discriminators of (5)
  and (6). ``kl_weight`` is the weight of the ELBO's ``KL(q_phi(z|x) || p(z))`` on
  the x-side, which the paper's text leaves uncertain (1: the x-half is ``L_x``
  at the optimal ``f``; 0: the literal "log p_theta(x|z) - f") -- see chapter 4.
  ``rec_z_to_decoder=False`` stops the z-side reconstruction ``log q_phi(z|x_eps)``
  from training the decoder (an ablation of chapter 6).
* ``"asvae-pathwise"``: NOT the paper's objective, the book's own variant (chapter 4
  derives it). A surrogate whose gradient, at the optimal discriminators, is the
  exact gradient of the symmetric bound ``L_x + L_z`` (8)+(9): the marginal terms
  reach the networks through generated samples, with a third, ALI-type joint
  discriminator ``g`` for the decoder's side (:func:`pathwise_surrogate`).

The game (12) alternates :func:`discriminator_loss` (for psi, psi') and
:func:`generator_loss` (for theta, phi). The paper's typeset (12) was lost, and its
sentence reads two ways (``READINGS``; chapter 4 simulates both, chapter 6 trains both):

* reading ``"A"``: theta and phi ascend (11) only; the discriminators ascend (5), (6);
* reading ``"B"``, the saddle, as a GAN is written: theta and phi also play against the
  discriminators through the samples inside the pairs of (5) and (6), in the
  non-saturating form (swapped labels), with weight ``lam`` (:func:`fooling_loss`).
  At ``lam = 0`` reading B is reading A.

**One draw per network and input.** Each loss draws the samples it needs afresh, unless it is
given a :class:`StepDraws`: then every loss of one step that asks the encoder for the code of
the same batch (or the decoder for the data of the same codes) gets the same sample. The
discriminators' pairs of (5) and (6), the halves of (11) and reading B's fooling losses then
share four draws, ``z_eps ~ q_phi(z|x)``, ``x_eps ~ p_theta(x|z)`` and the codes and data of
those, instead of drawing up to fourteen. Each loss is the same estimate in expectation; the
draws of one step are no longer independent between the losses (the trainer's ``share_draws``).
"""
METHODS = ("vae", "ali", "asvae-r", "asvae-g", "asvae", "asvae-pathwise")
READINGS = ("A", "B")
SADDLE_METHODS = ("asvae-r", "asvae-g", "asvae")   # the methods of (11), which reading B applies to


# %% [markdown]
# Each method trains its own discriminators, each on its own pairs, the samplings of
# chapter 3: none for the VAE, ALI's one on (3), $f$ on (5), $h$ on (6), and the surrogate
# all three.

# %%
#@save objectives
from asvae_lib import pairs


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")
    return method


def check_reading(reading: str, method: str) -> str:
    if reading not in READINGS:
        raise ValueError(f"unknown reading {reading!r} of the game (12); choose one of {READINGS}")
    if reading == "B" and method not in SADDLE_METHODS:
        raise ValueError(f"reading 'B' of (12) is a game of (11): it applies to {SADDLE_METHODS}, not {method!r}")
    return reading


def _schemes(method: str):
    """(discriminator, pair sampler) couples a method trains."""
    return {"vae": [], "ali": [("f", pairs.ali_pairs)], "asvae-r": [("f", pairs.f_pairs)],
            "asvae-g": [("h", pairs.h_pairs)], "asvae": [("f", pairs.f_pairs), ("h", pairs.h_pairs)],
            "asvae-pathwise": [("f", pairs.f_pairs), ("h", pairs.h_pairs), ("g", pairs.ali_pairs)]}[method]


# %% [markdown]
# One step of the game asks the encoder and the decoder for many samples: the pairs of (5)
# and (6), the two halves of (11), reading B's losses. `StepDraws` lets all of them share one
# draw per network and input (the module's docstring above says what that changes); without
# it, each loss draws afresh.

# %%
#@save objectives
import torch


class StepDraws:
    """The samples of one step of the game, one per network and input, for every loss of the step.

    ``encode(v)`` is a draw of ``q_phi(z|v)``, ``decode(z)`` one of ``p_theta(x|z)``, and ``z`` the
    step's prior codes; asked again for the same tensor (the same object), each returns the same
    draw. The draws carry gradients: the discriminators' loss detaches its pairs, theta and phi's
    losses train through them. Draw it before the discriminators' step and use it for that step and
    the generator's step that follows (the encoder and decoder do not change in between)."""

    def __init__(self, model, x: torch.Tensor):
        self.model, self.z = model, model.sample_prior(len(x))
        self._codes, self._data = {}, {}          # id(input) -> (input, draw[, log-density])

    def encode_with_log_prob(self, v: torch.Tensor):
        """``(z, log q_phi(z|v))`` for ``z ~ q_phi(z|v)``, drawn once for ``v``."""
        if id(v) not in self._codes:
            self._codes[id(v)] = (v, *self.model.encoder.rsample_with_log_prob(v))
        return self._codes[id(v)][1:]

    def encode(self, v: torch.Tensor) -> torch.Tensor:
        return self.encode_with_log_prob(v)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``x ~ p_theta(x|z)``, drawn once for ``z``."""
        if id(z) not in self._data:
            self._data[id(z)] = (z, self.model.decoder.rsample(z))
        return self._data[id(z)][1]


def _pairs(scheme, model, x: torch.Tensor, draws: "StepDraws | None"):
    """A scheme's positive and negative pairs: from fresh draws, or from the step's ``draws``."""
    if draws is None:
        return scheme(x, model.sample_prior(len(x)), model.encoder.rsample, model.decoder.rsample)
    return scheme(x, draws.z, draws.encode, draws.decode)


# %% [markdown]
# **The discriminators' step.** Each discriminator ascends the logistic objective (4) of
# chapter 2 on its pairs, with the encoder and decoder held fixed (the pairs are detached):

# %%
#@save objectives
from asvae_lib.density_ratio import logistic_objective


def discriminator_loss(model, x: torch.Tensor, method: str, draws: StepDraws | None = None) -> dict:
    """Minus the objective (4) for each discriminator the method uses, on pairs drawn
    as (3), (5) or (6) with the encoder and decoder held fixed (fresh, or the step's ``draws``)."""
    losses = {}
    for name, scheme in _schemes(check_method(method)):
        with torch.set_grad_enabled(draws is not None and torch.is_grad_enabled()):   # the draws keep theirs
            pos, neg = _pairs(scheme, model, x, draws)
        pos, neg = (tuple(t.detach() for t in pair) for pair in (pos, neg))
        disc = getattr(model, name, None)
        if disc is None:
            raise ValueError(f"{method!r} needs a joint discriminator {name!r}: build the model with "
                             f"joint_discriminator=True (models.mlp_asvae)")
        losses[f"loss_{name}"] = -logistic_objective(disc(*pos), disc(*neg))
    return losses


# %% [markdown]
# **The encoder and decoder's step.** The VAE's loss is minus the one-sample ELBO (1),
# $\log p_\theta(x|z) + \log p(z) - \log q_\phi(z|x)$ at $z \sim q_\phi(z|x)$:

# %%
#@save objectives
from asvae_lib.gaussians import normal_log_prob


def prior_log_prob(z: torch.Tensor) -> torch.Tensor:
    """``log p(z)`` for the prior ``N(0, I)``."""
    return normal_log_prob(z, 0.0, torch.zeros_like(z))


def elbo(model, x: torch.Tensor) -> torch.Tensor:
    """(1), one-sample estimate: ``log p_theta(x|z) + log p(z) - log q_phi(z|x)``, ``z ~ q_phi(z|x)``."""
    z, log_q = model.encoder.rsample_with_log_prob(x)
    log_prior = prior_log_prob(z)
    return (model.decoder.log_prob(x, z) + log_prior - log_q).mean()


# %% [markdown]
# AS-VAE's are the two halves of (11) above, each a Monte Carlo mean. The x-half weighs the
# ELBO's KL by $\beta$ (`kl_weight`), estimated with the same sample as the reconstruction, so
# that it also works for an encoder with a flow (chapter 5); the z-half decodes prior codes
# and asks the encoder to recover them.

# %%
#@save objectives
def x_half(model, x: torch.Tensor, kl_weight: float = 1.0, draws: StepDraws | None = None) -> torch.Tensor:
    """``E_{x~q, eps}[log p_theta(x|z_eps) - f(x, z_eps)] - kl_weight * E KL(q_phi(z|x) || p(z))``.
    The KL is estimated with the same sample, ``log q_phi(z|x) - log p(z)``, which works with flows."""
    z, log_q = model.encoder.rsample_with_log_prob(x) if draws is None else draws.encode_with_log_prob(x)
    log_prior = prior_log_prob(z)
    value = model.decoder.log_prob(x, z) - model.f(x, z)
    if kl_weight:
        value = value - kl_weight * (log_q - log_prior)
    return value.mean()


def z_half(model, n: int, rec_z_to_decoder: bool = True, draws: StepDraws | None = None) -> torch.Tensor:
    """``E_{z~p, eps}[log q_phi(z|x_eps) - h(x_eps, z)]`` with ``x_eps`` the decoder's reparametrised draw.
    With ``rec_z_to_decoder=False`` the reconstruction term sees ``x_eps`` detached: it trains
    the encoder only, and the decoder is moved by the ``h``-term alone."""
    z = model.sample_prior(n) if draws is None else draws.z
    x = model.decoder.rsample(z) if draws is None else draws.decode(z)
    x_rec = x if rec_z_to_decoder else x.detach()
    return (model.encoder.log_prob(z, x_rec) - model.h(x, z)).mean()


# %% [markdown]
# The step's loss, by method: minus the ELBO, ALI's swapped-label loss (the encoder and
# decoder try to fool its discriminator), minus the book's surrogate (section 9), or minus
# (11); under reading B the methods of (11) add the fooling losses of section 10.

# %%
#@save objectives
def generator_loss(model, x: torch.Tensor, method: str, kl_weight: float = 1.0,
                   rec_z_to_decoder: bool = True, reading: str = "A", lam: float = 1.0,
                   draws: StepDraws | None = None) -> torch.Tensor:
    """The loss theta and phi minimise at one step of the game (12): minus (1), ALI's
    swapped-label loss, minus (11) (its x-half, z-half or both), or minus the book's
    pathwise surrogate. Under ``reading="B"`` the methods of (11) add ``lam`` times
    :func:`saddle_loss` (at ``lam = 0`` nothing is added, and no random number drawn).
    ``draws`` (:class:`StepDraws`, for the methods of (11)) shares the step's samples."""
    check_method(method)
    check_reading(reading, method)
    if method == "vae":
        return -elbo(model, x)
    if method == "asvae-pathwise":
        return -pathwise_surrogate(model, x)
    if method == "ali":
        # the encoder and decoder fool ALI's discriminator: swapped labels (non-saturating form)
        pos, neg = pairs.ali_pairs(x, model.sample_prior(len(x)), model.encoder.rsample, model.decoder.rsample)
        return fooling_loss(model.f, pos, neg)
    value = 0.0
    if method in ("asvae-r", "asvae"):
        value = value + x_half(model, x, kl_weight, draws)
    if method in ("asvae-g", "asvae"):
        value = value + z_half(model, len(x), rec_z_to_decoder, draws)
    loss = -value
    if reading == "B" and lam:
        loss = loss + lam * saddle_loss(model, x, method, draws)
    return loss


# %% [markdown]
# Training stops early on two reconstructions measured on held-out data: of $x$ through the
# encoder and of prior codes $z$ through the decoder, the two reconstruction terms of the
# symmetric bound (section 2).

# %%
#@save objectives
@torch.no_grad()
def reconstruction_losses(model, x: torch.Tensor) -> dict:
    """The validation losses early stopping watches: how badly x is reconstructed
    through the encoder (``-log p_theta(x|z)``, ``z ~ q_phi(z|x)``) and z through the
    decoder (``-log q_phi(z|x)``, ``x ~ p_theta(x|z)``), plus the squared error of x."""
    z = model.encoder.rsample(x)
    prior_z = model.sample_prior(len(x))
    return {"rec_x": -model.decoder.log_prob(x, z).mean().item(),
            "rec_z": -model.encoder.log_prob(prior_z, model.decoder.rsample(prior_z)).mean().item(),
            "mse_x": ((model.decoder.mean(z) - x) ** 2).sum(-1).mean().item()}


# %% [markdown]
# The trainer's `train_step` ([asvae_lib/trainer.py](../asvae_lib/trainer.py)) alternates the
# two steps on each minibatch, sharing one `StepDraws` between the first of each (abridged):
#
# ```python
# for i in range(self.config.disc_steps if method != "vae" else 0):
#     losses = objectives.discriminator_loss(m, x, method, draws if i == 0 else None)
#     self._apply(sum(losses.values()), self.opt_disc, m.discriminator_parameters(), ...)
# for i in range(self.config.gen_steps):
#     loss = objectives.generator_loss(m, x, method, self.config.kl_weight, self.config.rec_z_to_decoder,
#                                      self.config.reading, self.config.lam, draws if i == 0 else None)
#     self._apply(loss, self.opt_gen, m.generator_parameters(), ...)
# ```
#
# Section 5's `WorldAsModel` gives the Gaussian world the interface these losses expect, so
# the cells below run `generator_loss` itself, not a copy of it, on a model whose exact
# gradients we know.
#
# ## 8. Where the gradients of (11) go
#
# Look at where each discriminator is evaluated in (11):
#
# * $f_\psi(x, z_\epsilon)$ is evaluated at **real** $x$; only $z_\epsilon$ depends on the
#   parameters, and only on $\phi$. Its gradient reaches the **encoder** alone.
#   But the quantity it stands for, $\mathbb E_q f^* = \mathrm{KL}(q(x)\|p_\theta(x))$,
#   depends on the **decoder** alone.
# * $h_{\psi'}(x_\epsilon, z)$ is evaluated at **prior** $z$; its gradient reaches the
#   **decoder** alone, while $\mathrm{KL}(p(z)\|q_\phi(z))$ depends on the encoder alone.
#
# At the optimal discriminators the two terms give no gradient at all ($f^*$ ignores
# $z$, $h^*$ ignores $x$): that much is true by construction and proves nothing about
# training. What can be measured is how far the gradient (11) actually follows is from
# the gradient it should follow, for discriminators trained to several levels. We
# train quadratic discriminators (well specified here, chapter 2) for 10, 30, 100 and
# 300 steps on the pairs of (5) and (6) of a fixed encoder and decoder, and compare
# the Monte Carlo gradient of (11), computed by the library's `generator_loss`, with
# two exact gradients: that of (10) at the optimal discriminators (what (11) estimates)
# and that of $\mathcal L_x + \mathcal L_z$ (what Proposition 1 is about).

# %%
probe = GaussianWorld.random(m, C_general, K=1, seed=4)
with torch.no_grad():
    probe.log_s2.fill_(1.0)        # a model wider than the data in every direction (why: section 9)
frozen = copy.deepcopy(probe).requires_grad_(False)
params = probe.decoder_parameters() + probe.encoder_parameters()
flat = lambda gs: torch.cat([gr.flatten() for gr in gs])
rel_error = lambda a, b: ((a - b).norm() / b.norm()).item()
exact_sym = flat(torch.autograd.grad(probe.L_x() + probe.L_z(), params))
exact_10 = flat(torch.autograd.grad(sum(probe.cumulative_bound(1.0)), params))


def mc_gradients(f, h, g=None, seed=7, n=N_MC):
    """Monte Carlo gradients of (11) (``generator_loss`` of section 7, kl_weight 1) and of the
    book's pathwise surrogate (section 9 derives it; here the library's), with the
    discriminators f, h, g held fixed."""
    model = WorldAsModel(probe, f, h, g, generator=torch.Generator().manual_seed(seed))
    x = probe.sample_data(n, model.generator)
    plug_in = flat(torch.autograd.grad(-generator_loss(model, x, "asvae"), params))
    pathwise = flat(torch.autograd.grad(objectives.pathwise_surrogate(model, x), params)) if g is not None else None
    return plug_in, pathwise


g_pairs = torch.Generator().manual_seed(5)
disc_pairs = {"f": frozen.f_pairs(N_DISC, g_pairs), "h": frozen.h_pairs(N_DISC, g_pairs),
              "g": frozen.ali_pairs(N_DISC, g_pairs)}
levels, gradient_rows = pick(quick=(10, 30, 100, 300), full=(10, 30, 100, 300, 3000), smoke=(10, 30, 100, 300)), []
for steps in levels:
    trained = {}
    for name, (pos, neg) in disc_pairs.items():
        d = QuadraticDiscriminator(4)
        objective = train_discriminator(d, pos, neg, steps=steps, batch_size=4000, lr=0.1, progress=False, anneal=True)
        trained[name] = d.requires_grad_(False)
    plug_in, pathwise = mc_gradients(trained["f"], trained["h"], trained["g"])
    gradient_rows.append({"disc. steps": steps, "(11) vs grad (10)": rel_error(plug_in, exact_10),
                          "(11) vs grad L_x+L_z": rel_error(plug_in, exact_sym),
                          "pathwise vs grad L_x+L_z": rel_error(pathwise, exact_sym)})
plug_in, pathwise = mc_gradients(frozen.f_star, frozen.h_star, frozen.ali_star)
gradient_rows.append({"disc. steps": "optimal", "(11) vs grad (10)": rel_error(plug_in, exact_10),
                      "(11) vs grad L_x+L_z": rel_error(plug_in, exact_sym),
                      "pathwise vs grad L_x+L_z": rel_error(pathwise, exact_sym)})
print("relative error ||estimate - exact|| / ||exact|| of the gradient over (theta, phi)")
print("".join(f"{c:>27s}" for c in gradient_rows[0]))
for r in gradient_rows:
    print("".join(f"{v:>27}" if isinstance(v, str) else f"{v:>27.4f}" if isinstance(v, float) else f"{v:>27d}"
                  for v in r.values()))

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.6))
xs = list(range(len(gradient_rows)))
for col, style in (("(11) vs grad (10)", "C1-o"), ("(11) vs grad L_x+L_z", "C3-s"), ("pathwise vs grad L_x+L_z", "C0-^")):
    ax.plot(xs, [r[col] for r in gradient_rows], style, label=col)
ax.set_xticks(xs, [str(r["disc. steps"]) for r in gradient_rows])
ax.set_yscale("log"); ax.set_xlabel("discriminator training steps"); ax.set_ylabel("relative gradient error")
ax.set_title("gradient of each estimator against the exact gradient")
ax.legend(fontsize=8); plt.tight_layout(); plt.show()

# %% [markdown]
# The Monte Carlo error of these gradients, with $10^5$ samples, is a fraction of a
# percent (the pathwise row at the optimum shows it), so the errors above are bias.
# What can fail here: if (11) followed the bound's gradient, its error would shrink
# as the discriminators improve, as the pathwise surrogate's does. It does not: with
# every discriminator, optimal ones included, (11)'s gradient stays about as far from
# the gradient of (10), the value it estimates, and further still from that of
# $\mathcal L_x + \mathcal L_z$. The size of the error is this one point's: section 10
# measures it over many random points.

# %%
plug_rows, optimum = gradient_rows[:-1], gradient_rows[-1]
# (11) is biased at every level, and better discriminators do not remove the bias
assert all(r["(11) vs grad (10)"] > 0.05 for r in gradient_rows)
assert optimum["(11) vs grad (10)"] > 0.5 * max(r["(11) vs grad (10)"] for r in plug_rows)
assert all(r["(11) vs grad L_x+L_z"] > 0.25 for r in gradient_rows)
print(f"(11): {min(r['(11) vs grad (10)'] for r in gradient_rows):.3f}-{max(r['(11) vs grad (10)'] for r in gradient_rows):.3f} "
      f"off the gradient of (10) at every level; "
      f"{min(r['(11) vs grad L_x+L_z'] for r in gradient_rows):.3f}-{max(r['(11) vs grad L_x+L_z'] for r in gradient_rows):.3f} "
      "off that of L_x + L_z")

# %% [markdown]
# ## 9. A surrogate with the right gradient (the book's variant, not the paper's)
#
# The marginal terms can reach the right network after all, through *generated*
# samples. Write $\bar f$ for a discriminator whose parameters are held fixed while
# its inputs still carry gradients, and $x_\epsilon = G_\theta(z, \epsilon)$, $z\sim p(z)$,
# for a reparametrised decoder draw. For any fixed function $a(x)$,
# $\int \nabla_\theta p_\theta(x)\,a(x)\,dx = \nabla_\theta \mathbb E_{z,\epsilon}[a(G_\theta(z,\epsilon))]$ (the
# reparametrisation trick). Then, with $f^* = \log q - \log p_\theta$:
#
# * $\nabla_\theta \mathrm{KL}(q\|p_\theta) = -\int q\,\nabla_\theta \log p_\theta = -\int \frac{q}{p_\theta}\nabla_\theta p_\theta = -\nabla_\theta\mathbb E\big[e^{\bar f^*(x_\epsilon)}\big]$;
# * $\nabla_\theta \mathrm{KL}(p_\theta\|q) = \int \nabla_\theta p_\theta\,(\log p_\theta - \log q) + \int p_\theta \nabla_\theta\log p_\theta = -\nabla_\theta \mathbb E\big[\bar f^*(x_\epsilon)\big]$, since $\int p_\theta\nabla_\theta \log p_\theta = \nabla_\theta \int p_\theta = 0$;
# * the same two steps on the code side, with $h^* = \log p(z) - \log q_\phi(z)$ and
#   $z_\epsilon$ an encoder draw of real data: $\nabla_\phi\mathbb E_p \log q_\phi(z) = \nabla_\phi \mathbb E[e^{\bar h^*(z_\epsilon)}]$ and
#   $\nabla_\phi \mathrm{KL}(q_\phi(z)\|p) = -\nabla_\phi\mathbb E[\bar h^*(z_\epsilon)]$;
# * and on the joint: with ALI's optimal discriminator $g^* = \log q_\phi(x,z) - \log p_\theta(x,z)$,
#   $\nabla_\theta \mathrm{KL}(p_\theta(x,z)\|q_\phi(x,z)) = -\nabla_\theta\mathbb E[\bar g^*(x_\epsilon, z)]$, and its
#   $\phi$-gradient is $-\mathbb E_{p_\theta(x,z)}\nabla_\phi\log q_\phi(z|x)$ (the data density does not depend on $\phi$).
#
# Put together with $\mathcal L_x = \mathcal L_{\rm VAE} - \mathrm{KL}(q\|p_\theta)$ and
# $\mathcal L_z = \mathbb E_p\log q_\phi(z) - \mathrm{KL}(p_\theta(x,z)\|q_\phi(x,z))$, the surrogate
#
# $$\tilde{\mathcal L} = \mathcal L_{\rm VAE} + \mathbb E_p \log q_\phi\big(z\,\big|\,\mathrm{sg}(x_\epsilon)\big) + \mathbb E\,\bar g(x_\epsilon, z) + \mathbb E\, e^{\bar f(x_\epsilon)} + \mathbb E\, e^{\bar h(z_\epsilon)}$$
#
# ($\mathrm{sg}$: stop the gradient) has, at the optimal discriminators, exactly the
# gradient of $\mathcal L_x + \mathcal L_z$ in both $\theta$ and $\phi$. It needs a third
# discriminator, on the pairs (3) of ALI [Dum17]. This is the book's own construction, trained in
# chapter 6 under the name `asvae-pathwise`; it is not the paper's objective.
#
# Two of its terms are exponentials of a discriminator's logit, and a trained
# discriminator's occasional large logit would blow them up (the end of this section
# measures why). The library continues $e^t$ by its tangent line above $t = 4$:

# %%
#@save objectives
import math

EXP_CLIP = 4.0   # exp(f) is continued linearly above exp(4) = 55 (see clipped_exp)


def clipped_exp(t: torch.Tensor, clip: float = EXP_CLIP) -> torch.Tensor:
    """``exp(t)`` up to ``t = clip``, continued by its tangent line above it, so that a
    discriminator's occasional large logit cannot blow up the surrogate's gradient."""
    return torch.where(t <= clip, t.clamp(max=clip).exp(), math.exp(clip) * (1 + t - clip))


# %% [markdown]
# The surrogate $\tilde{\mathcal L}$, line by line as above; the frozen discriminators are the
# model's `f`, `h` and `g`, whose parameters this loss does not step:

# %%
#@save objectives
def pathwise_surrogate(model, x: torch.Tensor, clip: float = EXP_CLIP) -> torch.Tensor:
    """The book's gradient-correct surrogate of ``L_x + L_z`` (chapter 4; not the paper's (11)).

    With the discriminators frozen (their parameters are not stepped by this loss) and
    ``x_eps``, ``z_eps`` reparametrised draws of the decoder and the encoder::

        ELBO(x)                                        # (1): gradient of L_VAE
        + E_p log q_phi(z | stopgrad x_eps)             # the phi-part of -KL(p_theta(x,z) || q_phi(x,z))
        + E g(x_eps, z)                                 # its theta-part: g* = log q_phi(x,z) - log p_theta(x,z)
        + E exp f(x_eps, .)                             # -KL(q(x) || p_theta(x)) in theta, f* = log q/p_theta
        + E exp h(., z_eps)                             # E_p log q_phi(z) in phi, h* = log p(z)/q_phi(z)

    Each line's gradient equals the exact gradient of the term it stands for when the
    discriminator is optimal (``grad E_q log p_theta = grad E exp f*(x_eps)`` because
    ``q / p_theta = exp f*``; likewise for ``h``; and a reparametrised joint's KL has the
    pathwise gradient of minus its log ratio). The exponentials use :func:`clipped_exp`.
    """
    n = len(x)
    z = model.sample_prior(n)
    x_fake = model.decoder.rsample(z)                  # x_eps, carries the decoder's gradient
    z_real = model.encoder.rsample(x)                  # z_eps, carries the encoder's gradient
    value = elbo(model, x)
    value = value + model.encoder.log_prob(z, x_fake.detach()).mean()
    value = value + model.g(x_fake, z).mean()
    value = value + clipped_exp(model.f(x_fake, model.encoder.rsample(x_fake).detach()), clip).mean()
    value = value + clipped_exp(model.h(model.decoder.rsample(z_real).detach(), z_real), clip).mean()
    return value


# %% [markdown]
# Each line of the lemma, checked with the closed-form optimal discriminators of a
# frozen copy of the world against the closed-form gradients (relative error over
# all parameters the term depends on):

# %%
def lemma_rows(world, seed, n=N_MC):
    """Relative error of each pathwise identity of the lemma in ``world``."""
    fz = copy.deepcopy(world).requires_grad_(False)
    g = torch.Generator().manual_seed(seed)
    theta, phi = world.decoder_parameters(), world.encoder_parameters()
    z = world.sample_prior(n, g)
    x_fake = world.decode(z, g)
    z_real = world.encode(world.sample_data(n, g), g)
    grad = lambda value, ps: flat(torch.autograd.grad(value, ps, retain_graph=True))
    return {
        "KL(q||p_theta) = -E exp f(x_eps)": rel_error(grad(-fz.f_star(x_fake).exp().mean(), theta), grad(kl(world.data(), world.model()), theta)),
        "KL(p_theta||q) = -E f(x_eps)": rel_error(grad(-fz.f_star(x_fake).mean(), theta), grad(kl(world.model(), world.data()), theta)),
        "KL(p||q_phi) = -E exp h(z_eps)": rel_error(grad(-fz.h_star(None, z_real).exp().mean(), phi), grad(kl(world.prior(), world.aggregated_posterior()), phi)),
        "KL(q_phi||p) = -E h(z_eps)": rel_error(grad(-fz.h_star(None, z_real).mean(), phi), grad(kl(world.aggregated_posterior(), world.prior()), phi)),
        "KL(p_joint||q_joint) = -E g(x_eps,z)": rel_error(grad(-fz.ali_star(x_fake, z).mean(), theta), grad(kl(world.decoder_joint(), world.encoder_joint()), theta)),
    }


rows = lemma_rows(probe, seed=11)
for name, err in rows.items():
    print(f"{name:40s} relative error {err:.4f}")
print(f"{'whole surrogate L̃ vs grad(L_x + L_z)':40s} relative error {optimum['pathwise vs grad L_x+L_z']:.4f}")
assert all(err < 0.03 for err in rows.values()), rows
assert optimum["pathwise vs grad L_x+L_z"] < 0.03

# %% [markdown]
# All within 3% (the Monte Carlo error with $10^5$ samples), and so is the whole
# surrogate, computed by the library function that chapter 6 trains. The earlier
# table showed the other half of the story: with trained discriminators the
# surrogate's gradient approaches the exact one as they improve (38% off after 10
# discriminator steps, well under 3% after 300 in the stored run), where (11)'s does
# not move.
#
# **The catch: heavy tails.** The two exponential rows are importance weights,
# $e^{f^*} = q/p_\theta$ averaged under $p_\theta$. Their variance is finite only when
# $\int q^2/p_\theta < \infty$; for Gaussians, when the model's covariance exceeds half
# the data's in every direction (the probe above was made wide for that reason).
# A model narrower than the data, which is where training starts on many-mode data,
# gives an estimator that is right on average and useless in practice. Five seeds
# of the first row in each case:

# %%
narrow = GaussianWorld.random(m, C_general, K=1, seed=4)
with torch.no_grad():
    narrow.log_s2.fill_(-2.0)
for name, w in (("wide model", probe), ("narrow model", narrow)):
    margin = torch.linalg.eigvalsh(w.model().cov - w.C / 2).min().item()
    errs = [lemma_rows(w, seed)["KL(q||p_theta) = -E exp f(x_eps)"] for seed in range(5)]
    print(f"{name:13s} min eigenvalue of Cov p_theta - C/2: {margin:6.2f}   "
          f"relative error over 5 seeds: {min(errs):.3f} - {max(errs):.3f}")
    if name == "wide model":
        wide_errs = errs
    else:
        narrow_errs = errs
assert max(wide_errs) < 0.03 and max(narrow_errs) > 5 * max(wide_errs)

# %% [markdown]
# That is why `pathwise_surrogate` clips the exponential (`clipped_exp` above: $e^t$ up to
# $t = 4$, its tangent line above), trading bias for variance. Chapter 6 measures
# whether the corrected direction helps a neural AS-VAE in practice.

# %% [markdown]
# ## 10. The game (12), played under both of its readings
#
# The paper's typeset (12) was lost. The sentence before it, "the cumulative variational
# in (11), which we maximize wrt $\psi$ and $\psi'$ as in (5) and (6) [...] Hence, we write
# (12)", reads two ways, and the book measures both:
#
# * **Reading A** (alternating objectives): $\theta, \phi$ ascend (11) only; $\psi, \psi'$
#   ascend (5) and (6). This is the game of sections 7 and 8.
# * **Reading B** (one saddle objective, the way a GAN is written): $\theta, \phi$ also play
#   against the discriminators, through the samples inside the pairs of (5) and (6). In
#   the non-saturating form (swapped labels, the form ALI's encoder and decoder are
#   trained in), $\theta, \phi$ minimise
#
# $$-\mathcal L_{xz} + \lambda\Big[-\mathbb E_{\rm neg}\log\sigma(f_\psi) - \mathbb E_{\rm pos}\log\big(1-\sigma(f_\psi)\big)\Big]_{(5)} + \lambda\Big[-\mathbb E_{\rm neg}\log\sigma(h_{\psi'}) - \mathbb E_{\rm pos}\log\big(1-\sigma(h_{\psi'})\big)\Big]_{(6)}$$
#
#   (`generator_loss(..., reading="B", lam=λ)` of section 7). $\lambda = 1$ is the plain
#   saddle, $\lambda = 0$ is reading A.
#
# Each bracket is the discriminator's loss, minus (4), with the labels swapped: the encoder
# and decoder are rewarded where the discriminator mistakes negatives for positives and
# positives for negatives. Its gradient reaches them through the samples inside the pairs.

# %%
#@save objectives
def fooling_loss(disc, pos: tuple, neg: tuple) -> torch.Tensor:
    """The non-saturating loss of the players a discriminator judges: minus (4) with the
    labels swapped, ``-(mean log sigma(d(neg)) + mean log(1 - sigma(d(pos))))``. Its gradient
    reaches the encoder and decoder through the samples inside ``pos`` and ``neg``."""
    logit_pos = disc(*pos)          # positives first: the order of dropout draws ALI's loss has always had
    return -logistic_objective(disc(*neg), logit_pos)


def saddle_loss(model, x: torch.Tensor, method: str, draws: StepDraws | None = None) -> torch.Tensor:
    """Reading B's extra loss for theta and phi: :func:`fooling_loss` of each discriminator the
    method uses, on fresh pairs (5) and/or (6). The decoder is reached through ``x_eps`` in
    f's negatives, the encoder through the encoded data in h's negatives (and both through
    the other samples of the pairs)."""
    loss = 0.0
    for name, scheme in _schemes(method):
        loss = loss + fooling_loss(getattr(model, name), *_pairs(scheme, model, x, draws))
    return loss


# %% [markdown]
# **What each reading follows at the optimal discriminators.** Hold the discriminators'
# parameters fixed at $f^*$, $h^*$. Under reading A the plug-in terms give no gradient
# (section 8), so (11) ascends only
#
# $$R(\theta,\phi) = \mathbb E_{q_\phi(x,z)}\log p_\theta(x|z) - \beta\,\mathbb E_q\mathrm{KL}(q_\phi(z|x)\|p(z)) + \mathbb E_{p_\theta(x,z)}\log q_\phi(z|x)$$
#
# nothing in it holds the marginals $p_\theta(x)$ and $q_\phi(z)$ in place. In closed form:

# %%
#@save gaussian_world
@add_to_class(GaussianWorld)
def reconstructions(self, kl_weight: float = 1.0) -> torch.Tensor:
    """``E_q[log p_theta(x|z)] - kl_weight * E_q KL(q_phi(z|x)||p(z)) + E_p[log q_phi(z|x)]``:
    the objective whose gradient (11) follows at ``f*``, ``h*`` (reading A). The plug-in terms
    give no gradient there: ``f*`` ignores z and meets real x, ``h*`` ignores x and meets prior z."""
    return self.reconstruction_x() - kl_weight * self.encoder_kl() + self.reconstruction_z()


# %% [markdown]
# Under reading B, $f$'s negatives carry $\theta$ through
# $x_\epsilon = G_\theta(z', \epsilon)$, and $\sigma(f^*) = q/(q + p_\theta)$, so the bracket (5)
# has the $\theta$-gradient $\nabla_\theta \mathbb E_{p_\theta}\big[\log\frac{q + \bar p_\theta}{q}\big]$
# ($\bar p_\theta$: held fixed, the reparametrisation trick for a fixed function, as in
# section 9; $f$'s positives are real data with codes, and $f^*$ ignores codes). With the
# two steps of section 9's lemma,
# $\nabla_\theta\mathrm{KL}(p_\theta\|q) = \nabla_\theta\mathbb E_{p_\theta}\big[\log\frac{\bar p_\theta}{q}\big]$ and
# $\nabla_\theta\mathrm{JSD}(p_\theta, q) = \tfrac12\nabla_\theta\mathbb E_{p_\theta}\big[\log\frac{2\bar p_\theta}{\bar p_\theta + q}\big]$
# (the terms through the mixture $m = (p_\theta + q)/2$ sum to $-\tfrac12\int\nabla_\theta p_\theta = 0$). Subtracting,
#
# $$\nabla_\theta\,\text{bracket (5)} = \nabla_\theta\big[\mathrm{KL}(p_\theta(x)\|q(x)) - 2\,\mathrm{JSD}(p_\theta(x), q(x))\big],$$
#
# the generator gradient of a non-saturating GAN [AB17]. On the code side $h$'s negatives
# carry $\phi$ through encoded data, and the same steps give the encoder
# $\mathrm{KL}(q_\phi(z)\|p(z)) - 2\,\mathrm{JSD}(q_\phi(z), p(z))$. So reading B ascends
#
# $$B_\lambda(\theta,\phi) = R(\theta,\phi) - \lambda\big[D(p_\theta(x), q(x)) + D(q_\phi(z), p(z))\big],\qquad D(a, b) = \mathrm{KL}(a\|b) - 2\,\mathrm{JSD}(a, b)$$
#
# (the JSDs have no closed form and are computed by quadrature, chapter 1's `jsd`):

# %%
#@save gaussian_world
from asvae_lib.gaussians import jsd, kl


@add_to_class(GaussianWorld)
def saddle_divergences(self) -> tuple:
    """``KL(p_theta(x)||q(x)) - 2 JSD(p_theta(x), q(x))`` and ``KL(q_phi(z)||p(z)) - 2 JSD(q_phi(z), p(z))``:
    at the optimal discriminators, the decoder descends the first and the encoder the second
    under reading B's fooling losses (the JSDs by quadrature, :func:`gaussians.jsd`)."""
    p_x, q_z = self.model(), self.aggregated_posterior()
    return (kl(p_x, self.data()) - 2 * jsd(p_x, self.data()),
            kl(q_z, self.prior()) - 2 * jsd(q_z, self.prior()))


@add_to_class(GaussianWorld)
def reading_b_objective(self, lam: float = 1.0, kl_weight: float = 1.0) -> torch.Tensor:
    """What reading B ascends at the optimal discriminators: :meth:`reconstructions`
    minus ``lam`` times both :meth:`saddle_divergences`."""
    d_x, d_z = self.saddle_divergences()
    return self.reconstructions(kl_weight) - lam * (d_x + d_z)


# %% [markdown]
# Both $D$ terms have zero gradient where the marginals match,
# and so do (10)'s marginal KLs: there the gradients of A, B and (10) are all $\nabla R$.
# Away from that set none of the three agree, and neither reading follows (10) or
# $\mathcal L_x + \mathcal L_z$; what B adds is a force on each marginal applied to the network
# that owns it. The derivation, checked at three points of the world: the Monte Carlo
# gradient of the library's generator loss (at $f^*$, $h^*$, $10^5$ draws) against $\nabla R$
# and $\nabla B_1$ in closed form.

# %%
def random_point(seed):
    """A random encoder and decoder of the section 4 world, with a random decoder noise."""
    w = GaussianWorld.random(m, C_general, K=1, seed=seed)
    with torch.no_grad():
        w.log_s2.uniform_(-1.0, 1.0, generator=torch.Generator().manual_seed(1000 + seed))
    return w


def reading_gradient(w, reading, seed=0, n=N_MC):
    """The Monte Carlo gradient of the library's generator loss under ``reading`` (lam 1) at f*, h*."""
    fz = copy.deepcopy(w).requires_grad_(False)
    model = WorldAsModel(w, fz.f_star, fz.h_star, generator=torch.Generator().manual_seed(seed))
    x = w.sample_data(n, model.generator)
    ps = w.decoder_parameters() + w.encoder_parameters()
    return flat(torch.autograd.grad(-generator_loss(model, x, "asvae", reading=reading, lam=1.0), ps))


def exact_gradient(w, objective):
    return flat(torch.autograd.grad(objective(w), w.decoder_parameters() + w.encoder_parameters()))


derivation = []
for seed in range(3):
    w = random_point(seed)
    derivation.append({"point": seed,
                       "A vs grad R": rel_error(reading_gradient(w, "A"), exact_gradient(w, lambda v: v.reconstructions())),
                       "B vs grad B_1": rel_error(reading_gradient(w, "B"), exact_gradient(w, lambda v: v.reading_b_objective(1.0))),
                       "B vs grad R": rel_error(reading_gradient(w, "B"), exact_gradient(w, lambda v: v.reconstructions()))})
    print("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in derivation[-1].items()))
assert all(r["A vs grad R"] < 0.03 and r["B vs grad B_1"] < 0.03 for r in derivation)
assert all(r["B vs grad R"] > 0.1 for r in derivation)     # B's extra force is not noise

# %% [markdown]
# Within Monte Carlo error at every point, and B's gradient is far from A's. Next, how far
# each reading's gradient is from the gradients of (10) and of $\mathcal L_x + \mathcal L_z$, not at
# one point (section 8 probed one) but over many random points of the same world.

# %%
N_POINTS = pick(quick=20, full=200, smoke=5)
spread = {k: [] for k in ("A vs grad (10)", "B vs grad (10)", "A vs grad L_x+L_z", "B vs grad L_x+L_z")}
for seed in range(N_POINTS):
    w = random_point(100 + seed)
    g10 = exact_gradient(w, lambda v: sum(v.cumulative_bound(1.0)))
    gsym = exact_gradient(w, lambda v: v.L_x() + v.L_z())
    for reading in ("A", "B"):
        grad = reading_gradient(w, reading, seed=seed)
        spread[f"{reading} vs grad (10)"].append(rel_error(grad, g10))
        spread[f"{reading} vs grad L_x+L_z"].append(rel_error(grad, gsym))
spread = {k: torch.tensor(v) for k, v in spread.items()}
print(f"relative gradient error over {N_POINTS} random points (f*, h*; 10^5 draws each)")
for k, v in spread.items():
    print(f"{k:20s} median {v.median():.3f}   range {v.min():.3f} - {v.max():.3f}")
b_closer = (spread["B vs grad (10)"] < spread["A vs grad (10)"]).float().mean().item()
print(f"B closer than A to grad (10) at {b_closer:.0%} of the points")
fig, ax = plt.subplots(figsize=(7, 3.2))
ax.boxplot(list(spread.values()), whis=(0, 100))
ax.set_xticks(range(1, len(spread) + 1), list(spread), fontsize=8)
ax.set_ylabel("relative gradient error"); ax.set_title(f"{N_POINTS} random points of the world, optimal discriminators")
plt.tight_layout(); plt.show()
assert spread["A vs grad (10)"].median() > 0.05 and spread["B vs grad (10)"].median() > 0.05

# %% [markdown]
# Neither reading's gradient is the bound's: both are tens of percent off the gradient of
# (10) and of $\mathcal L_x + \mathcal L_z$ at a typical point (the range shows how much this
# depends on the point; section 8's single probe sits low in it). Gradients at single
# points do not say where a game goes, though. So we play it: from section 3's start on
# the PPCA-shaped data, Adam on $\theta, \phi$ with the library's generator loss under each
# reading, with discriminators that are (i) the closed-form optima of the current
# encoder and decoder, recomputed at every step, or (ii) quadratic discriminators
# (well specified here) trained a few Adam steps per step of the game and kept from step
# to step, as in a trained model (`play`, below). Beside them, the closed-form
# ascent of (10), and the targets: Proposition 1's optimum (maximum-likelihood PPCA with
# its exact posterior, section 3) and (10)'s optimum (section 6). Proposition 1's two KLs
# are zero, below the logarithmic axes.
#
# At each step of the game the discriminators are either recomputed in closed form from a
# frozen copy of the world, or trained a few steps on fresh pairs of (5) and (6) with
# `discriminator_loss`, keeping their weights:

# %%
#@save gaussian_world
import copy

from asvae_lib import objectives


def _optimal_discriminators(world: GaussianWorld):
    """``f*``, ``h*`` (7) of the current encoder and decoder, on a frozen copy of the world."""
    frozen = copy.deepcopy(world).requires_grad_(False)
    return frozen.f_star, frozen.h_star


def _trained_discriminators(world: GaussianWorld, disc: dict, opt_disc, n: int, disc_steps: int, g):
    """``disc_steps`` Adam steps of the discriminators ``disc["f"]``, ``disc["h"]`` on ``n`` fresh
    pairs (5), (6) each (``objectives.discriminator_loss``); returns them frozen."""
    model = WorldAsModel(world, disc["f"], disc["h"], generator=g)
    for _ in range(disc_steps):
        loss = sum(objectives.discriminator_loss(model, world.sample_data(n, g), "asvae").values())
        opt_disc.zero_grad()
        loss.backward()
        opt_disc.step()
    return tuple(d.requires_grad_(False) for d in disc.values())


# %% [markdown]
# The game itself: Adam on $\theta, \phi$ with `generator_loss` under the reading asked for,
# one step per step of the discriminators.

# %%
#@save gaussian_world
from asvae_lib import objectives
from asvae_lib.density_ratio import QuadraticDiscriminator


def play(world: GaussianWorld, reading: str = "A", lam: float = 1.0, discriminators: str = "optimal",
         steps: int = 3000, lr: float = 0.01, n: int = 4096, disc_steps: int = 5, disc_lr: float = 0.05,
         seed: int = 0, on_step=None) -> GaussianWorld:
    """The game (12) in the Gaussian world, with the library's losses.

    At every step theta and phi take one Adam step on ``objectives.generator_loss``
    (method ``"asvae"``, reading ``"A"`` or ``"B"`` with weight ``lam``), on ``n`` fresh draws.
    The discriminators are either ``"optimal"``, the closed-form ``f*``, ``h*`` (7) of the
    current encoder and decoder, or ``"quadratic"``: two :class:`QuadraticDiscriminator`
    (well specified here) that take ``disc_steps`` Adam steps on the pairs (5), (6) of
    ``objectives.discriminator_loss`` before each step of the encoder and decoder, and
    keep their weights from step to step, as in a trained model. ``on_step(step, world)``
    is called before every step and at the end. Returns the world, trained in place.
    """
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(world.parameters(), lr=lr)
    if discriminators == "quadratic":
        disc = {"f": QuadraticDiscriminator(world.D + world.K), "h": QuadraticDiscriminator(world.D + world.K)}
        opt_disc = torch.optim.Adam([p for d in disc.values() for p in d.parameters()], lr=disc_lr)
    elif discriminators != "optimal":
        raise ValueError(f"discriminators must be 'optimal' or 'quadratic', not {discriminators!r}")
    for step in range(steps):
        if on_step is not None:
            on_step(step, world)
        if discriminators == "optimal":
            f, h = _optimal_discriminators(world)
        else:
            f, h = _trained_discriminators(world, disc, opt_disc, n, disc_steps, g)
        model = WorldAsModel(world, f, h, generator=g)
        loss = objectives.generator_loss(model, world.sample_data(n, g), "asvae", reading=reading, lam=lam)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if discriminators == "quadratic":
            for d in disc.values():
                d.requires_grad_(True)
    if on_step is not None:
        on_step(steps, world)
    return world


# %%
GAME = pick(quick={"steps": 1000, "lr": 0.02, "n": 1024, "disc_steps": 2},
            full={"steps": 6000, "lr": 0.01, "n": 4096, "disc_steps": 5},
            smoke={"steps": 40, "lr": 0.02, "n": 256, "disc_steps": 2})


def game_state(w):
    """The quantities the figure follows."""
    with torch.no_grad():
        return {"|W|": w.W.norm().item(), "encoder variance": w.log_S.exp().mean().item(),
                "KL(q(x)||p_theta(x))": kl(w.data(), w.model()).item(),
                "KL(p(z)||q_phi(z))": kl(w.prior(), w.aggregated_posterior()).item(),
                "L_x + L_z": (w.L_x() + w.L_z()).item()}


every = max(GAME["steps"] // 100, 1)
paths = {}
for reading in ("A", "B"):
    for disc in ("optimal", "quadratic"):
        path = paths[f"{reading}, {disc} discriminators"] = []
        play(GaussianWorld.random(m, C_ppca, K=1, seed=1), reading, 1.0, disc, **GAME, seed=3,
             on_step=lambda step, w, path=path: path.append((step, game_state(w))) if step % every == 0 else None)
path = paths["ascent of (10), closed form"] = []
ascend(GaussianWorld.random(m, C_ppca, K=1, seed=1), lambda v: sum(v.cumulative_bound(1.0)), steps=GAME["steps"],
       lr=GAME["lr"], on_step=lambda step, w: path.append((step, game_state(w))) if step % every == 0 else None)

W_ml, s2_ml = ppca_maximum_likelihood(C_ppca, K=1)
prop1 = GaussianWorld(m, C_ppca, W_ml, m, s2_ml, *exact_posterior(W_ml, m, s2_ml)[:2],
                      torch.diagonal(exact_posterior(W_ml, m, s2_ml)[2]))
opt10 = GaussianWorld.random(m, C_ppca, K=1, seed=1)
maximise(opt10, lambda v: sum(v.cumulative_bound(1.0)))
targets = {"Prop. 1 optimum (ML PPCA)": game_state(prop1), "(10)'s optimum": game_state(opt10)}

fig, axes = plt.subplots(1, 5, figsize=(17, 3.4))
for ax, key in zip(axes, targets["(10)'s optimum"]):
    for (name, path), style in zip(paths.items(), ("C3-", "C3:", "C0-", "C0:", "k--")):
        ax.plot([s for s, _ in path], [r[key] for _, r in path], style, lw=1.4, label=name)
    for (name, t), style in zip(targets.items(), ("C2", "C1")):
        ax.axhline(t[key], color=style, lw=0.8, label=name)
    ax.set_title(key, fontsize=9); ax.set_xlabel("step")
    if key != "L_x + L_z":
        ax.set_yscale("log")
axes[-1].set_ylim(targets["Prop. 1 optimum (ML PPCA)"]["L_x + L_z"] - 8, targets["Prop. 1 optimum (ML PPCA)"]["L_x + L_z"] + 0.5)
axes[0].legend(fontsize=7)
plt.tight_layout(); plt.show()

print(f"{'':34s}" + "".join(f"{k:>22s}" for k in targets["(10)'s optimum"]))
for name, t in {**targets, **{f"{n}, end": p[-1][1] for n, p in paths.items()}}.items():
    print(f"{name:34s}" + "".join(f"{v:22.4f}" for v in t.values()))

# %%
def growth(path, key):
    """The relative change of ``key`` over the last quarter of a path."""
    late = [r[key] for s, r in path if s >= 0.75 * path[-1][0]]
    return late[-1] / late[0] - 1


for name, path in paths.items():
    print(f"{name:34s} over the last quarter: |W| {growth(path, '|W|'):+.1%}, "
          f"encoder variance {growth(path, 'encoder variance'):+.1%}")
for disc in ("optimal", "quadratic"):
    a, b = paths[f"A, {disc} discriminators"], paths[f"B, {disc} discriminators"]
    # reading A runs off: the decoder's scale still grows, the encoder's noise still shrinks, past both targets
    assert growth(a, "|W|") > 0.02 and growth(a, "encoder variance") < -0.05
    assert a[-1][1]["|W|"] > 1.5 * targets["(10)'s optimum"]["|W|"]
    # reading B settles, at a point near (10)'s optimum and short of Proposition 1's
    assert abs(growth(b, "|W|")) < 0.02
    assert abs(b[-1][1]["|W|"] / targets["(10)'s optimum"]["|W|"] - 1) < 0.25
    assert b[-1][1]["L_x + L_z"] > a[-1][1]["L_x + L_z"] + 1.0
    assert b[-1][1]["L_x + L_z"] < targets["Prop. 1 optimum (ML PPCA)"]["L_x + L_z"] - 0.1

# %% [markdown]
# **Where each reading goes.** Under reading A the game runs off: the decoder's scale
# $|W|$ keeps growing past both targets, the encoder's variance keeps shrinking, both
# marginal KLs grow after a first approach, and $\mathcal L_x + \mathcal L_z$ falls: with the
# optimal discriminators and with trained ones alike. It is $R$'s ascent, and $R$ has no
# maximum: a larger $|W|$ with a sharper encoder makes both reconstructions better
# without end, while the terms that would stop it reach no network. This is
# chapter 6's collapse of the encoder onto its variance floor, in closed form. Under
# reading B the game settles, with either kind of discriminator, at a point near (10)'s
# optimum and short of Proposition 1's (the printed table): the divergences on the two
# marginals, applied to the network that owns each, hold the decoder's scale. Neither
# reading finds the symmetric bound's optimum, because neither follows its gradient; but
# only reading B stays finite. Part II asks whether the same holds for neural networks.

# %% [markdown]
# ## What this chapter showed
#
# * **The symmetric bound is the ELBO's view plus its mirror.** $\mathcal L_x + \mathcal L_z$
#   is two reconstructions (of $x$ through the encoder, of $z$ through the decoder),
#   minus two mutual informations, minus two symmetric KLs between marginals; each
#   symmetric KL is the gap between an optimal discriminator's means on its two
#   classes (section 2).
# * **Proposition 1 holds.** The bound's optimum matches the two joints; on PPCA-shaped
#   data it is the maximum-likelihood PPCA fit with the decoder's exact posterior as
#   encoder (section 3). Where no model of the family fits, the symmetric optimum
#   gives up a little forward KL for less reverse KL, the paper's motivation made
#   measurable (section 4).
# * **The paper's practical objective is not the bound.** The plug-in (10)/(11) can be
#   estimated with trained discriminators under both readings of its x-side KL weight,
#   but it leaves out $\mathbb E_{p(z)}\mathrm{KL}(p_\theta(x|z)\|q(x))$, a term that needs the data
#   density; even with perfect discriminators its optimum is not Proposition 1's: a
#   less noisy decoder whose codes say more about $x$, and more model mass off the
#   data (sections 5-6).
# * **Nor is its gradient the bound's.** In (11) the $f$-term reaches only the encoder
#   and the $h$-term only the decoder, while the marginal KLs they stand for depend on
#   the other network; better discriminators do not remove that bias (section 8). Over
#   random points of the world the error is tens of percent (section 10).
# * **A gradient-correct surrogate exists, at a price.** Built from generated samples and
#   a third discriminator, it has the exact gradient of $\mathcal L_x + \mathcal L_z$ at the
#   optimal discriminators, but two of its terms are importance weights, heavy-tailed
#   when the model is narrower than the data (section 9). It is the book's
#   construction, not the paper's; chapter 6 trains it beside (11).
# * **The game's reading decides whether it stays finite.** At the optimal
#   discriminators reading A ascends only the reconstructions $R$, which have no
#   maximum: played, it drives the decoder's scale up and the encoder's variance to zero,
#   with optimal and with trained discriminators. Reading B adds to each network a
#   non-saturating GAN divergence on the marginal it owns,
#   $\mathrm{KL} - 2\,\mathrm{JSD}$ (derived and checked); played, it settles near (10)'s
#   optimum, short of Proposition 1's. Neither reading follows the gradient of the bound
#   (section 10).
#
# Chapter 5 builds the flows the paper puts into the model; chapter 6 trains the whole
# game on neural networks.

# %% [markdown]
# ## Exercises
#
# Each exercise cell is self-contained; the cell after it checks your answer
# (`make assignments` writes the student version of this chapter, with the
# solutions removed).
#
# **Exercise 4.1 (the symmetric KL of two Gaussians).** The decomposition of the
# symmetric bound ends in two symmetric KLs, $\mathrm{KL}(p\|q) + \mathrm{KL}(q\|p)$.
# For $p = \mathcal N(m_1, s_1^2)$ and $q = \mathcal N(m_2, s_2^2)$ the log terms cancel.
# Show that
# $$\mathrm{KL}(p\|q) + \mathrm{KL}(q\|p) = \frac{(s_1^2 - s_2^2)^2 + (m_1 - m_2)^2\,(s_1^2 + s_2^2)}{2\,s_1^2 s_2^2}$$
# and implement it element-wise, without logarithms. Why is it zero only when $p = q$,
# and why does it punish a too-narrow $q$ and a too-wide one alike, where a one-way KL
# does not? The check also asks for accuracy when $p$ and $q$ nearly coincide. The
# formula above builds the small result from squares of small differences; the one-way
# KLs, and rearrangements such as $(s_1^2/s_2^2 + s_2^2/s_1^2)/2 - 1 + \dots$, subtract nearly
# equal numbers of order one and lose most of the digits.

# %% nbgrader={"grade": false, "grade_id": "ex4_1", "locked": false, "schema_version": 3, "solution": true}
import torch


def symmetric_kl(m1, s1, m2, s2):
    """KL(N(m1, s1^2) || N(m2, s2^2)) + KL(N(m2, s2^2) || N(m1, s1^2)), element-wise, no logarithms."""
    ### BEGIN SOLUTION
    v1, v2 = s1**2, s2**2
    return ((v1 - v2) ** 2 + (m1 - m2) ** 2 * (v1 + v2)) / (2 * v1 * v2)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "ex4_1_check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from fractions import Fraction

one_way = lambda m1, s1, m2, s2: torch.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5   # KL(p || q)
m1, s1, m2, s2 = (torch.tensor(v, dtype=torch.float64) for v in ([0.0, 1.0, -2.0, 0.3], [1.0, 0.5, 2.0, 1.0],
                                                                  [0.0, 0.0, 1.0, 0.3], [2.0, 1.0, 0.7, 1.0]))
reference = one_way(m1, s1, m2, s2) + one_way(m2, s2, m1, s1)
assert torch.allclose(symmetric_kl(m1, s1, m2, s2), reference, atol=1e-12), "compare with the formula above"
assert torch.allclose(symmetric_kl(m1, s1, m2, s2), symmetric_kl(m2, s2, m1, s1)), "it must be symmetric"
assert symmetric_kl(m1, s1, m1, s1).abs().max() < 1e-12, "it must vanish at p = q"
# nearly equal Gaussians: the exact value, in rational arithmetic, from the sum's other form
# (v1/v2 + v2/v1)/2 - 1 + (m1 - m2)^2 (1/v1 + 1/v2)/2, in which the logarithms have already cancelled
s_near, m_near = 1 + 2.0**-20, 2.0**-22
v1, v2 = Fraction(1), Fraction(s_near) ** 2
exact = float((v1 / v2 + v2 / v1) / 2 - 1 + Fraction(m_near) ** 2 * (1 / v1 + 1 / v2) / 2)
p_near = (torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
q_near = (torch.tensor(m_near, dtype=torch.float64), torch.tensor(s_near, dtype=torch.float64))
near, two_one_way = symmetric_kl(*p_near, *q_near), one_way(*p_near, *q_near) + one_way(*q_near, *p_near)
print(f"nearly equal Gaussians: exact {exact:.9e}, yours {near.item():.9e}, two one-way KLs {two_one_way.item():.9e}")
assert abs(near.item() - exact) < 1e-10 * exact, "inaccurate near p = q: build it from squared differences"
### BEGIN HIDDEN TESTS
g = torch.Generator().manual_seed(4)
a, b = (3 * torch.randn(2, 1000, generator=g, dtype=torch.float64)).unbind(0)
sa, sb = (0.1 + torch.rand(2, 1000, generator=g, dtype=torch.float64)).unbind(0)
assert torch.allclose(symmetric_kl(a, sa, b, sb), one_way(a, sa, b, sb) + one_way(b, sb, a, sa), atol=1e-9)
### END HIDDEN TESTS
print("Exercise 4.1: correct")

# %% [markdown]
# **Exercise 4.2 (the other reading of the KL weight: predict, then measure).** Section 5
# left open whether (10) carries the ELBO's $-\mathrm{KL}(q_\phi(z|x)\|p(z))$ on the x-side
# ($\beta = 1$) or not ($\beta = 0$), and section 8 measured the gradient error of (11) for
# $\beta = 1$ only. Change the reading to $\beta = 0$. Give (11) the optimal discriminators
# $f^*$, $h^*$ of a frozen copy of the world, so that what is left is the objective's
# own bias, and compare its gradient with the exact gradient of (10) under the same
# $\beta$. *Before you run anything*, write down in `PREDICTION` how going from $\beta = 1$ to
# $\beta = 0$ changes the size of the error, $\|\nabla(11) - \nabla(10)\|$, and the relative
# error, $\|\nabla(11) - \nabla(10)\| / \|\nabla(10)\|$: "larger", "same" (within 2%, about the
# Monte Carlo error) or "smaller", and why. (Which terms of (10) does (11)'s gradient
# miss at the optimal discriminators, and does $\beta$ appear in them?)
#
# Then implement `plug_in_gradient(world, kl_weight, n, seed)`: the Monte Carlo gradient
# of (11), through the library's `objectives.generator_loss` with method `"asvae"` on a
# `WorldAsModel` (section 7) whose discriminators are the frozen copy's `f_star` and
# `h_star`, over the decoder's parameters and then the encoder's, flattened into one
# vector. The check compares it with the closed-form gradient of what (11) follows at
# the optimal discriminators, then measures both errors under both readings and prints
# them beside your predictions.

# %% nbgrader={"grade": false, "grade_id": "ex4_2", "locked": false, "schema_version": 3, "solution": true}
import copy

import torch

from asvae_lib import gaussian_world, objectives


def plug_in_gradient(world, kl_weight, n=100_000, seed=0):
    """Monte Carlo gradient of (11) with x-side KL weight ``kl_weight`` and the optimal discriminators
    of a frozen copy of ``world``: one flat vector over decoder_parameters() + encoder_parameters()."""
    ### BEGIN SOLUTION
    frozen = copy.deepcopy(world).requires_grad_(False)
    model = gaussian_world.WorldAsModel(world, frozen.f_star, frozen.h_star, generator=torch.Generator().manual_seed(seed))
    x = world.sample_data(n, model.generator)
    params = world.decoder_parameters() + world.encoder_parameters()
    loss = objectives.generator_loss(model, x, "asvae", kl_weight=kl_weight)
    return torch.cat([g.flatten() for g in torch.autograd.grad(-loss, params)])
    ### END SOLUTION


# your predictions, before running: {"error": ..., "relative error": ...}, each "larger", "same" or "smaller"
### BEGIN SOLUTION
PREDICTION = {"error": "same", "relative error": "larger"}
### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "ex4_2_check", "locked": true, "points": 1, "schema_version": 3, "solution": false}
import torch

from asvae_lib.gaussian_world import GaussianWorld

dt = torch.float64
data_mean = torch.tensor([1.0, -0.5, 0.3], dtype=dt)
data_cov = torch.tensor([[3.0, 0.8, 0.2], [0.8, 1.5, 0.1], [0.2, 0.1, 0.6]], dtype=dt)
flat = lambda gs: torch.cat([gr.flatten() for gr in gs])


def follows(world, beta):
    """What (11)'s gradient is at f*, h*: f* ignores z and h* ignores x, so neither term has a pathwise
    gradient, and the two reconstructions and the weighted encoder KL are left (closed form here)."""
    params = world.decoder_parameters() + world.encoder_parameters()
    return flat(torch.autograd.grad(world.reconstruction_x() - beta * world.encoder_kl() + world.reconstruction_z(), params))


world = GaussianWorld.random(data_mean, data_cov, K=1, seed=4)
params = world.decoder_parameters() + world.encoder_parameters()
errors = {}
for beta in (1.0, 0.0):
    plug_in, target = plug_in_gradient(world, beta, n=100_000, seed=0), follows(world, beta)
    assert plug_in.shape == target.shape, "one entry per parameter: the decoder's, then the encoder's"
    assert (plug_in - target).norm() < 0.03 * target.norm(), "not the gradient of (11) at f*, h*"
    exact_10 = flat(torch.autograd.grad(sum(world.cumulative_bound(beta)), params))
    errors[beta] = {"error": (plug_in - exact_10).norm().item(), "relative error": ((plug_in - exact_10).norm() / exact_10.norm()).item()}
    print(f"β = {beta:g}: ||grad (11) - grad (10)|| = {errors[beta]['error']:.4f}, relative {errors[beta]['relative error']:.4f}"
          f"   (||grad (10)|| = {exact_10.norm():.4f})")
trend = lambda before, after: "same" if abs(after / before - 1) < 0.02 else "larger" if after > before else "smaller"
seen = {key: trend(errors[1.0][key], errors[0.0][key]) for key in ("error", "relative error")}
assert set(PREDICTION) == set(seen) and all(v in ("larger", "same", "smaller") for v in PREDICTION.values()), \
    "write your predictions first"
for key in seen:
    print(f"{key} from β = 1 to β = 0: predicted {PREDICTION[key]}, measured {seen[key]}")
### BEGIN HIDDEN TESTS
other = GaussianWorld.random(data_mean, data_cov, K=1, seed=5)
for beta in (1.0, 0.0):
    target = follows(other, beta)
    assert (plug_in_gradient(other, beta, n=50_000, seed=1) - target).norm() < 0.04 * target.norm()
### END HIDDEN TESTS
print("Exercise 4.2: done (the predictions are yours to explain, right or wrong)")
