"""Train one model of Part III, score it, and keep its result.

The chapters on MNIST, CIFAR-10 and ImageNet 32x32 call :func:`run`; so does the
command line, for long runs::

    python -m asvae_lib.train --dataset mnist --method asvae --profile full

What is run is an :class:`~asvae_lib.experiments.Experiment` (sizes and step counts of
the profile, nothing else). A run lives in ``runs/<profile>/<dataset>/<name>/``, its name
the method with its reading of (12) and seed (:func:`~asvae_lib.experiments.run_name`)
(checkpoints, ``spec.json``, ``result.json``; ``$ASVAE_RUNS`` replaces ``runs/``, as
``make test`` does); starting it again resumes from ``last.pt``, and a finished run only
loads its checkpoint and re-scores it. The command line also copies the result file,
and the encoder's and decoder's weights, to ``results/``, the record the chapters read.
"""
import argparse
import contextlib
import json
import math
import os
import pickle
import shlex
import sys
import tempfile
import zipfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from . import data as datasets
from . import evaluate, experiments, objectives, plots
from .experiments import REPO, RunResult
from .profile import PROFILES, smoke
from .profile import profile as active_profile
from .trainer import (
    CheckpointUnreadable,
    CheckpointWriteFailed,
    RunFolderBusy,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    TrainingInterrupted,
    pick_device,
)


def run_folder(dataset: str, name: str, profile: str | None = None, runs_dir=None) -> Path:
    """``runs/<profile>/<dataset>/<name>/`` for a :func:`~asvae_lib.experiments.run_name`
    (``$ASVAE_RUNS`` or ``runs_dir`` replace ``runs/``);
    the full profile's smoke test keeps its runs apart, in ``runs/full-smoke/``."""
    root = Path(runs_dir or os.environ.get("ASVAE_RUNS") or REPO / "runs")
    profile = profile or active_profile()
    return root / (f"{profile}-smoke" if profile == "full" and smoke() else profile) / dataset / name


def run(dataset: str, method: str, profile: str | None = None, runs_dir=None, seed: int = 0,
        max_minutes: float = 0.0, device: str = "auto", progress: bool = True, scored: bool = True,
        iwae_ks: tuple | None = None, experiment: "experiments.Experiment | None" = None,
        reading: str = "A", lam: float = 1.0, lr: float | None = None):
    """Train (or resume, or just load) one model and score it.

    Returns ``(model, result, trainer)``; the result is also written to the run's
    ``result.json``. The model returned holds the weights of the best validation
    score (early stopping), which are the ones scored. ``scored=False`` skips the
    test-set scoring (for a long run trained in slices: score once, at the end);
    the result then has no ``metrics``. ``iwae_ks`` replaces the experiment's ``k`` of the
    importance-weighted bound (evaluation only; the result records the ones used).
    ``experiment`` replaces the profile's experiment (for a changed model or schedule;
    give it its own ``runs_dir``: a run folder refuses another experiment's settings).
    ``reading`` and ``lam`` choose the reading of the game (12) (:mod:`asvae_lib.objectives`);
    ``lr`` replaces the profile's learning rate (and names the run, :func:`~asvae_lib.experiments.run_name`).
    """
    # everything that can be checked is checked before the run folder is touched
    profile = profile or active_profile()
    if profile not in PROFILES:
        raise ValueError(f"profile {profile!r}: choose one of {PROFILES}")
    objectives.check_method(method)
    objectives.check_reading(reading, method)
    if not max_minutes >= 0:
        raise ValueError(f"max_minutes {max_minutes} (--max-minutes): give 0 (no cap) or a positive number of minutes")
    pick_device(device)
    spec = experiment or experiments.experiment(dataset, profile)
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"learning rate {lr} (--lr): give a finite number > 0, e.g. 1e-4")
    if lr is not None and lr != spec.train.lr:
        spec = spec.changed(train={"lr": lr})
    else:
        lr = None
    if iwae_ks is not None:
        if not iwae_ks or any(not isinstance(k, int) or k < 1 for k in iwae_ks):
            raise ValueError(f"--iwae-ks {' '.join(map(str, iwae_ks))}: give whole numbers >= 1, e.g. 1000 5000")
        spec = spec.changed(eval={"iwae_ks": tuple(iwae_ks)})
    cfg = TrainConfig(method=method, seed=seed, device=device, max_minutes=max_minutes, reading=reading, lam=lam,
                      **spec.train.__dict__).check()
    run_dir = run_folder(dataset, experiments.run_name(method, reading, lam, seed, lr), profile, runs_dir)
    _check_spec(run_dir, spec)
    data = datasets.load(dataset, profile, root=REPO / "data" / "cache")

    torch.manual_seed(seed)
    model = spec.build_model(data.shape, method)
    trainer = Trainer(model, cfg, data.train, datasets.fixed_dequantize(data.val, seed), run_dir, progress,
                      transform=datasets.dequantize)
    trainer.data = data                     # kept for the caller's pictures (no second load)
    _make_run_folder(run_dir, spec)         # only now: the checkpoint, if any, fitted the model
    trainer.fit()
    if (run_dir / "best.pt").exists():
        model.load_state_dict(_best_weights(run_dir / "best.pt", trainer.device))
    result = RunResult(dataset, method, profile, seed, data.source, data.stand_in, spec,
                       experiments.provenance(trainer.device), trainer.step, trainer.epoch, trainer.seconds,
                       trainer.stop_reason, _best_step(trainer), reading=reading, lam=lam, evals=trainer.evals)
    if scored:
        result.metrics = evaluate.score(model, data, spec, seed)
        result.save(run_dir / "result.json")
    return model, result, trainer


