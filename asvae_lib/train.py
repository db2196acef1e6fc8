"""Train one model of Part III, score it, and write its result file.

The chapters on MNIST, CIFAR-10 and ImageNet 32x32 call :func:`run`; so does the
command line, for long runs::

    python -m asvae_lib.train --dataset mnist --method asvae --profile full

Everything that differs between the quick and the full profile is in
:func:`experiment`: sizes and step counts, nothing else. A run lives in
``runs/<profile>/<dataset>/<method>/`` (checkpoints, ``spec.json``,
``result.json``; ``$ASVAE_RUNS`` replaces ``runs/``, as ``make test`` does); starting it again resumes from ``last.pt``, and a finished run
only loads its checkpoint and re-scores it. The command line also copies the
result file to ``results/``, the record the reproduction chapter reads.
"""
import argparse
import dataclasses
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from . import data as datasets
from . import evaluate, image_metrics, objectives, plots
from .models import conv_asvae, mlp_asvae
from .profile import PROFILES, profile as active_profile
from .trainer import RunFolderBusy, TrainConfig, Trainer, TrainingInterrupted, pick_device

REPO = Path(__file__).resolve().parents[1]


def experiment(dataset: str, profile: str) -> dict:
    """Model, training and evaluation settings of one data set in one profile.

    The paper's choices (section 5.1): Adam at 1e-4, Xavier init, dropout, early
    stopping on the validation reconstruction losses; planar flows of length 80 on
    MNIST, Gaussian encoder and decoder on natural images. Its network sizes and
    batch size were lost with Appendix B: ours are stated here.
    """
    quick = profile == "quick"
    if dataset == "mnist":
        model = dict(kind="mlp", hidden=256 if quick else 500, depth=2, z_dim=16 if quick else 50,
                     flow_length=8 if quick else 80)
        evaluation = dict(iwae_k=50 if quick else 1000, n_test=None)
        train = dict(batch_size=100, max_steps=600 if quick else 1_000_000)
    else:
        model = dict(kind="conv", width=16 if quick else 64, z_dim=32 if quick else 128)
        evaluation = dict(iwae_k=20 if quick else 100, n_test=None, fid_samples=100 if quick else 50_000)
        train = dict(batch_size=64 if quick else 100, max_steps=300 if quick else 1_000_000)
    train.update(lr=1e-3 if quick else 1e-4, eval_every=100 if quick else 2000,
                 checkpoint_every=100 if quick else 2000, patience=0 if quick else 10)
    return dict(dataset=dataset, profile=profile, model=model, train=train, eval=evaluation)


def build_model(spec: dict, shape) -> torch.nn.Module:
    m = spec["model"]
    if m["kind"] == "mlp":
        return mlp_asvae(int(torch.tensor(shape).prod()), m["z_dim"], m["hidden"], m["depth"],
                         m["flow_length"], bernoulli=True)
    return conv_asvae(tuple(shape), m["z_dim"], m["width"])


def to_inputs(x: torch.Tensor) -> torch.Tensor:
    """Stored 8-bit rows -> model inputs: uniform dequantisation, a fresh ``u`` at every call."""
    return datasets.dequantize(x)


