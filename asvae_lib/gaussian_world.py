"""The Gaussian world: AS-VAE with every quantity in closed form.

Data ``x`` in R^D, codes ``z`` in R^K, and

* data        ``q(x) = N(m, C)`` (known here, unlike in real life),
* prior       ``p(z) = N(0, I)``,
* decoder     ``p_theta(x|z) = N(W z + b, s2 I)``   (theta = W, b, s2),
* encoder     ``q_phi(z|x)  = N(A x + c, diag(S))`` (phi = A, c, S).

Then the model ``p_theta(x) = N(b, W W^T + s2 I)`` is probabilistic PCA, the
aggregated posterior is ``q_phi(z) = N(A m + c, A C A^T + S)``, both joints
``q_phi(x,z) = q(x) q_phi(z|x)`` and ``p_theta(x,z) = p(z) p_theta(x|z)`` are
Gaussians in R^(D+K) (x first, then z), and the ELBO (1), the bounds (8) and
(9), the optimal discriminators (7) and every term of the symmetric bound are
exact expressions with exact gradients.

The encoder and decoder parameters are ``nn.Parameter``s, so an optimiser can
maximise any of these objectives directly.
"""
import copy

import torch
from torch import nn

from . import objectives, pairs
from .density_ratio import QuadraticDiscriminator
from .gaussians import Gaussian, cross_entropy, jsd, kl, normal_log_prob, standard_normal


