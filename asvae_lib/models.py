"""The AS-VAE model: stochastic encoder, stochastic decoder, two discriminators.

* ``GaussianConditional``: ``N(mu(c), diag sigma^2(c))``, optionally pushed
  through a planar flow. As encoder it is ``q_phi(z|x)`` (``c = x``); as
  decoder ``p_theta(x|z)`` (``c = z``).
* ``BernoulliConditional``: ``p_theta(x|z)`` for pixels in [0, 1], each read as the
  probability of a binary pixel (the paper's MNIST likelihood).
* ``ASVAE`` holds the encoder, the decoder, the ``f``-discriminator ``f_psi(x, z)``
  and the ``h``-discriminator ``h_psi'(x, z)`` of Corollary 1.1.
* Two builders: :func:`mlp_asvae` (2-D data, MNIST) and :func:`conv_asvae`
  (32x32 colour images). Images travel as flat rows ``(N, C*H*W)``; only the
  convolutional networks see them as ``(N, C, H, W)``.

Every conditional offers ``rsample(c)`` (a reparametrised draw, as (11) needs) and
``log_prob(y, c)`` (the density at any ``y``, through the flow's inverse).
"""
import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .density_ratio import MLPDiscriminator, mlp
from .flows import AmortisedPlanarFlow, PlanarFlow, flow_log_prob
from .gaussians import normal_log_prob


