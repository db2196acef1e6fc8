"""Pictures of images: sample grids and reconstructions beside their originals."""
import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid

from .data import images


def grid(x: torch.Tensor, shape, nrow: int = 10) -> torch.Tensor:
    """Flat rows (uint8 or [0, 1] floats) -> one (H, W, C) picture, ``nrow`` images per row."""
    return make_grid(images(x.detach().float().cpu() if x.dtype != torch.uint8 else x.cpu(), shape),
                     nrow=nrow, padding=1, pad_value=1.0).permute(1, 2, 0)


def show(ax, x: torch.Tensor, shape, title: str = "", nrow: int = 10) -> None:
    """Draw a grid of images on a matplotlib axis."""
    ax.imshow(grid(x, shape, nrow).clamp(0, 1).numpy(), cmap="gray" if shape[0] == 1 else None)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


@torch.no_grad()
def samples_and_reconstructions(model, x: torch.Tensor, shape, title: str, n: int = 30, nrow: int = 10):
    """Left: ``n`` generated images; right: ``nrow`` test images above their reconstructions.
    Returns the figure."""
    torch.manual_seed(0)
    fake = model.sample(n).float().clamp(0, 1).cpu()
    originals = x[:nrow]
    recon = model.reconstruct(originals.to(model.device)).float().clamp(0, 1).cpu()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    show(a, fake, shape, f"{title}: samples", nrow)
    show(b, torch.cat([originals, recon]), shape, f"{title}: test images (top), reconstructions (below)", nrow)
    fig.tight_layout()
    return fig
