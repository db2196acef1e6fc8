"""Part III's experiments: what a run is, what it measured, and where both are kept.

* :class:`Experiment`: one data set in one profile, with its networks (:class:`MLP` or
  :class:`Conv`), its training :class:`Schedule` and its :class:`Evaluation`. The quick
  and the full profile differ here, in sizes and step counts, and nowhere else
  (:func:`experiment`).
* :class:`RunResult`: what :func:`asvae_lib.train.run` measured for one model, with
  where and with what (:func:`provenance`). Result files ``results/<dataset>-<method>-
  <profile>.json`` hold one each; :func:`load_result` reads them, :func:`load_trained`
  rebuilds the trained model from the weights stored beside them.
"""
import dataclasses
import datetime
import json
import math
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .data import REPO
from .models import conv_asvae, mlp_asvae
from .profile import PROFILES, smoke

RESULTS = REPO / "results"


@dataclass(frozen=True)
class MLP:
    """Fully connected encoder, decoder and discriminators; a planar flow of ``flow_length``
    in the encoder, its parameters global or computed from x (``amortised_flow``, as [14]);
    a Bernoulli decoder (MNIST, section 5.2)."""
    hidden: int
    depth: int
    z_dim: int
    flow_length: int
    kind: str = "mlp"
    amortised_flow: bool = False

    def build(self, shape, joint_discriminator: bool = False) -> torch.nn.Module:
        return mlp_asvae(math.prod(shape), self.z_dim, self.hidden, self.depth, self.flow_length, bernoulli=True,
                         amortised_flow=self.amortised_flow, joint_discriminator=joint_discriminator)


@dataclass(frozen=True)
class Conv:
    """Convolutional encoder, decoder and discriminators of base ``width``; Gaussian encoder
    and decoder (CIFAR-10, ImageNet 32x32, section 5.3); the decoder's log-variance
    starts at ``decoder_log_var`` (see :func:`asvae_lib.models.conv_asvae`)."""
    width: int
    z_dim: int
    decoder_log_var: float = 0.0
    kind: str = "conv"

    def build(self, shape, joint_discriminator: bool = False) -> torch.nn.Module:
        if joint_discriminator:
            raise ValueError("the convolutional networks have no joint discriminator g: asvae-pathwise runs on "
                             "MNIST and the 2-D data only")
        return conv_asvae(tuple(shape), self.z_dim, self.width, decoder_log_var=self.decoder_log_var)


@dataclass(frozen=True)
class Schedule:
    """Adam's learning rate, the batch, and when to evaluate, checkpoint and stop early
    (``patience`` evaluations without a better validation score; 0: never); ``share_draws``: one
    draw per network and input for all losses of a step (:class:`asvae_lib.objectives.StepDraws`)."""
    batch_size: int
    max_steps: int
    lr: float
    eval_every: int
    checkpoint_every: int
    patience: int
    share_draws: bool = False


@dataclass(frozen=True)
class Evaluation:
    """Test-set scoring: the importance-weighted bound at each ``k`` of ``iwae_ks`` (and the
    ELBO, ``k = 1``), on the first ``n_test`` test images (None: all); ``fid_samples``
    generated images for FID and the Inception Score (colour data sets only)."""
    iwae_ks: tuple = ()
    n_test: int | None = None
    fid_samples: int | None = None


@dataclass(frozen=True)
class Experiment:
    dataset: str
    profile: str
    model: MLP | Conv
    train: Schedule
    eval: Evaluation

    def build_model(self, shape, method: str | None = None) -> torch.nn.Module:
        """The networks for data of ``shape``; the book's asvae-pathwise also gets its joint discriminator g
        (initialised after the rest, so the other networks start as in every other method)."""
        return self.model.build(shape, joint_discriminator=method == "asvae-pathwise")

    def changed(self, **parts: dict) -> "Experiment":
        """A copy with some fields of its parts changed, e.g. ``spec.changed(model={"flow_length": 0})``."""
        return dataclasses.replace(self, **{part: dataclasses.replace(getattr(self, part), **fields)
                                            for part, fields in parts.items()})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Experiment":
        model = {"mlp": MLP, "conv": Conv}[d["model"]["kind"]](**d["model"])
        ev = dict(d["eval"], iwae_ks=tuple(d["eval"]["iwae_ks"]))
        return cls(d["dataset"], d["profile"], model, Schedule(**d["train"]), Evaluation(**ev))


