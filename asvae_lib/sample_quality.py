"""Sample quality of the MNIST models in numbers, from a small digit classifier trained in the book.

Section 5.2 of the paper judges MNIST samples by eye: AS-VAE-g's and AS-VAE's are good, AS-VAE-r's
"slightly more blurry". Two scores make that measurable, both from :class:`Classifier`, a two-layer
CNN trained here on the 60,000 official training digits (``--train-classifier``; its test accuracy on
the official 10,000 test digits is stored in ``results/mnist-classifier.json``):

* **Fréchet distance** (Heusel et al., 2017; FID with the classifier's 64-d penultimate features in
  place of Inception's): ``|mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))`` between Gaussians
  fitted to the features of samples and of real digits. Computed by **torch-fidelity**'s
  ``fid_features_to_statistics`` and ``fid_statistics_to_metric`` (``torch_fidelity.metric_fid``).
* **Class-entropy score**, the Inception Score's analogue (Salimans et al., 2016):
  ``exp(E_x KL(p(y|x) || p(y)))``, ``p(y|x)`` the classifier's softmax, ``p(y) = E_x p(y|x)``. Its log is
  the mutual information ``H(y) - E_x H(y|x)``, so both parts are reported too: ``h_y_given_x``, low
  when each sample looks like one digit, and ``h_y``, up to ``log 10`` when all ten digits appear.

Protocol (:func:`score_samples`): ``draws`` independent draws of ``n`` samples each, every metric
computed per draw; the mean over draws and its standard error ``std / sqrt(draws)`` (sample-draw
variability only: the classifier and the reference are fixed). The reference statistics are the
features of the first 5000 official test digits; real digits are scored as draws of ``n`` from the
other 5000 (each draw without replacement), so no digit is compared with itself. Model samples are
``model.sample(n)``, the decoder's mean pixel probabilities at prior codes (as in the book's pictures).
The "no-z" baseline, independent pixels with the per-pixel mean of the 50,000 training digits, is
scored twice: by its decoder mean (the mean image, the same for every z: comparable with the models'
samples) and by binary Bernoulli draws from it.

    python -m asvae_lib.sample_quality --train-classifier   # results/mnist-classifier.{pt,json}
    python -m asvae_lib.sample_quality --score              # results/mnist-sample-quality.json
"""
import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import REPO
from .experiments import RESULTS

CACHE = REPO / "data" / "cache"
CLASSIFIER = RESULTS / "mnist-classifier.pt"
N_REFERENCE = 5000          # official test digits [0, 5000): the reference; [5000, 10000): the real "samples"
SHAPE = (1, 28, 28)
BATCH_SIZE, LR = 128, 1e-3  # the classifier's Adam


