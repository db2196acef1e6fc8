"""The 2-D experiments of chapter 6: which settings, one run, and the result files.

Every configuration trains the same small networks (``mlp_asvae(2, 2, hidden=64)``,
a narrow encoder start) on a many-mode mixture, and is scored at several points of
training, so a reader sees whether it had flattened out:

* ``DATASETS``: the 5 x 5 grid and the ring of 8 Gaussians;
* ``CONFIGS``: the paper's methods, both readings of the x-side KL, the book's
  ``asvae-pathwise`` variant (not the paper's), ALI with its authors' toy settings,
  the ablations of AS-VAE (discriminator steps, capacity, learning rate, the
  z-side reconstruction's pull on the decoder), and the AS-VAE methods under reading B
  of the game (12) at the weights ``SADDLE_LAMS`` (names ending in ``, B``);
* ``SCAN`` (the short scan of reading B's weight, :func:`best_lam`) and ``LONG`` (the ring
  at twice the steps) are result folders beside ``RESULTS``;
* the verdict: :func:`bar_parts` (a collapsed encoder, :func:`collapsed`, never passes the
  reconstruction half), :func:`verdict`, :func:`balance_row`, :func:`works_row`;
* :func:`run` trains one (dataset, configuration, seed) and returns a record;
  :func:`save` / :func:`load` keep records as ``results/toy2d/<dataset>/<config>-seed<k>.json``
  with settings, provenance and the evaluation history;
* ``python -m asvae_lib.toy2d --dataset grid --configs vae asvae --seeds 0 1 2 3 4``
  runs a sweep, skipping records already on disk (so an interrupted sweep resumes),
  ``--jobs 2`` in parallel processes.
"""
import argparse
import json
import math
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path

import torch

from .experiments import REPO, provenance
from .metrics2d import (
    grid_centres,
    mmd_rbf,
    mode_coverage,
    moment_kl_to_standard,
    reconstruction_error,
    ring_centres,
    sample_mixture,
)
from .models import mlp_asvae
from .objectives import elbo
from .trainer import TrainConfig, Trainer, TrainingDiverged, TrainingInterrupted

RESULTS = REPO / "results" / "toy2d"
SCAN = REPO / "results" / "toy2d-scan"          # the short scan that chose reading B's lam (best_lam)
LONG = REPO / "results" / "toy2d-long"          # the ring at twice the steps: does reading B still improve?
STD = 0.05
DATASETS = {"grid": lambda: grid_centres(5, spacing=1.0), "ring": lambda: ring_centres(8, radius=2.0)}
N_TRAIN, N_VAL, N_GEN = 5000, 1000, 5000
HIDDEN, BATCH, INIT = 64, 256, -5.0
STEPS, LR = 12000, 1e-3
MARKS = (500, 1000, 2000, 4000, 8000, 12000)        # steps at which a run is scored

SADDLE_LAMS = (1.0, 0.3, 3.0, 10.0)              # reading B's weights: the plain saddle and a scan


def saddle_config(name: str, lam: float) -> str:
    """The name of configuration ``name`` played under reading B with weight ``lam``."""
    return f"{name}, B{'' if lam == 1 else f', lam={lam:g}'}"