class GaussianWorld(nn.Module):
    def __init__(self, data_mean, data_cov, W, b, s2, A, c, S):
        super().__init__()
        dt = torch.float64
        self.register_buffer("m", torch.as_tensor(data_mean, dtype=dt))
        self.register_buffer("C", torch.as_tensor(data_cov, dtype=dt))
        self.W = nn.Parameter(torch.as_tensor(W, dtype=dt).clone())
        self.b = nn.Parameter(torch.as_tensor(b, dtype=dt).clone())
        self.log_s2 = nn.Parameter(torch.log(torch.as_tensor(s2, dtype=dt)).clone())
        self.A = nn.Parameter(torch.as_tensor(A, dtype=dt).clone())
        self.c = nn.Parameter(torch.as_tensor(c, dtype=dt).clone())
        self.log_S = nn.Parameter(torch.log(torch.as_tensor(S, dtype=dt)).clone())

    @classmethod
    def random(cls, data_mean, data_cov, K: int, seed: int = 0, scale: float = 0.5):
        """A world with the given data and randomly drawn encoder and decoder."""
        g = torch.Generator().manual_seed(seed)
        D = len(data_mean)
        def rnd(*shape):
            return scale * torch.randn(*shape, dtype=torch.float64, generator=g)
        return cls(data_mean, data_cov, W=rnd(D, K), b=rnd(D), s2=torch.tensor(1.0),
                   A=rnd(K, D), c=rnd(K), S=torch.full((K,), 0.5))

    # ----- sizes and the parameters as matrices -------------------------------------
    @property
    def D(self) -> int:
        return self.m.shape[0]

    @property
    def K(self) -> int:
        return self.A.shape[0]

    @property
    def s2(self) -> torch.Tensor:
        return self.log_s2.exp()

    @property
    def S(self) -> torch.Tensor:
        """The encoder's diagonal covariance, as a matrix."""
        return torch.diag(self.log_S.exp())

    def decoder_parameters(self):
        """theta."""
        return [self.W, self.b, self.log_s2]

    def encoder_parameters(self):
        """phi."""
        return [self.A, self.c, self.log_S]

    # ----- the four marginals ------------------------------------------------------
    def data(self) -> Gaussian:
        """``q(x)``."""
        return Gaussian(self.m, self.C)

    def prior(self) -> Gaussian:
        """``p(z)``."""
        return standard_normal(self.K)

    def model(self) -> Gaussian:
        """``p_theta(x) = N(b, W W^T + s2 I)``."""
        return Gaussian(self.b, self.W @ self.W.T + self.s2 * torch.eye(self.D, dtype=self.m.dtype))

    def aggregated_posterior(self) -> Gaussian:
        """``q_phi(z) = E_q(x) q_phi(z|x) = N(A m + c, A C A^T + S)``."""
        return Gaussian(self.A @ self.m + self.c, self.A @ self.C @ self.A.T + self.S)

    # ----- the two joints (x first, then z) -----------------------------------------
    def encoder_joint(self) -> Gaussian:
        """``q_phi(x, z) = q(x) q_phi(z|x)``."""
        AC = self.A @ self.C
        cov = torch.cat([torch.cat([self.C, AC.T], 1),
                         torch.cat([AC, AC @ self.A.T + self.S], 1)], 0)
        return Gaussian(torch.cat([self.m, self.A @ self.m + self.c]), cov)

    def decoder_joint(self) -> Gaussian:
        """``p_theta(x, z) = p(z) p_theta(x|z)``."""
        px = self.model()
        cov = torch.cat([torch.cat([px.cov, self.W], 1),
                         torch.cat([self.W.T, torch.eye(self.K, dtype=self.m.dtype)], 1)], 0)
        return Gaussian(torch.cat([self.b, torch.zeros(self.K, dtype=self.m.dtype)]), cov)

    # ----- the conditionals: sampling (reparametrised) and densities ----------------
    def encode(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        """``z ~ q_phi(z|x)`` as ``A x + c + sqrt(S) eps`` (the reparametrisation trick)."""
        eps = torch.randn(x.shape[0], self.K, dtype=x.dtype, generator=generator)
        return x @ self.A.T + self.c + eps * (0.5 * self.log_S).exp()

    def decode(self, z: torch.Tensor, generator=None) -> torch.Tensor:
        """``x ~ p_theta(x|z)`` as ``W z + b + sqrt(s2) eps``: the reparametrisation of (11)."""
        eps = torch.randn(z.shape[0], self.D, dtype=z.dtype, generator=generator)
        return z @ self.W.T + self.b + eps * (0.5 * self.log_s2).exp()

    def encoder_noise(self) -> Gaussian:
        """``N(0, diag(S))``: ``q_phi(z|x)`` is ``A x + c`` plus this noise."""
        return Gaussian(torch.zeros_like(self.c), self.S)

    def decoder_noise(self) -> Gaussian:
        """``N(0, s2 I)``: ``p_theta(x|z)`` is ``W z + b`` plus this noise."""
        return Gaussian(torch.zeros_like(self.b), self.s2 * torch.eye(self.D, dtype=self.b.dtype))

    def encoder_log_prob(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``log q_phi(z|x) = log N(z; A x + c, diag(S))``."""
        return normal_log_prob(z, x @ self.A.T + self.c, self.log_S)

    def decoder_log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``log p_theta(x|z) = log N(x; W z + b, s2 I)``."""
        return normal_log_prob(x, z @ self.W.T + self.b, self.log_s2)

    # ----- the optimal discriminators (7) and ALI's -------------------------------------
    def f_star(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """``f*(x, z) = log q(x) - log p_theta(x)``: it ignores ``z``."""
        return self.data().log_prob(x) - self.model().log_prob(x)

    def h_star(self, x: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor:
        """``h*(x, z) = log p(z) - log q_phi(z)``: it ignores ``x``."""
        return self.prior().log_prob(z) - self.aggregated_posterior().log_prob(z)

    def ali_star(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """ALI's optimal discriminator for (3): ``log q_phi(x,z) - log p_theta(x,z)``."""
        xz = torch.cat([x, z], -1)
        return self.encoder_joint().log_prob(xz) - self.decoder_joint().log_prob(xz)

    # ----- sampling for the discriminators -------------------------------------------
    def sample_data(self, n: int, generator=None) -> torch.Tensor:
        """``x ~ q(x)``: in real life, a minibatch of the training set."""
        return self.data().sample(n, generator)

    def sample_prior(self, n: int, generator=None) -> torch.Tensor:
        return self.prior().sample(n, generator)

    def _pairs(self, scheme, n: int, generator=None):
        x, z = self.sample_data(n, generator), self.sample_prior(n, generator)
        return scheme(x, z, lambda v: self.encode(v, generator), lambda v: self.decode(v, generator))

    def f_pairs(self, n: int, generator=None):
        """``n`` positive and ``n`` negative pairs of (5): see :func:`asvae_lib.pairs.f_pairs`."""
        return self._pairs(pairs.f_pairs, n, generator)

    def h_pairs(self, n: int, generator=None):
        """``n`` positive and ``n`` negative pairs of (6): see :func:`asvae_lib.pairs.h_pairs`."""
        return self._pairs(pairs.h_pairs, n, generator)

    def ali_pairs(self, n: int, generator=None):
        """ALI's pairs (3): see :func:`asvae_lib.pairs.ali_pairs`."""
        return self._pairs(pairs.ali_pairs, n, generator)

    # ----- the objectives in closed form -------------------------------------------------
    def reconstruction_x(self) -> torch.Tensor:
        """``E_{q_phi(x,z)}[log p_theta(x|z)]``: reconstruct x through the encoder.

        ``log p_theta(x|z)`` is the decoder noise's log-density at the residual ``r = x - W z - b``,
        a linear map of the Gaussian joint: the expectation is minus a cross-entropy.
        """
        J = self.encoder_joint()
        L = torch.cat([torch.eye(self.D, dtype=J.mean.dtype), -self.W], 1)
        return -cross_entropy(Gaussian(L @ J.mean - self.b, L @ J.cov @ L.T), self.decoder_noise())

    def reconstruction_z(self) -> torch.Tensor:
        """``E_{p_theta(x,z)}[log q_phi(z|x)]``: reconstruct z through the decoder; as
        :meth:`reconstruction_x`, with the residual ``r = z - A x - c`` and the encoder noise."""
        J = self.decoder_joint()
        L = torch.cat([-self.A, torch.eye(self.K, dtype=J.mean.dtype)], 1)
        return -cross_entropy(Gaussian(L @ J.mean - self.c, L @ J.cov @ L.T), self.encoder_noise())

    def encoder_kl(self) -> torch.Tensor:
        """``E_q(x) KL(q_phi(z|x) || p(z))``, the ELBO's regulariser.

        KL is cross-entropy minus entropy; the cross-entropy is linear in its first
        argument, so ``E_x CE(q_phi(z|x), p) = CE(q_phi(z), p)``, and every ``q_phi(z|x)``
        has the entropy of the encoder noise.
        """
        return cross_entropy(self.aggregated_posterior(), self.prior()) - self.encoder_noise().entropy()

    def elbo(self) -> torch.Tensor:
        """``L_VAE`` (1) = ``E_q[log p_theta(x|z)] - E_q KL(q_phi(z|x) || p(z))``."""
        return self.reconstruction_x() - self.encoder_kl()

    def L_x(self) -> torch.Tensor:
        """(8): ``E_q(x)[log p_theta(x)] - KL(q_phi(x,z) || p_theta(x,z))``."""
        return -cross_entropy(self.data(), self.model()) - kl(self.encoder_joint(), self.decoder_joint())

    def L_z(self) -> torch.Tensor:
        """(9): ``E_p(z)[log q_phi(z)] - KL(p_theta(x,z) || q_phi(x,z))``."""
        return (-cross_entropy(self.prior(), self.aggregated_posterior())
                - kl(self.decoder_joint(), self.encoder_joint()))

    def mutual_information_q(self) -> torch.Tensor:
        """``I_q(x; z) = H(q_phi(z)) - H(q_phi(z|x))`` under the encoder joint."""
        return 0.5 * (torch.logdet(self.aggregated_posterior().cov) - self.log_S.sum())

    def mutual_information_p(self) -> torch.Tensor:
        """``I_p(x; z) = H(p_theta(x)) - H(p_theta(x|z))`` under the decoder joint."""
        return 0.5 * (torch.logdet(self.model().cov) - self.D * self.log_s2)

    def decoder_kl_to_data(self) -> torch.Tensor:
        """``E_p(z) KL(p_theta(x|z) || q(x))``: the z-side term that (10) leaves out.

        It needs the data density ``q(x)``, which nobody has outside this world.
        As in :meth:`encoder_kl`: ``E_z CE(p_theta(x|z), q) = CE(p_theta(x), q)``, and every
        ``p_theta(x|z)`` has the entropy of the decoder noise.
        """
        return cross_entropy(self.model(), self.data()) - self.decoder_noise().entropy()

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

    # ----- what the game (12) ascends at the optimal discriminators (chapter 4, section 10) ---
    def reconstructions(self, kl_weight: float = 1.0) -> torch.Tensor:
        """``E_q[log p_theta(x|z)] - kl_weight * E_q KL(q_phi(z|x)||p(z)) + E_p[log q_phi(z|x)]``:
        the objective whose gradient (11) follows at ``f*``, ``h*`` (reading A). The plug-in terms
        give no gradient there: ``f*`` ignores z and meets real x, ``h*`` ignores x and meets prior z."""
        return self.reconstruction_x() - kl_weight * self.encoder_kl() + self.reconstruction_z()

    def saddle_divergences(self) -> tuple:
        """``KL(p_theta(x)||q(x)) - 2 JSD(p_theta(x), q(x))`` and ``KL(q_phi(z)||p(z)) - 2 JSD(q_phi(z), p(z))``:
        at the optimal discriminators, the decoder descends the first and the encoder the second
        under reading B's fooling losses (the JSDs by quadrature, :func:`gaussians.jsd`)."""
        p_x, q_z = self.model(), self.aggregated_posterior()
        return (kl(p_x, self.data()) - 2 * jsd(p_x, self.data()),
                kl(q_z, self.prior()) - 2 * jsd(q_z, self.prior()))

    def reading_b_objective(self, lam: float = 1.0, kl_weight: float = 1.0) -> torch.Tensor:
        """What reading B ascends at the optimal discriminators: :meth:`reconstructions`
        minus ``lam`` times both :meth:`saddle_divergences`."""
        d_x, d_z = self.saddle_divergences()
        return self.reconstructions(kl_weight) - lam * (d_x + d_z)

    # ----- the plug-in estimate (11) with discriminators -----------------------------------
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


def exact_posterior(W: torch.Tensor, b: torch.Tensor, s2: torch.Tensor):
    """``p_theta(z|x) = N(A x + c, S)`` for the PPCA decoder: ``M = W^T W + s2 I``,
    ``A = M^-1 W^T``, ``c = -A b``, ``S = s2 M^-1``. ``S`` is diagonal when W's
    columns are orthogonal (as :func:`ppca_maximum_likelihood` returns them)."""
    M = W.T @ W + s2 * torch.eye(W.shape[1], dtype=W.dtype)
    A = torch.linalg.solve(M, W.T)
    return A, -A @ b, s2 * torch.linalg.inv(M)


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
            frozen = copy.deepcopy(world).requires_grad_(False)
            f, h = frozen.f_star, frozen.h_star
        else:
            model = WorldAsModel(world, disc["f"], disc["h"], generator=g)
            for _ in range(disc_steps):
                loss = sum(objectives.discriminator_loss(model, world.sample_data(n, g), "asvae").values())
                opt_disc.zero_grad()
                loss.backward()
                opt_disc.step()
            f, h = (d.requires_grad_(False) for d in disc.values())
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