def _best_weights(path: Path, device) -> dict:
    """The model weights of a run's ``best.pt``; a file that is not one is a CheckpointUnreadable naming it."""
    try:
        return torch.load(path, map_location=device, weights_only=False)["model"]
    except (RuntimeError, EOFError, KeyError, TypeError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise CheckpointUnreadable(f"{path} is truncated, corrupted or not a checkpoint ({type(error).__name__}): "
                                   f"delete it (last.pt keeps the run) and run again to re-evaluate") from None


def _check_spec(run_dir: Path, spec: "experiments.Experiment") -> None:
    """A run folder belongs to one model and one training schedule: refuse to resume it with
    others. (The evaluation settings may change: they do not touch the weights.)"""
    path = run_dir / "spec.json"
    if path.exists():     # read through Experiment: a field added since has its default
        try:
            held = experiments.Experiment.from_dict(json.loads(path.read_text())).to_dict()
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{path} is not a readable experiment ({type(error).__name__}: {error}); "
                             f"restore it, or delete the run folder to start afresh") from None
        wanted = spec.to_dict()
        if any(held[part] != wanted[part] for part in ("dataset", "model", "train")):
            raise ValueError(f"{run_dir} holds a run with other settings than {spec}; "
                             f"delete that folder or pass another --runs directory")


def _make_run_folder(run_dir: Path, spec: "experiments.Experiment") -> None:
    """Create the run folder, prove it writable, and record the experiment in its ``spec.json``."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir):
            pass
        text = json.dumps(spec.to_dict(), indent=1)
        if (run_dir / "spec.json").exists() and (run_dir / "spec.json").read_text() == text:
            return
        (run_dir / "spec.json.tmp").write_text(text)
        os.replace(run_dir / "spec.json.tmp", run_dir / "spec.json")
    except OSError as error:
        with contextlib.suppress(OSError):
            (run_dir / "spec.json.tmp").unlink(missing_ok=True)
        raise ValueError(f"cannot write the run folder {run_dir} ({error.strerror}): free some space there, or "
                         f"pass a writable folder with --runs (runs_dir=) or $ASVAE_RUNS") from error


def _check_results_folder(path: Path) -> None:
    """``--results`` must be a folder this process can write, or one it can create: checked before
    anything is trained, so a bad path costs no work."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"--results {path} is a file, not a folder: give a folder for the result files")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        raise ValueError(f"--results {path}: {existing} is not a folder this process can write; give another")


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
    p.add_argument("--reading", choices=objectives.READINGS, default="A",
                   help="the reading of the game (12): A (default) or B, the saddle (chapter 4, section 10)")
    p.add_argument("--lam", type=float, default=1.0, help="reading B's lambda (chapter 6 picks 3)")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam's learning rate instead of the profile's (the paper's 1e-4 is the reference on a GPU)")
    p.add_argument("--max-minutes", type=float, default=0.0, help="stop after this much training time (0: no cap)")
    p.add_argument("--device", default="auto")
    p.add_argument("--train-only", action="store_true",
                   help="train or resume, keep the checkpoints, skip the test-set scoring "
                        "(run again without it to score)")
    p.add_argument("--iwae-ks", type=int, nargs="+", default=None,
                   help="score the importance-weighted bound at these k instead of the experiment's")
    args = p.parse_args(argv)
    try:
        _check_results_folder(Path(args.results))
        model, result, trainer = run(args.dataset, args.method, args.profile, args.runs, args.seed, args.max_minutes,
                                     args.device, scored=not args.train_only, iwae_ks=args.iwae_ks,
                                     reading=args.reading, lam=args.lam, lr=args.lr)
    except TrainingInterrupted as e:        # Ctrl-C or SIGTERM: last.pt was saved at the step reached
        command = shlex.join(["python", "-m", "asvae_lib.train", *(sys.argv[1:] if argv is None else argv)])
        print(f"{e.what}: {e.saved}; to resume, run the same command again: {command}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:               # Ctrl-C outside training (loading, scoring): nothing is lost
        print("interrupted; the run folder keeps every checkpoint written: run the same command again",
              file=sys.stderr)
        return 128 + 2
    except (datasets.DataUnavailable, RunFolderBusy, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (TrainingDiverged, CheckpointWriteFailed) as e:     # after training started: what was kept, what to do
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.train_only:
        print(f"{result.name}: {result.steps} steps, {result.epochs:.2f} epochs, {result.train_seconds:.0f} s "
              f"of training, stopped by {result.stop_reason}; not scored (--train-only)")
        return 0
    if result.profile == "full" and smoke():
        print(json.dumps(result.metrics, indent=1))
        kept = run_folder(args.dataset, result.name, result.profile, args.runs) / "result.json"
        print(f"smoke test ({result.steps} steps): not a result; it stays in {kept}, not copied to {args.results}")
        return 0
    out = experiments.result_path(args.dataset, result.name, result.profile, args.results)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.save(out)
    experiments.save_weights(model, out.with_suffix(".pt"))
    data = trainer.data
    fig = plots.samples_and_reconstructions(model, datasets.fixed_dequantize(data.test[:30], args.seed), data.shape,
                                            f"{result.name}, {args.dataset} ({result.profile})")
    fig.savefig(out.with_suffix(".png"), dpi=80, bbox_inches="tight")
    plt.close(fig)
    print(json.dumps(result.metrics, indent=1))
    print(f"result written to {out}, weights to {out.with_suffix('.pt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