_ADAM_ALI = {"beta1": 0.5}                      # ALICE's toy code: Adam(1e-3, beta1=0.5)
CONFIGS = {
    "vae": {"method": "vae"},
    # ALI with its authors' optimiser; 5 discriminator steps per step (with ALICE's own ratio,
    # 5 generator steps per discriminator step, the discriminator stays at chance here: last config)
    "ali": {"method": "ali", **_ADAM_ALI, "disc_steps": 5},
    "asvae-r": {"method": "asvae-r"},
    "asvae-g": {"method": "asvae-g"},
    "asvae": {"method": "asvae"},
    "asvae, kl_weight=0": {"method": "asvae", "kl_weight": 0.0},
    "asvae-pathwise": {"method": "asvae-pathwise"},
    # ablations of AS-VAE (kl_weight 1)
    "asvae, 5 disc steps": {"method": "asvae", "disc_steps": 5},
    "asvae, disc hidden 256": {"method": "asvae", "disc_hidden": 256},
    "asvae, disc lr x3": {"method": "asvae", "disc_lr": 3 * LR},
    "asvae, ALI's Adam": {"method": "asvae", **_ADAM_ALI},
    "asvae, rec_z not to decoder": {"method": "asvae", "rec_z_to_decoder": False},
    "asvae-pathwise, 5 disc steps": {"method": "asvae-pathwise", "disc_steps": 5},
    "ali, ALICE's 1:5": {"method": "ali", **_ADAM_ALI, "gen_steps": 5},
    # reading B of the game (12): the saddle, theta and phi also fool the discriminators (weight lam)
    **{saddle_config(name, lam): {**base, "reading": "B", "lam": lam}
       for lam in SADDLE_LAMS for name, base in (("asvae", {"method": "asvae"}),
                                                   ("asvae, kl_weight=0", {"method": "asvae", "kl_weight": 0.0}),
                                                   ("asvae-r", {"method": "asvae-r"}),
                                                   ("asvae-g", {"method": "asvae-g"}))},
}
MAIN = ("vae", "ali", "asvae-r", "asvae-g", "asvae", "asvae, kl_weight=0", "asvae-pathwise")
# reading B of (12), at the plain saddle's lam 1 and at the scan's lam 3 (best_lam)
MAIN_B = tuple(saddle_config(name, lam) for lam in (1.0, 3.0)
               for name in ("asvae-r", "asvae-g", "asvae", "asvae, kl_weight=0"))
_MODEL_KEYS = ("disc_hidden", "dropout")