def experiment(dataset: str, profile: str) -> Experiment:
    """Model, training and evaluation settings of one data set in one profile.

    The paper's choices (section 5.1): Adam at 1e-4, Xavier init, dropout, early
    stopping on the validation reconstruction losses; planar flows of length 80 on
    MNIST, Gaussian encoder and decoder on natural images. Its network sizes and
    batch size were lost with Appendix B: ours are stated here. The full profile's
    smoke test (``ASVAE_SMOKE=1``) caps the full schedule and evaluation, nothing else.
    """
    quick = profile == "quick"
    if dataset == "mnist":
        model = MLP(hidden=256 if quick else 500, depth=2, z_dim=16 if quick else 50, flow_length=8 if quick else 80)
        evaluation = Evaluation(iwae_ks=(50,) if quick else (1000, 5000))
        batch, steps = 100, 600 if quick else 1_000_000
    else:
        # decoder noise sd e^-2 ~ 0.14 at the start, below the pixels' spread: the reconstruction
        # term outweighs the KL from the first step, so the code is used before the KL can close it
        model = Conv(width=16 if quick else 64, z_dim=32 if quick else 128, decoder_log_var=-4.0)
        evaluation = Evaluation(iwae_ks=(20,) if quick else (100,), fid_samples=25 if quick else 50_000)
        batch, steps = 32 if quick else 100, 200 if quick else 1_000_000
    # MNIST's full profile trains at 1e-3, ten times the paper's 1e-4, evaluating every 2 epochs with a
    # patience of 10 evaluations: at 1e-4 no method early-stops inside a day of one CPU core (chapter 7);
    # 1e-4 stays the reference for a GPU (--lr 1e-4)
    cpu_mnist = dataset == "mnist" and not quick
    schedule = Schedule(batch_size=batch, max_steps=steps, lr=1e-3 if quick or cpu_mnist else 1e-4,
                        eval_every=100 if quick else 1000 if cpu_mnist else 2000,
                        checkpoint_every=100 if quick else 1000 if cpu_mnist else 2000,
                        patience=0 if quick else 10, share_draws=True)
    spec = Experiment(dataset, profile, model, schedule, evaluation)
    if profile == "full" and smoke():
        # the smoke test (asvae_lib.profile): the full networks, batch and learning rate, but a
        # handful of steps, evaluated and checkpointed every few, and a few dozen test images scored
        spec = spec.changed(train={"max_steps": 6, "eval_every": 2, "checkpoint_every": 3},
                            eval={"n_test": 40, "iwae_ks": (5, 10) if dataset == "mnist" else (10,),
                                  "fid_samples": None if evaluation.fid_samples is None else 20})
    return spec