class Classifier(nn.Module):
    """Two 5x5 conv layers (16, 32 channels, each ReLU and 2x2 max-pool), a ``feature_dim`` ReLU
    layer (the features of the Fréchet distance) and a linear layer to the 10 digit logits."""

    def __init__(self, feature_dim: int = 64, n_classes: int = 10, width: int = 16):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(width, 2 * width, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
        self.feature = nn.Sequential(nn.Linear(2 * width * 7 * 7, feature_dim), nn.ReLU())
        self.out = nn.Linear(feature_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features of images in [0, 1], flat ``(N, 784)`` or ``(N, 1, 28, 28)``."""
        return self.feature(self.conv(x.reshape(-1, *SHAPE).float()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x))


@torch.no_grad()
def features_and_logits(classifier: nn.Module, x: torch.Tensor, batch_size: int = 1000):
    """``(features, logits)`` of images in [0, 1], both float64 on the CPU."""
    feats, logits = [], []
    for chunk in x.split(batch_size):
        f = classifier.features(chunk)
        feats.append(f.double().cpu())
        logits.append(classifier.out(f).double().cpu())
    return torch.cat(feats), torch.cat(logits)


def feature_statistics(features: torch.Tensor) -> dict:
    """Mean and covariance ``{"mu", "sigma"}`` of features ``(N, d)`` (torch-fidelity's)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics
    return fid_features_to_statistics(features.detach().double().cpu())


def frechet_distance(stats_1: dict, stats_2: dict) -> float:
    """The Fréchet distance between the Gaussians of two :func:`feature_statistics` (torch-fidelity's)."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric
    return fid_statistics_to_metric(stats_1, stats_2, verbose=False)[KEY_METRIC_FID]


def class_entropy(logits: torch.Tensor) -> dict:
    """The class-entropy score ``exp(E_x KL(p(y|x) || p(y)))`` and its parts, in nats:
    ``h_y_given_x = E_x H(p(y|x))`` and ``h_y = H(p(y))``, ``p(y)`` the mean of ``p(y|x)``."""
    log_p = logits.double().log_softmax(-1)
    p = log_p.exp()
    log_marginal = p.mean(0).clamp_min(1e-300).log()
    kl = (p * (log_p - log_marginal)).sum(-1).mean()
    return {"class_score": kl.exp().item(), "h_y_given_x": -(p * log_p).sum(-1).mean().item(),
            "h_y": -(p.mean(0) * log_marginal).sum().item()}


def mean_se(values) -> tuple:
    """``(mean, standard error)`` of independent draws: ``std (ddof=1) / sqrt(k)``; NaN for one draw."""
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")


def score_samples(samples_fn, n: int = 2000, draws: int = 5, seed: int = 0, classifier: nn.Module | None = None,
                  reference: dict | None = None) -> dict:
    """``{metric: (mean, se)}`` over ``draws`` draws of ``samples_fn(n)`` (images in [0, 1]): the
    Fréchet distance ``fd`` to ``reference`` (:func:`feature_statistics`; default the first 5000 test
    digits') and :func:`class_entropy`. Draw ``d`` runs under ``torch.manual_seed(seed + d)``, the
    caller's random state is left as it was."""
    classifier = load_classifier() if classifier is None else classifier.eval()
    if reference is None:
        reference = feature_statistics(features_and_logits(classifier, _test_digits()[:N_REFERENCE])[0])
    per_draw = []
    with torch.random.fork_rng():
        for d in range(draws):
            torch.manual_seed(seed + d)
            feats, logits = features_and_logits(classifier, samples_fn(n).detach().cpu().float().clamp(0, 1))
            per_draw.append({"fd": frechet_distance(feature_statistics(feats), reference), **class_entropy(logits)})
    return {k: mean_se([row[k] for row in per_draw]) for k in per_draw[0]}


def _labelled(root=CACHE, train: bool = True):
    """Official MNIST digits in [0, 1] ``(N, 784)`` and labels, read by torchvision from the idx files."""
    import torchvision.datasets
    d = torchvision.datasets.MNIST(str(root), train=train, download=False)
    return d.data.reshape(len(d.data), -1).float() / 255, d.targets


def _test_digits(root=CACHE) -> torch.Tensor:
    """The official 10,000 test digits in [0, 1], in their official order (:func:`asvae_lib.data.load`'s)."""
    from .data import load
    return load("mnist", "full", root=root).test.float() / 255


def fit(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 2, seed: int = 0,
        batch_size: int = BATCH_SIZE, lr: float = LR) -> nn.Module:
    """Adam on the cross-entropy, fixed-seed shuffling, a tqdm bar per epoch."""
    from tqdm.auto import tqdm
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(classifier.parameters(), lr=lr)
    classifier.train()
    for epoch in range(epochs):
        bar = tqdm(torch.randperm(len(x), generator=g).split(batch_size), desc=f"classifier epoch {epoch + 1}")
        for i in bar:
            loss = F.cross_entropy(classifier(x[i]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return classifier.eval()


@torch.no_grad()
def accuracy(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return (features_and_logits(classifier, x)[1].argmax(-1) == y).double().mean().item()


def train_classifier(epochs: int = 3, seed: int = 0, root=CACHE, out=CLASSIFIER) -> dict:
    """Train :class:`Classifier` on the 60,000 official training digits, test it on the official
    10,000, save its weights to ``out`` and its record to ``out`` with ``.json``; returns the record."""
    from .experiments import provenance
    x, y = _labelled(root, train=True)
    x_test, y_test = _labelled(root, train=False)
    if not torch.equal(x_test, _test_digits(root)):
        raise ValueError("torchvision's MNIST test digits are not asvae_lib.data.load's test split, row for row")
    torch.manual_seed(seed)
    classifier = Classifier()
    start = time.perf_counter()
    fit(classifier, x, y, epochs, seed)
    seconds = time.perf_counter() - start
    record = {"test_accuracy": accuracy(classifier, x_test, y_test), "n_test": len(y_test), "n_train": len(y),
              "epochs": epochs, "seed": seed, "batch_size": BATCH_SIZE, "lr": LR, "optimizer": "Adam",
              "n_params": sum(p.numel() for p in classifier.parameters()), "train_seconds": seconds,
              "architecture": "conv5x5(16)-relu-pool2, conv5x5(32)-relu-pool2, linear(64)-relu [features], linear(10)",
              "data": f"official MNIST training digits (60,000) and test digits (10,000), idx files in {root}",
              "provenance": provenance(torch.device("cpu"))}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(classifier.state_dict(), out)
    Path(out).with_suffix(".json").write_text(json.dumps(record, indent=1))
    return record


def load_classifier(path=CLASSIFIER) -> Classifier:
    """The stored :class:`Classifier`, in eval mode on the CPU."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} is missing: train it with  python -m asvae_lib.sample_quality "
                                f"--train-classifier  (a few minutes on one CPU core)")
    classifier = Classifier()
    classifier.load_state_dict(torch.load(path, map_location="cpu"))
    return classifier.eval()


def stored_models(results_dir=RESULTS) -> list:
    """Names of the MNIST full-profile runs with weights: ``mnist-<name>-full.json`` beside a ``.pt``."""
    from .experiments import result_files
    return [p.name[len("mnist-"):-len("-full.json")] for p in result_files(results_dir)
            if p.name.startswith("mnist-") and p.name.endswith("-full.json") and p.with_suffix(".pt").exists()]


def score_stored_models(results_dir=RESULTS, n: int = 2000, draws: int = 5, seed: int = 0, root=CACHE) -> dict:
    """Scores of every :func:`stored_models` run, the real test digits and the no-z baselines, written
    to ``results_dir/mnist-sample-quality.json`` (the record is returned)."""
    from .data import load
    from .experiments import load_trained, provenance
    start = time.perf_counter()
    classifier, data = load_classifier(Path(results_dir) / CLASSIFIER.name), load("mnist", "full", root=root)
    test = data.test.float() / 255
    reference = feature_statistics(features_and_logits(classifier, test[:N_REFERENCE])[0])
    real = test[N_REFERENCE:]
    mean_image = (data.train.double().mean(0) / 255).float()
    samplers = {"test digits": lambda k: real[torch.randperm(len(real))[:k]],
                "no-z (mean image)": lambda k: mean_image.expand(k, -1),
                "no-z (Bernoulli pixels)": lambda k: torch.bernoulli(mean_image.expand(k, -1))}
    runs = {}
    for name in stored_models(results_dir):
        model, result = load_trained("mnist", name, SHAPE, results_dir=results_dir)
        samplers[name] = model.sample
        runs[name] = {"steps": result.steps, "epochs": result.epochs, "train_seconds": result.train_seconds,
                      "stop_reason": result.stop_reason, "date": result.provenance.get("date")}
    scores = {}
    for name, fn in samplers.items():
        t = time.perf_counter()
        scores[name] = {k: {"mean": m, "se": se} for k, (m, se) in
                        score_samples(fn, n, draws, seed, classifier, reference).items()}
        print(f"{name:>24}: " + ", ".join(f"{k} {v['mean']:.4g} ± {v['se']:.2g}" for k, v in scores[name].items())
              + f"  ({time.perf_counter() - t:.1f} s)", flush=True)
    classifier_record = json.loads((Path(results_dir) / CLASSIFIER.name).with_suffix(".json").read_text())
    record = {"n": n, "draws": draws, "seed": seed, "scores": scores, "runs": runs,
              "reference": {"n": N_REFERENCE, "trace_sigma": float(np.trace(reference["sigma"]))},   # fd's scale
              "classifier": {"test_accuracy": classifier_record["test_accuracy"], "file": CLASSIFIER.name},
              "protocol": {"reference": f"features of the official test digits [0, {N_REFERENCE})",
                           "test digits": f"draws of n test digits [{N_REFERENCE}, 10000), without replacement",
                           "models": "model.sample(n): the decoder's mean pixel probabilities at z ~ N(0, I)",
                           "no-z": "independent pixels, each the mean of the 50,000 training digits: its mean image "
                                   "(the same for every z) and Bernoulli draws of it",
                           "se": "std over draws (ddof=1) / sqrt(draws); draw d under torch.manual_seed(seed + d)"},
              "metrics": {"fd": "Frechet distance of the classifier's 64-d features to the reference (torch-fidelity)",
                          "class_score": "exp(E_x KL(p(y|x) || p(y))), the Inception Score's analogue",
                          "h_y_given_x": "E_x H(p(y|x)) in nats", "h_y": "H(p(y)) in nats (log 10 = 2.303 at most)"},
              "seconds": time.perf_counter() - start, "provenance": provenance(torch.device("cpu"))}
    (Path(results_dir) / "mnist-sample-quality.json").write_text(json.dumps(record, indent=1))
    return record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m asvae_lib.sample_quality", description=__doc__.splitlines()[0])
    p.add_argument("--train-classifier", action="store_true", help="train and store results/mnist-classifier.pt")
    p.add_argument("--score", action="store_true", help="score the stored MNIST models: mnist-sample-quality.json")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--n", type=int, default=2000, help="samples per draw")
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    if not (args.train_classifier or args.score):
        p.error("give --train-classifier and/or --score")
    torch.set_num_threads(args.threads)
    if args.train_classifier:
        r = train_classifier(args.epochs, args.seed)
        print(f"test accuracy {r['test_accuracy']:.4f} ({r['n_params']:,} parameters, {r['train_seconds']:.0f} s)")
    if args.score:
        score_stored_models(n=args.n, draws=args.draws, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
