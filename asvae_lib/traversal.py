"""Walking the latent space of a trained model (chapter 7).

Encode many images and look at where their codes lie: the principal axes of the
encoder means are the directions in which the aggregated posterior ``q_phi(z)``
spreads the data most, and the spread along each axis is the natural unit for a
step. A traversal starts at the code of one image and moves along one axis,
decoding each point with the decoder's mean. An axis the encoder does not use
(a collapsed one, with almost no spread) changes the image little.
"""
import torch


@torch.no_grad()
def principal_axes(model, x: torch.Tensor):
    """Principal axes (rows, orthonormal) of the encoder means of ``x``, largest spread
    first, and the standard deviation of the codes along each."""
    model.eval()
    codes = model.encoder.mean(x.to(model.device)).double()
    _, s, axes = torch.linalg.svd(codes - codes.mean(0), full_matrices=False)
    return axes, s / (len(codes) - 1) ** 0.5


@torch.no_grad()
def traverse(model, x0: torch.Tensor, axis: torch.Tensor, amounts: torch.Tensor) -> torch.Tensor:
    """Decoded images at ``z0 + a * axis`` for each ``a`` in ``amounts`` (``axis`` a unit vector), where ``z0``
    is the encoder's mean for the single image ``x0``. Rows in the order of ``amounts``."""
    model.eval()
    z0 = model.encoder.mean(x0[None].to(model.device))
    steps = amounts.to(z0)[:, None] * axis.to(z0)[None]
    return model.decoder.mean(z0 + steps).float().cpu()