def data(dataset: str):
    """(centres, train x, validation x, validation labels): fixed draws, the same for every run."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; choose one of {sorted(DATASETS)}")
    centres = DATASETS[dataset]()
    g = torch.Generator().manual_seed(0)
    train_x, _ = sample_mixture(centres, STD, N_TRAIN, g)
    val_x, val_label = sample_mixture(centres, STD, N_VAL, g)
    return centres, train_x, val_x, val_label


def build(config: dict, seed: int):
    """The networks every configuration shares (only the discriminators' width may differ)."""
    torch.manual_seed(seed)
    return mlp_asvae(2, 2, hidden=HIDDEN, depth=2, encoder_log_var_init=INIT, disc_hidden=config.get("disc_hidden"),
                     dropout=config.get("dropout", 0.2),
                     joint_discriminator=config["method"] == "asvae-pathwise")


@torch.no_grad()
def measure(model, centres, val_x) -> dict:
    """Generation, reconstruction and inference measures of chapter 6, on fixed random draws.

    It re-seeds the global random generator, so the course of a run depends on where it
    is scored: runs are reproduced, and compared, at the same scoring steps (``MARKS``)."""
    model.eval()
    torch.manual_seed(12345)
    samples = model.sample(N_GEN)
    draws = model.decoder.rsample(model.sample_prior(N_GEN))
    cov, cov_draw = mode_coverage(samples, centres, STD), mode_coverage(draws, centres, STD)
    z_val = model.encoder.rsample(val_x)
    out = {"modes": cov["modes"], "good": cov["good"], "good (draws)": cov_draw["good"],
           "rec. error": reconstruction_error(val_x, model.reconstruct(val_x)),
           "moment KL": moment_kl_to_standard(z_val), "MMD^2": mmd_rbf(z_val, torch.randn(len(z_val), 2)),
           "enc. std": (0.5 * model.encoder.base(val_x)[1]).exp().mean().item(),
           "ELBO": elbo(model, val_x).item()}
    model.train()
    worst = {"ELBO": -math.inf}                # a diverged model's NaNs count as the worst value
    return {k: v if math.isfinite(v) else worst.get(k, math.inf) for k, v in out.items()}


def run(dataset: str, name: str, seed: int, steps: int = STEPS, marks=MARKS, progress: bool = False,
        keep_model: bool = False, run_dir: Path | None = None) -> dict:
    """Train configuration ``name`` on ``dataset`` with ``seed`` for ``steps`` steps; score it at ``marks``.
    With ``keep_model`` the record also holds the trained model (key ``model``, not saved as JSON).

    With a ``run_dir`` the run keeps checkpoints there and its curve in ``curve.json``, and an
    interrupted run resumes where it stopped, to the same record: :func:`measure` re-seeds the
    random generator, so a run resumed at a mark measures it again and continues exactly."""
    config = CONFIGS[name]
    centres, train_x, val_x, _ = data(dataset)
    model = build(config, seed)
    settings = {k: v for k, v in config.items() if k not in _MODEL_KEYS}
    cfg = TrainConfig(lr=LR, batch_size=BATCH, max_steps=0, eval_every=250, seed=seed, device="cpu", **settings)
    trainer = Trainer(model, cfg, train_x, val_x, run_dir, progress=progress)
    saved = run_dir / "curve.json" if run_dir is not None else None
    curve = [c for c in json.loads(saved.read_text()) if c["step"] < trainer.step] if saved and saved.exists() else []
    start, diverged = time.time(), None
    for mark in [m for m in marks if m < steps] + [steps]:
        if mark < trainer.step:                    # measured before the run was interrupted (in curve.json)
            continue
        trainer.config.max_steps = mark
        try:
            trainer.fit()
        except TrainingDiverged as error:          # a failed run is a result too: scored where it stopped
            diverged = {"step": trainer.step, "message": str(error).split(";")[0]}
            curve.append({"step": trainer.step, **measure(trainer.model, centres, val_x)})
            break
        curve.append({"step": mark, **measure(trainer.model, centres, val_x)})
        if saved is not None:
            saved.with_suffix(".tmp").write_text(json.dumps(curve))
            saved.with_suffix(".tmp").replace(saved)
    last = trainer.history[-50:]
    disc = {k: sum(r.get(k, math.nan) for r in last) / len(last) for k in last[0]
            if k.startswith("loss_") and k != "loss_gen"}
    return {"dataset": dataset, "config": name, "seed": seed, "settings": {**config, "lr": LR, "batch_size": BATCH,
            "hidden": HIDDEN, "encoder_log_var_init": INIT, "steps": steps, "n_train": N_TRAIN},
            "final": curve[-1], "curve": curve, "evals": trainer.evals, "diverged": diverged,
            "discriminator_loss_last50": disc, "seconds": time.time() - start, **provenance(torch.device("cpu")),
            **({"model": trainer.model} if keep_model else {})}


def path(dataset: str, name: str, seed: int, root: Path = RESULTS) -> Path:
    slug = "".join(c if c.isalnum() or c == "-" else "_" for c in name)
    return Path(root) / dataset / f"{slug}-seed{seed}.json"


def save(record: dict, root: Path = RESULTS) -> Path:
    """Write the record as JSON, and the model's weights beside it (``.pt``) if it holds one."""
    out = path(record["dataset"], record["config"], record["seed"], root)
    out.parent.mkdir(parents=True, exist_ok=True)
    record = dict(record)
    model = record.pop("model", None)
    if model is not None:
        torch.save(model.state_dict(), out.with_suffix(".pt.tmp"))
        out.with_suffix(".pt.tmp").replace(out.with_suffix(".pt"))
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(out)
    return out


def load_model(dataset: str, name: str, seed: int = 0, root: Path = RESULTS):
    """The trained networks of a stored run (weights are kept for seed 0), ready to sample."""
    weights = path(dataset, name, seed, root).with_suffix(".pt")
    if not weights.exists():
        raise FileNotFoundError(f"{weights} is missing: run python -m asvae_lib.toy2d --dataset {dataset} "
                                f"--configs '{name}' --seeds {seed} --redo")
    model = build(CONFIGS[name], seed)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()


def load(dataset: str, root: Path = RESULTS) -> dict:
    """``{(config, seed): record}`` for every stored run on ``dataset``."""
    records = [json.loads(p.read_text()) for p in sorted((Path(root) / dataset).glob("*.json"))]
    return {(r["config"], r["seed"]): r for r in records}


def summary(records: dict, name: str, key: str) -> tuple:
    """(median, min, max) of a final measure over the seeds of one configuration."""
    values = torch.tensor([float(r["final"][key]) for (c, _), r in records.items() if c == name])
    if not len(values):
        raise KeyError(f"no stored runs of {name!r}: run python -m asvae_lib.toy2d first")
    return values.median().item(), values.min().item(), values.max().item()


def run_folder(dataset: str, name: str, seed: int) -> Path:
    """Where a sweep's run keeps its checkpoints until its record is saved: under ``$ASVAE_RUNS``
    (else ``runs/``), ``toy2d/<dataset>/<config>-seed<k>``."""
    root = Path(os.environ.get("ASVAE_RUNS") or REPO / "runs")
    return root / "toy2d" / path(dataset, name, seed, root).relative_to(root).with_suffix("")


def _job(args):
    dataset, name, seed, steps, root = args
    torch.set_num_threads(1)
    folder = run_folder(dataset, name, seed)
    record = run(dataset, name, seed, steps, keep_model=seed == 0, run_dir=folder)
    save(record, root)
    shutil.rmtree(folder, ignore_errors=True)        # the record is the result; the checkpoints have done their job
    f = record["final"]
    return f"{dataset:5s} {name:30s} seed {seed}: modes {f['modes']:2d} good {f['good']:.3f} " \
           f"rec {f['rec. error']:.4f} ({record['seconds']:.0f} s)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m asvae_lib.toy2d", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", nargs="+", default=["grid"], choices=sorted(DATASETS))
    p.add_argument("--configs", nargs="+", default=list(MAIN), help=f"names from {list(CONFIGS)}, or 'all'")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--steps", type=int, default=STEPS)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--redo", action="store_true", help="run again even where a record exists")
    args = p.parse_args(argv)
    names = list(CONFIGS) if args.configs == ["all"] else args.configs
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        p.error(f"unknown configuration(s) {unknown}; choose from {list(CONFIGS)}")
    todo = [(d, n, s, args.steps, Path(args.out)) for d in args.dataset for n in names for s in args.seeds
            if args.redo or not path(d, n, s, args.out).exists()]
    print(f"{len(todo)} runs to do", flush=True)
    try:
        if args.jobs > 1:
            with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
                for line in pool.imap_unordered(_job, todo):
                    print(line, flush=True)
        else:
            for job in todo:
                print(_job(job), flush=True)
    except TrainingInterrupted as e:
        print(f"{e.what}: {e.saved}; the finished runs are in {args.out}: run the same command again to go on",
              file=sys.stderr)
        return 128 + e.signum
    return 0