def xavier_init(module: nn.Module) -> None:
    """Xavier (Glorot) initialisation of every linear and convolutional layer, as in the paper."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)


class GaussianConditional(nn.Module):
    """``y | c  ~  flow( N(mu(c), diag exp(log_var(c))) )``; no flow if ``flow_length`` is 0.

    The flow's parameters are global (:class:`~asvae_lib.flows.PlanarFlow`, started at the
    identity) or, with ``amortised=True``, computed from ``c`` by ``net`` itself, as in [14]
    (:class:`~asvae_lib.flows.AmortisedPlanarFlow`): ``net`` then outputs ``2 dim`` numbers for the
    Gaussian and the flow's ``n_params`` more."""

    def __init__(self, net: nn.Module, dim: int, flow_length: int = 0, min_log_var: float = -9.0,
                 amortised: bool = False):
        super().__init__()
        self.net, self.dim, self.min_log_var = net, dim, min_log_var
        flow = AmortisedPlanarFlow if amortised else partial(PlanarFlow, start="identity")
        self.flow = flow(dim, flow_length) if flow_length else None
        self.amortised = amortised and flow_length > 0

    def base(self, c: torch.Tensor):
        """The Gaussian's mean and log-variance at ``c``, and the flow's parameters (an empty
        tuple, or the amortised flow's, to pass on as ``*flow_params``)."""
        out = self.net(c).float()                                  # densities in float32, even under autocast
        mean, log_var = out[:, :self.dim], out[:, self.dim:2 * self.dim]
        flow_params = (out[:, 2 * self.dim:],) if self.amortised else ()
        return mean, log_var.clamp(min=self.min_log_var), flow_params

    def rsample_with_log_prob(self, c: torch.Tensor):
        """A reparametrised draw ``y = flow(mu + sigma * eps)`` and its log-density."""
        mean, log_var, flow_params = self.base(c)
        y0 = mean + (0.5 * log_var).exp() * torch.randn_like(mean)
        log_prob = normal_log_prob(y0, mean, log_var)
        if self.flow is not None:
            y0, log_det = self.flow(y0, *flow_params)
            log_prob = log_prob - log_det
        return y0, log_prob

    def rsample(self, c: torch.Tensor) -> torch.Tensor:
        return self.rsample_with_log_prob(c)[0]

    def log_prob(self, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``log q(y|c)`` at any ``y``: invert the flow, then change variables (:func:`flows.flow_log_prob`)."""
        mean, log_var, flow_params = self.base(c)
        base = partial(normal_log_prob, mean=mean, log_var=log_var)
        return base(y) if self.flow is None else flow_log_prob(self.flow, y, base, *flow_params)

    def mean(self, c: torch.Tensor) -> torch.Tensor:
        """The base mean pushed through the flow (a point summary, for reconstructions)."""
        mean, _, flow_params = self.base(c)
        return mean if self.flow is None else self.flow(mean, *flow_params)[0]


class BernoulliConditional(nn.Module):
    """``p_theta(x|z) = prod_i Bern(x_i; sigmoid(logit_i(z)))`` with ``x_i`` in [0, 1].

    A binary draw cannot be reparametrised, so ``rsample`` returns the pixel
    probabilities (the decoder's mean image): our choice for ``x_eps`` in (11),
    which the paper does not specify.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return -F.binary_cross_entropy_with_logits(self.net(z).float(), x.float(), reduction="none").sum(-1)

    def rsample(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z))

    mean = rsample


class ASVAE(nn.Module):
    """Encoder, decoder and the two joint discriminators of the paper."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, f: nn.Module, h: nn.Module, z_dim: int,
                 g: nn.Module | None = None):
        super().__init__()
        self.encoder, self.decoder, self.f, self.h, self.z_dim = encoder, decoder, f, h, z_dim
        self.g = g   # optional ALI-type joint discriminator, for the book's "asvae-pathwise" only

    def sample_prior(self, n: int) -> torch.Tensor:
        """``z ~ p(z) = N(0, I)``."""
        return torch.randn(n, self.z_dim, device=self.device)

    @property
    def device(self):
        return next(self.parameters()).device

    def generator_parameters(self):
        """theta and phi: what (11) trains."""
        return list(self.encoder.parameters()) + list(self.decoder.parameters())

    def discriminator_parameters(self):
        """psi and psi': what (5) and (6) train."""
        return [p for d in (self.f, self.h, self.g) if d is not None for p in d.parameters()]

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """Generated data: the decoder's mean at prior codes."""
        return self.decoder.mean(self.sample_prior(n))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder.mean(self.encoder.rsample(x))


def mlp_asvae(x_dim: int, z_dim: int, hidden: int = 128, depth: int = 2, flow_length: int = 0,
              bernoulli: bool = False, dropout: float = 0.2, encoder_log_var_init: float = 0.0,
              disc_hidden: int | None = None, joint_discriminator: bool = False,
              amortised_flow: bool = False) -> ASVAE:
    """The fully connected AS-VAE used on 2-D data and MNIST, Xavier-initialised.

    Discriminators get ``dropout`` (the paper's only regulariser); encoder and
    decoder get none. ``encoder_log_var_init`` is the initial bias of the
    encoder's log-variance output (0, Xavier's zero bias, by default): a negative
    value starts ``q_phi(z|x)`` narrow, so codes carry information from the first
    step (chapter 6: on isotropic 2-D mixtures a VAE started at 0 stays in the
    collapsed optimum that ignores z). ``disc_hidden`` (default ``hidden``) sizes the
    discriminators alone. ``joint_discriminator`` adds a third discriminator ``g`` on
    ALI's pairs (3), which the book's ``asvae-pathwise`` needs; it is initialised after
    the rest, so the other networks start the same with or without it. ``amortised_flow``
    computes the encoder's flow from ``x`` ([14]); its ``u``-outputs start at 0, so the flow
    starts at the identity, as the global flow does.
    """
    disc_hidden = disc_hidden or hidden
    n_flow = AmortisedPlanarFlow(z_dim, flow_length).n_params if amortised_flow else 0
    encoder = GaussianConditional(mlp(x_dim, 2 * z_dim + n_flow, hidden, depth), z_dim, flow_length,
                                  amortised=amortised_flow)
    if bernoulli:
        decoder = BernoulliConditional(mlp(z_dim, x_dim, hidden, depth))
    else:
        decoder = GaussianConditional(mlp(z_dim, 2 * x_dim, hidden, depth), x_dim, flow_length)
    f = MLPDiscriminator(x_dim + z_dim, disc_hidden, depth, dropout)
    h = MLPDiscriminator(x_dim + z_dim, disc_hidden, depth, dropout)
    model = ASVAE(encoder, decoder, f, h, z_dim)
    xavier_init(model)
    with torch.no_grad():
        encoder.net[-1].bias[z_dim:2 * z_dim] = encoder_log_var_init
        encoder.net[-1].weight[2 * z_dim:2 * z_dim + flow_length * z_dim] = 0     # the amortised flow's u
    if joint_discriminator:
        model.g = MLPDiscriminator(x_dim + z_dim, disc_hidden, depth, dropout)
        xavier_init(model.g)
    return model


# ----- 32x32 colour images (CIFAR-10, ImageNet 32x32) -------------------------------------
# The paper's Appendix B architectures were lost in extraction; these are DCGAN-style
# networks (strided convolutions down, transposed convolutions up), our choice.

def conv_down(channels: int, width: int) -> nn.Sequential:
    """(N, channels, 32, 32) -> (N, 4 * width * 4 * 4): three stride-2 convolutions."""
    layers, c = [], channels
    for out in (width, 2 * width, 4 * width):
        layers += [nn.Conv2d(c, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        c = out
    return nn.Sequential(*layers, nn.Flatten())


class ImageEncoderNet(nn.Module):
    """Flat image rows -> the encoder's ``[mean, log_var]`` of z."""

    def __init__(self, shape, z_dim: int, width: int):
        super().__init__()
        self.shape = tuple(shape)
        self.down = conv_down(shape[0], width)
        self.out = nn.Linear(4 * width * 16, 2 * z_dim)

    def forward(self, x):
        return self.out(self.down(x.reshape(-1, *self.shape)))


class ImageDecoderNet(nn.Module):
    """z -> flat ``[mean image, log_var image]`` (each C*H*W), by transposed convolutions."""

    def __init__(self, shape, z_dim: int, width: int):
        super().__init__()
        self.shape, self.width = tuple(shape), width
        self.inp = nn.Sequential(nn.Linear(z_dim, 4 * width * 16), nn.LeakyReLU(0.2))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(4 * width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(width, 2 * shape[0], 4, stride=2, padding=1))

    def forward(self, z):
        y = self.up(self.inp(z).reshape(-1, 4 * self.width, 4, 4))
        mean, log_var = y.chunk(2, dim=1)
        return torch.cat([mean.flatten(1), log_var.flatten(1)], dim=-1)


class ImageJointDiscriminator(nn.Module):
    """``f(x, z)`` or ``h(x, z)`` on images: convolutional features of x and a linear
    embedding of z, concatenated, then a small MLP with dropout to one logit."""

    def __init__(self, shape, z_dim: int, width: int, hidden: int = 512, dropout: float = 0.2):
        super().__init__()
        self.shape = tuple(shape)
        self.x_features = nn.Sequential(conv_down(shape[0], width), nn.Dropout(dropout))
        self.z_features = nn.Sequential(nn.Linear(z_dim, hidden), nn.LeakyReLU(0.2), nn.Dropout(dropout))
        self.joint = mlp(4 * width * 16 + hidden, 1, hidden, depth=1, dropout=dropout)

    def forward(self, x, z):
        x = x.to(self.joint[0].weight.dtype)
        u = torch.cat([self.x_features(x.reshape(-1, *self.shape)), self.z_features(z.to(x.dtype))], dim=-1)
        return self.joint(u).squeeze(-1)


def conv_asvae(shape=(3, 32, 32), z_dim: int = 128, width: int = 64, dropout: float = 0.2,
               decoder_log_var: float = 0.0) -> ASVAE:
    """The AS-VAE for 32x32 colour images: Gaussian encoder and decoder (section 5.1),
    DCGAN-style networks of ``width`` base channels, Xavier-initialised. The decoder's
    per-pixel log-variance starts at ``decoder_log_var`` (the bias of its log-variance
    channels; Xavier alone gives 0, a standard deviation as wide as all of [0, 1))."""
    x_dim = math.prod(shape)
    encoder = GaussianConditional(ImageEncoderNet(shape, z_dim, width), z_dim)
    decoder = GaussianConditional(ImageDecoderNet(shape, z_dim, width), x_dim)
    f = ImageJointDiscriminator(shape, z_dim, width, dropout=dropout)
    h = ImageJointDiscriminator(shape, z_dim, width, dropout=dropout)
    model = ASVAE(encoder, decoder, f, h, z_dim)
    xavier_init(model)
    with torch.no_grad():             # the last layer's channels are [means, log-variances]
        decoder.net.up[-1].bias[shape[0]:] = decoder_log_var
    return model