def fixed_inputs(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Dequantise once with a fixed seed (validation and test: the same numbers every time)."""
    return datasets.dequantize(x, torch.Generator().manual_seed(seed))


def provenance(device: torch.device) -> dict:
    """Where and with what a result was measured."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    import torchvision
    return {"device": name, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "commit": commit,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def score(model, data: "datasets.ImageData", spec: dict, seed: int) -> dict:
    """Test-set numbers of section 5.1 for one trained model."""
    ev, dim = spec["eval"], data.test.shape[1]
    test = data.test if ev["n_test"] is None else data.test[: ev["n_test"]]
    x = fixed_inputs(test, seed)
    rows = 100_000 if model.device.type == "cuda" else 5_000      # images x k per chunk of the bound
    out = {"n_test": len(x), "rmse": evaluate.rmse(model, x), "seconds_per_image": evaluate.seconds_per_image(model)}
    if spec["dataset"] == "mnist":
        # pixels in [0, 1] are Bernoulli probabilities (section 5.1); the NLL is that of one
        # fixed binarisation of the test images, a proper discrete likelihood in nats
        binary = torch.bernoulli(x, generator=torch.Generator().manual_seed(seed))
        out["nll_elbo_nats"] = -evaluate.log_likelihood_bound(model, binary, 1, rows).mean().item()
        out[f"nll_iwae{ev['iwae_k']}_nats"] = -evaluate.log_likelihood_bound(model, binary, ev["iwae_k"], rows).mean().item()
        return out
    nll = -evaluate.log_likelihood_bound(model, x, 1, rows).mean().item()
    nll_k = -evaluate.log_likelihood_bound(model, x, ev["iwae_k"], rows).mean().item()
    out["bpd_elbo"] = evaluate.bits_per_dim(nll, dim)
    out[f"bpd_iwae{ev['iwae_k']}"] = evaluate.bits_per_dim(nll_k, dim)
    n = ev["fid_samples"]
    real = datasets.images(data.test[:n], data.shape)
    fake = datasets.images(torch.cat([model.sample(min(500, n - i)).float().cpu() for i in range(0, n, 500)]).clamp(0, 1), data.shape)
    fid = image_metrics.fid(real, fake, device=model.device)
    isc = image_metrics.inception_score(fake, device=model.device, download=spec["profile"] == "full")
    for metric in (fid, isc):
        out[metric.name] = dataclasses.asdict(metric)
    return out


def run_folder(dataset: str, method: str, profile: str | None = None, runs_dir=None) -> Path:
    """``runs/<profile>/<dataset>/<method>/`` (``$ASVAE_RUNS`` or ``runs_dir`` replace ``runs/``)."""
    root = Path(runs_dir or os.environ.get("ASVAE_RUNS") or REPO / "runs")
    return root / (profile or active_profile()) / dataset / method


def run(dataset: str, method: str, profile: str | None = None, runs_dir=None, seed: int = 0,
        max_minutes: float = 0.0, device: str = "auto", progress: bool = True):
    """Train (or resume, or just load) one model and score it.

    Returns ``(model, result, trainer)``; the result is also written to the run's
    ``result.json``. The model returned holds the weights of the best validation
    score (early stopping), which are the ones scored.
    """
    # everything that can be checked is checked before the run folder is touched
    profile = profile or active_profile()
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r}: choose one of {PROFILES}")
    objectives.check_method(method)
    if not max_minutes >= 0:
        raise ValueError(f"max_minutes {max_minutes} (--max-minutes): give 0 (no cap) or a positive number of minutes")
    pick_device(device)
    spec = experiment(dataset, profile)
    run_dir = run_folder(dataset, method, profile, runs_dir)
    _check_spec(run_dir, spec)
    data = datasets.load(dataset, profile, root=REPO / "data" / "cache")

    torch.manual_seed(seed)
    model = build_model(spec, data.shape)
    cfg = TrainConfig(method=method, seed=seed, device=device, max_minutes=max_minutes, **spec["train"])
    trainer = Trainer(model, cfg, data.train, fixed_inputs(data.val, seed), run_dir, progress, transform=to_inputs)
    trainer.data = data                     # kept for the caller's pictures (no second load)
    _make_run_folder(run_dir, spec)         # only now: the checkpoint, if any, fitted the model
    trainer.fit()
    if (run_dir / "best.pt").exists():
        model.load_state_dict(torch.load(run_dir / "best.pt", map_location=trainer.device, weights_only=False)["model"])
    result = {"dataset": dataset, "method": method, "profile": profile, "seed": seed,
              "data_source": data.source, "stand_in": data.stand_in, **provenance(trainer.device),
              "spec": spec, "steps": trainer.step, "epochs": trainer.epoch, "train_seconds": trainer.seconds,
              "seconds_per_epoch": trainer.seconds / max(trainer.epoch, 1e-9), "stop_reason": trainer.stop_reason,
              "best_step": _best_step(trainer), "metrics": score(model, data, spec, seed)}
    (run_dir / "result.json").write_text(json.dumps(result, indent=1))
    return model, result, trainer


def _check_spec(run_dir: Path, spec: dict) -> None:
    """A run folder belongs to one experiment: refuse to resume it with other settings."""
    path = run_dir / "spec.json"
    if path.exists() and json.loads(path.read_text()) != spec:
        raise ValueError(f"{run_dir} holds a run with other settings than {spec}; "
                         f"delete that folder or pass another --runs directory")


def _make_run_folder(run_dir: Path, spec: dict) -> None:
    """Create the run folder, prove it writable, and record the experiment in its ``spec.json``."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir):
            pass
    except OSError as error:
        raise ValueError(f"cannot write the run folder {run_dir} ({error.strerror}): "
                         f"pass a writable folder with --runs (runs_dir=) or $ASVAE_RUNS") from error
    (run_dir / "spec.json").write_text(json.dumps(spec, indent=1))


def _best_step(trainer) -> int | None:
    scored = [(e["rec_x"] + e["rec_z"], e["step"]) for e in trainer.evals]
    return min(scored)[1] if scored else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m asvae_lib.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, choices=datasets.DATASETS)
    p.add_argument("--method", required=True, choices=objectives.METHODS)
    p.add_argument("--profile", choices=PROFILES, default=None, help="default: $ASVAE_PROFILE, else quick")
    p.add_argument("--runs", default=None, help="run folders go under here (default: runs/)")
    p.add_argument("--results", default=str(REPO / "results"), help="where the result file is copied")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=0.0, help="stop after this much training time (0: no cap)")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    try:
        model, result, trainer = run(args.dataset, args.method, args.profile, args.runs, args.seed, args.max_minutes,
                                     args.device)
    except TrainingInterrupted as e:        # Ctrl-C or SIGTERM: last.pt was saved at the step reached
        command = shlex.join(["python", "-m", "asvae_lib.train", *(sys.argv[1:] if argv is None else argv)])
        print(f"{e.what}: saved {e.checkpoint}; to resume, run the same command again: {command}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:               # Ctrl-C outside training (loading, scoring): nothing is lost
        print("interrupted; the run folder keeps every checkpoint written: run the same command again",
              file=sys.stderr)
        return 128 + 2
    except (datasets.DataUnavailable, RunFolderBusy, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.results) / f"{args.dataset}-{args.method}-{result['profile']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    data = trainer.data
    fig = plots.samples_and_reconstructions(model, fixed_inputs(data.test[:30], args.seed), data.shape,
                                            f"{args.method}, {args.dataset} ({result['profile']})")
    fig.savefig(out.with_suffix(".png"), dpi=80)
    plt.close(fig)
    print(json.dumps(result["metrics"], indent=1))
    print(f"result written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