if __name__ == "__main__":
    sys.exit(main())


# ----- the verdict of chapter 6 (and chapter 10) ------------------------------------------------
COLLAPSE_STD = 2 * math.exp(-9.0 / 2)   # twice the encoder's smallest sd (models.GaussianConditional's clamp)


def collapsed(scores: dict) -> bool:
    """The encoder sits on its log-variance clamp: its mean sd on the validation data is
    within twice the clamp's ``exp(-4.5) = 0.0111``, a code that is a point, not a distribution."""
    return scores["enc. std"] < COLLAPSE_STD


def bar_parts(record: dict, vae_record: dict, n_modes: int, at: dict | None = None,
              vae_at: dict | None = None) -> tuple:
    """The three parts of the bar for "AS-VAE works" on one seed: at least 80% of the modes
    covered (20 of 25), at least half the samples good, a reconstruction error below the
    VAE's (same seed) by an encoder that has not collapsed onto its clamp (:func:`collapsed`).
    ``at`` and ``vae_at`` score other points of the runs' curves (default: the final ones)."""
    f, v = at or record["final"], vae_at or vae_record["final"]
    return f["modes"] >= 0.8 * n_modes, f["good"] >= 0.5, f["rec. error"] < v["rec. error"] and not collapsed(f)


def at_step(record: dict, step: int) -> dict:
    """The scores of a run at one of its scoring steps (``MARKS``)."""
    return next(c for c in record["curve"] if c["step"] == step)