def provenance(device: torch.device) -> dict:
    """Where and with what a result was measured."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, check=False,
                                text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")
    import torchvision
    return {"device": name, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "commit": commit,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


@dataclass
class RunResult:
    """What one training run measured. ``metrics`` holds the test-set scores of
    :func:`asvae_lib.evaluate.score` (empty for a run not scored yet)."""
    dataset: str
    method: str
    profile: str
    seed: int
    data_source: str
    stand_in: bool
    experiment: Experiment
    provenance: dict
    steps: int
    epochs: float
    train_seconds: float
    stop_reason: str
    best_step: int | None
    metrics: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)     # anything a reader of the file should know
    reading: str = "A"                            # the reading of the game (12) it was trained under
    lam: float = 1.0                              # reading B's lambda
    evals: list = field(default_factory=list)     # the validation scores early stopping watched, one per evaluation

    @property
    def name(self) -> str:
        """Its :func:`run_name`: what its run folder and result file are called."""
        lr = self.experiment.train.lr
        return run_name(self.method, self.reading, self.lam, self.seed,
                        None if lr == experiment(self.dataset, self.profile).train.lr else lr)

    @property
    def seconds_per_epoch(self) -> float:
        return self.train_seconds / max(self.epochs, 1e-9)

    def nll_nats(self, k: int = 1) -> float:
        """Test NLL in nats from the ELBO (``k = 1``) or the importance-weighted bound (MNIST)."""
        return self.metrics["nll_elbo_nats" if k == 1 else f"nll_iwae{k}_nats"]

    def bits_per_dim(self, k: int = 1) -> float:
        """Test NLL in bits per dimension from the ELBO (``k = 1``) or the bound with ``k`` (colour images)."""
        return self.metrics["bpd_elbo" if k == 1 else f"bpd_iwae{k}"]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunResult":
        return cls(**dict(d, experiment=Experiment.from_dict(d["experiment"])))

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path) -> "RunResult":
        return cls.from_dict(json.loads(Path(path).read_text()))


def run_name(method: str, reading: str = "A", lam: float = 1.0, seed: int = 0, lr: float | None = None) -> str:
    """What names a run in its folder and result file: the method, then reading B of (12)
    with its lambda (``asvae-B3``), a seed other than 0 (``vae-seed1``) and a learning rate
    other than the profile's (``vae-lr0.0001``); the defaults add nothing, so ``vae`` is the
    VAE of reading A, seed 0, at the profile's learning rate."""
    return (method + (f"-B{lam:g}" if reading == "B" else "") + (f"-seed{seed}" if seed else "")
            + (f"-lr{lr:g}" if lr is not None else ""))


# chapter 7's full-profile runs, by run name (make mnist trains them; tests/test_train_cli.py checks the two agree)
MNIST_RUNS = {"vae": "VAE", "asvae": "AS-VAE, reading A", "asvae-B3": "AS-VAE, reading B, lam 3",
              "asvae-r": "AS-VAE-r", "asvae-pathwise": "AS-VAE-pathwise (the book's)", "asvae-g": "AS-VAE-g, reading A",
              "asvae-g-B3": "AS-VAE-g, reading B, lam 3", "vae-seed1": "VAE, seed 1", "vae-seed2": "VAE, seed 2"}


def result_path(dataset: str, name: str, profile: str = "full", results_dir=RESULTS) -> Path:
    """``results/<dataset>-<name>-<profile>.json``; ``name`` is a :func:`run_name`."""
    return Path(results_dir) / f"{dataset}-{name}-{profile}.json"


def result_files(results_dir=RESULTS) -> list:
    """Every run's result file in ``results_dir`` (``<dataset>-<name>-<profile>.json``), sorted; the
    other files there (benchmarks, studies, the classifier's record) are not runs."""
    return sorted(p for profile in PROFILES for p in Path(results_dir).glob(f"*-{profile}.json"))


def load_result(dataset: str, method: str, profile: str = "full", results_dir=RESULTS) -> RunResult | None:
    """The stored result of one run, or None if there is none."""
    path = result_path(dataset, method, profile, results_dir)
    return RunResult.load(path) if path.exists() else None


def save_weights(model: torch.nn.Module, path) -> None:
    """The encoder's and decoder's weights (all that sampling, reconstruction and the
    likelihood bounds need; the discriminators only train them)."""
    keep = {k: v for k, v in model.state_dict().items() if k.split(".")[0] in ("encoder", "decoder")}
    torch.save(keep, path)


def load_trained(dataset: str, method: str, shape, profile: str = "full", results_dir=RESULTS):
    """``(model, result)`` of a stored run whose weights are kept beside its result file
    (``.pt``), or None. The model is in eval mode on the CPU."""
    result = load_result(dataset, method, profile, results_dir)
    weights = result_path(dataset, method, profile, results_dir).with_suffix(".pt")
    if result is None or not weights.exists():
        return None
    model = result.experiment.build_model(shape)
    missing, unexpected = model.load_state_dict(torch.load(weights, map_location="cpu"), strict=False)
    if unexpected or any(k.split(".")[0] in ("encoder", "decoder") for k in missing):
        raise ValueError(f"{weights} does not fit the networks of its result file: "
                         f"missing {missing[:3]}, unexpected {unexpected[:3]}; delete both or run the training again")
    return model.eval(), result
