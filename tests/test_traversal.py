"""Latent traversals: the axes are principal axes of the codes, and a traversal starts at the image's own code."""
import torch

from asvae_lib.models import mlp_asvae
from asvae_lib.traversal import principal_axes, traverse


def model_and_data():
    torch.manual_seed(0)
    model = mlp_asvae(12, 4, hidden=16, flow_length=2, bernoulli=True)
    return model, torch.rand(200, 12)


def test_axes_are_orthonormal_and_sorted_by_spread():
    model, x = model_and_data()
    axes, std = principal_axes(model, x)
    assert torch.allclose(axes @ axes.T, torch.eye(4, dtype=axes.dtype), atol=1e-10)
    assert (std[:-1] >= std[1:]).all() and (std > 0).all()
    codes = model.encoder.mean(x).double()
    projected = (codes - codes.mean(0)) @ axes.T            # spread along each axis = its std
    assert torch.allclose(projected.std(0), std, rtol=1e-6)


def test_traversal_starts_at_the_images_code_and_moves_along_the_axis():
    model, x = model_and_data()
    axes, _ = principal_axes(model, x)
    amounts = torch.tensor([-2.0, 0.0, 2.0])
    images = traverse(model, x[0], axes[0], amounts)
    assert images.shape == (3, 12)
    with torch.no_grad():
        z0 = model.encoder.mean(x[:1])
        assert torch.allclose(images[1], model.decoder.mean(z0)[0], atol=1e-6)
        far = model.decoder.mean(z0 + 2 * axes[0].float())
    assert torch.allclose(images[2], far[0], atol=1e-6)
    assert not torch.allclose(images[0], images[2])