def best_lam(scan: dict, vae: dict, n_modes: dict, step: int, name: str = "asvae") -> tuple:
    """Reading B's weight chosen by the short scan: the ``lam`` whose runs of ``name`` pass most
    parts of the bar (:func:`bar_parts`, against the VAE's run of the same seed at the same
    ``step``) summed over data sets and seeds; ties go to the higher median share of the modes
    covered, then to the higher median good share (the bar's own order).
    ``scan`` and ``vae``: ``{dataset: {(config, seed): record}}``.
    Returns (lam, {lam: (parts, median mode share, median good share)})."""
    table = {}
    for lam in SADDLE_LAMS:
        config = saddle_config(name, lam)
        parts, shares, goods = 0, [], []
        for dataset, records in scan.items():
            for (c, seed), r in records.items():
                if c == config and ("vae", seed) in vae[dataset]:
                    v, scores = vae[dataset][("vae", seed)], at_step(r, step)
                    parts += sum(bar_parts(r, v, n_modes[dataset], scores, at_step(v, step)))
                    shares.append(scores["modes"] / n_modes[dataset])
                    goods.append(scores["good"])
        if goods:
            table[lam] = (parts, torch.tensor(shares).median().item(), torch.tensor(goods).median().item())
    return max(table, key=lambda lam: table[lam]), table


def works(record: dict, vae_record: dict, n_modes: int) -> bool:
    """All three parts of the bar (:func:`bar_parts`) on one seed."""
    return all(bar_parts(record, vae_record, n_modes))


def seeds_that_work(records: dict, name: str, n_modes: int) -> list:
    return [s for (c, s), r in sorted(records.items()) if c == name and ("vae", s) in records
            and works(r, records[("vae", s)], n_modes)]


READINGS_2D = {"A": "", "B, lam 1": ", B", "B, lam 3": ", B, lam=3"}   # reading of (12) -> configuration suffix


def _median(records: dict, name: str, key: str) -> float:
    return summary(records, name, key)[0]


def _fmt(records: dict, name: str, key: str) -> str:
    return "{:.3g} [{:.3g}, {:.3g}]".format(*summary(records, name, key))


def _row(claim: str, reading: str, measure: str, held: bool) -> dict:
    return {"claim": claim, "reading": reading, "measure": measure, "verdict": "held" if held else "not held"}


def balance_row(records: dict, name: str, reading: str) -> dict:
    """"AS-VAE achieves a good balance": its median reconstruction error below the VAE's, by
    encoders fewer than half of which collapsed (:func:`collapsed`), and a median good share at
    least the VAE's; ``records`` must hold the VAE's runs of the same length."""
    def med(n, key):
        return _median(records, n, key)
    runs = [r["final"] for (c, _), r in records.items() if c == name]
    k = sum(collapsed(f) for f in runs)
    held = med(name, "rec. error") < med("vae", "rec. error") and 2 * k < len(runs) and \
        med(name, "good") >= med("vae", "good")
    return _row("AS-VAE balances both: reconstructs better than the VAE, generates as well", reading,
                f"rec. error {_fmt(records, name, 'rec. error')} ({k} of {len(runs)} encoders collapsed), good "
                f"{_fmt(records, name, 'good')} (VAE {med('vae', 'rec. error'):.3g}, {med('vae', 'good'):.3g})", held)


