"""Density ratios by classification: Lemma 1 and the discriminators of AS-VAE.

Lemma 1. For densities ``p`` and ``q`` the function ``f`` that maximises

    (4)   E_p[log sigma(f(u))] + E_q[log(1 - sigma(f(u)))]

is ``f*(u) = log p(u) - log q(u)``: pointwise, ``a log s + b log(1 - s)`` peaks at
``s = a / (a + b)``, and ``sigma^-1(p / (p + q)) = log p - log q``.

So a classifier trained to tell samples of ``p`` (label 1) from samples of
``q`` (label 0) learns, in its logit, the log density ratio. AS-VAE uses this
twice (Corollary 1.1): ``f`` on the pairs of (5) and ``h`` on the pairs of (6).
Inputs are given as tuples of tensors (``(x, z)`` for the joint discriminators,
``(u,)`` for a single variable) and concatenated along the last axis.
"""
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm


def logistic_objective(logit_pos: torch.Tensor, logit_neg: torch.Tensor) -> torch.Tensor:
    """The objective (4): ``mean log sigma(f_pos) + mean log(1 - sigma(f_neg))``.

    ``log(1 - sigma(t)) = log sigma(-t)``, computed stably by ``logsigmoid``.
    """
    return F.logsigmoid(logit_pos.float()).mean() + F.logsigmoid(-logit_neg.float()).mean()


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


def ratio_rmse(learned: torch.Tensor, true: torch.Tensor) -> float:
    """Root mean squared difference between a learned logit and the true log ratio,
    both evaluated at the same points (drawn from where the classes live)."""
    return torch.sqrt(((learned.double() - true.double()) ** 2).mean()).item()