def works_row(records: dict, name: str, reading: str, n_modes: int, label: str | None = None) -> dict:
    """The bar for "AS-VAE works" (:func:`bar_parts`) met on at least 80% of the seeds of ``name``."""
    ok, total = seeds_that_work(records, name, n_modes), sum(1 for c, _ in records if c == name)
    return _row(f"{label or name} works: >= 80% modes, >= half good, rec. below the VAE's (no collapse)",
                reading, f"{len(ok)} of {total} seeds", total > 0 and len(ok) >= 0.8 * total)


def verdict(records: dict, n_modes: int, chance_good: float) -> list:
    """The paper's claims about the methods, each judged on the medians over seeds, under each
    reading of the game (12) that has stored runs (``READINGS_2D``).

    Returns rows ``{"claim", "reading", "measure", "verdict"}``; ``reading`` is "A", "B, lam 1",
    "B, lam 3" or "-" (the VAE and ALI play no game of (11)); ``verdict`` is "held", "not held"
    or "not testable here" (a baseline that did not learn cannot support a claim about it).
    """
    def med(name, key):
        return _median(records, name, key)

    def fmt(name, key):
        return _fmt(records, name, key)

    rows = []
    for reading, suffix in READINGS_2D.items():
        r_name, g_name, name = f"asvae-r{suffix}", f"asvae-g{suffix}", f"asvae{suffix}"
        # AS-VAE-r: "an ML-based method which focuses on reconstruction": like the VAE
        if (r_name, 0) in records:
            held = med(r_name, "rec. error") < 2 * med("vae", "rec. error") and \
                abs(med(r_name, "ELBO") - med("vae", "ELBO")) < 0.3
            rows.append(_row("AS-VAE-r is ML-like (reconstructs and bounds the likelihood like the VAE)", reading,
                             f"rec. error {fmt(r_name, 'rec. error')} vs VAE {fmt('vae', 'rec. error')}; "
                             f"ELBO {med(r_name, 'ELBO'):.2f} vs {med('vae', 'ELBO'):.2f}", held))
        # AS-VAE-g: "designed for generation": generates better than the VAE
        if (g_name, 0) in records:
            held = med(g_name, "good") > med("vae", "good") and med(g_name, "modes") >= med("vae", "modes")
            rows.append(_row("AS-VAE-g generates better than the VAE", reading,
                             f"good {fmt(g_name, 'good')} vs VAE {fmt('vae', 'good')}; "
                             f"modes {med(g_name, 'modes'):.0f} vs {med('vae', 'modes'):.0f}", held))
        # AS-VAE: "a good balance": reconstructs better than the VAE (without collapse), generates as well
        if (name, 0) in records:
            rows.append(balance_row(records, name, reading))
    # the VAE's samples are "unspecific and/or blurry": many samples off the data
    rows.append(_row("the VAE's samples fall off the data", "-",
                     f"good {fmt('vae', 'good')} (data 0.99, chance {chance_good:.3f})", med("vae", "good") < 0.5))
    # ALI reconstructs "related to but not faithful": only testable if ALI learned to generate
    ali_learned = med("ali", "good") > chance_good + 0.05
    held = med("ali", "rec. error") > 5 * med("asvae", "rec. error")
    rows.append({"claim": "ALI's reconstructions are not faithful (worse than AS-VAE's)", "reading": "-",
                 "measure": f"rec. error {fmt('ali', 'rec. error')} vs AS-VAE {fmt('asvae', 'rec. error')}; "
                            f"ALI good {fmt('ali', 'good')}",
                 "verdict": ("held" if held else "not held") if ali_learned else
                 "not testable here (ALI did not learn)"})
    # the bar for "AS-VAE works", under each reading
    for reading, suffix in READINGS_2D.items():
        for base in ("asvae", "asvae, kl_weight=0", "asvae-r") + (("asvae-pathwise",) if reading == "A" else ()):
            if (base + suffix, 0) in records:
                rows.append(works_row(records, base + suffix, reading, n_modes, label=base))
    return rows
