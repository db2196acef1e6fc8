"""One training loop for AS-VAE, its variants, the VAE and ALI.

The game (12): at every step the discriminators take ``disc_steps`` steps on
(5)/(6) (or ALI's (3)), then the encoder and decoder take one step on their
objective (``objectives.generator_loss``, under reading A or B of (12)). Around that loop:

* progress bars (tqdm, in notebooks and terminals) and a metrics history;
* the device picked automatically (CUDA, then Apple MPS, then CPU), with
  bfloat16 autocast on CUDA;
* checkpoints written atomically (write to a temporary file, then rename), and
  a run that finds ``last.pt`` in its folder resumes from it. Data order
  and random state are part of the checkpoint, so a resumed run ends with the
  same weights as one never interrupted;
* a guard that stops a run whose loss turns NaN or infinite, naming the last
  good checkpoint;
* early stopping on the validation reconstruction losses of x and z, and an
  optional cap on training minutes (for runs under a time budget);
* interruptions lose nothing: Ctrl-C (a notebook's stop button) or SIGTERM during
  :meth:`Trainer.fit` ends the step under way, saves ``last.pt`` at that step
  and raises :class:`TrainingInterrupted`; running again resumes from there;
* one trainer per run folder: ``fit`` holds an exclusive lock on
  ``run_dir/train.lock`` (``fcntl``, so Unix only) and refuses to start while
  another process holds it;
* an optional ``transform`` turning each stored batch (e.g. 8-bit pixels) into
  model inputs (e.g. uniformly dequantised values) afresh at every step;
* data parallelism under ``torchrun``: each process takes its share of every
  batch and gradients are averaged across processes after each backward pass.
"""
import contextlib
import fcntl
import math
import os
import pickle
import signal
import threading
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from . import objectives


@dataclass
class TrainConfig:
    method: str = "asvae"        # vae | ali | asvae-r | asvae-g | asvae
    kl_weight: float = 1.0       # x-side ELBO KL weight (uncertain in the paper; chapter 4)
    rec_z_to_decoder: bool = True  # False: the z-side reconstruction term does not train the decoder
    reading: str = "A"           # the game (12): "A" theta, phi ascend (11) only; "B" the saddle (objectives)
    lam: float = 1.0             # reading B's weight on the discriminators' swapped-label objectives
    lr: float = 1e-4             # the paper's Adam learning rate
    disc_lr: float | None = None  # the discriminators' learning rate (None: lr)
    beta1: float = 0.9           # Adam's first-moment decay (ALI's authors use 0.5)
    batch_size: int = 128
    max_steps: int = 1000
    disc_steps: int = 1          # discriminator steps per step of the game
    gen_steps: int = 1           # encoder/decoder steps per step of the game (ALICE's toy code: 5)
    share_draws: bool = False    # one draw per network and input for the step's first discriminator and
                                 # generator steps (objectives.StepDraws; methods of (11) only)
    eval_every: int = 100
    checkpoint_every: int = 100
    patience: int = 0            # evaluations without improvement before stopping; 0: never stop early
    max_minutes: float = 0.0     # stop (with a checkpoint) after this much training time; 0: no cap
    seed: int = 0
    device: str = "auto"
    amp: bool | None = None      # None: bfloat16 autocast on CUDA only


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite."""


class TrainingInterrupted(KeyboardInterrupt):
    """``fit`` was stopped by a signal (Ctrl-C, a notebook's stop button, SIGTERM) after
    saving ``checkpoint`` (``last.pt``; None without a run folder) at ``step``."""

    def __init__(self, signum: int, step: int, checkpoint: Path | None):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        self.what = f"interrupted ({signal.Signals(signum).name}) at step {step}"
        done = (f"saved {checkpoint}; run again with the same run folder to resume" if checkpoint is not None
                else "nothing saved (give the trainer a run_dir to keep a checkpoint)")
        super().__init__(f"{self.what}: {done}")


class RunFolderBusy(RuntimeError):
    """Another process is training in the same run folder."""


class CheckpointUnreadable(ValueError):
    """A checkpoint file is truncated, corrupted, or belongs to another model."""


def _check_device(device: torch.device, name: str) -> torch.device:
    """``device`` if this machine has it, else a ValueError saying what to choose instead."""
    fix = "use --device auto (device='auto') or cpu"
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} (--device): this machine has no usable CUDA GPU "
                             f"(torch {torch.__version__}); {fix}")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} (--device): there are only {torch.cuda.device_count()} "
                             f"CUDA devices; {fix}, or cuda:0")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {name!r} (--device): Apple's MPS is not available here; {fix}")
    return device


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA if present, then Apple's MPS, then the CPU. A named device is checked:
    an unknown name or one this machine lacks is a ValueError that says what to use."""
    if name != "auto":
        try:
            device = torch.device(name)
        except (RuntimeError, TypeError) as error:
            raise ValueError(f"device {name!r} (--device) is not a device name torch knows; "
                             f"use --device auto (device='auto'), cpu, cuda, cuda:N or mps") from error
        return _check_device(device, name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _distributed():
    """(rank, world size): (0, 1) unless running under torchrun with a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Trainer:
    def __init__(self, model, config: TrainConfig, train_x: torch.Tensor, val_x: torch.Tensor,
                 run_dir: str | os.PathLike | None = None, progress: bool = True, transform=None):
        objectives.check_method(config.method)
        objectives.check_reading(config.reading, config.method)
        self.config, self.progress = config, progress
        self.rank, self.world = _distributed()
        self.device = pick_device(config.device)
        self.amp = self.device.type == "cuda" if config.amp is None else config.amp
        self.model = model.to(self.device)
        self.train_x, self.val_x, self.transform = train_x, val_x.to(self.device), transform
        self.run_dir = Path(run_dir) if run_dir is not None else None
        betas = (config.beta1, 0.999)
        self.opt_gen = torch.optim.Adam(self.model.generator_parameters(), lr=config.lr, betas=betas)
        self.opt_disc = torch.optim.Adam(self.model.discriminator_parameters(), lr=config.disc_lr or config.lr,
                                         betas=betas)
        self.step, self.history, self.evals = 0, [], []
        self.best, self.bad_evals, self.stopped_early = math.inf, 0, False
        self.seconds, self.stop_reason = 0.0, None   # training time (evaluation excluded), why fit() ended
        torch.manual_seed(config.seed + self.rank)
        if self.world > 1:                        # every process starts from rank 0's weights
            for p in self.model.parameters():
                dist.broadcast(p.data, src=0)
        if self.run_dir is not None and (self.run_dir / "last.pt").exists():
            self.load(self.run_dir / "last.pt")

    # ----- data: a fixed permutation per epoch, so any step's batch can be recomputed --------
    def batch(self, step: int) -> torch.Tensor:
        n, bs = len(self.train_x), self.config.batch_size
        per_epoch = max(n // bs, 1)
        epoch, i = divmod(step, per_epoch)
        g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        idx = torch.randperm(n, generator=g)[i * bs:(i + 1) * bs]
        x = self.train_x[idx[self.rank::self.world]].to(self.device)
        return self.transform(x) if self.transform is not None else x

    @property
    def epoch(self) -> float:
        """Passes over the training set so far."""
        return self.step * self.config.batch_size / len(self.train_x)

    # ----- one step of the game (12) -------------------------------------------------------
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def _average_gradients(self, params):
        """What DistributedDataParallel does after backward: all-reduce and average."""
        if self.world > 1:
            for p in params:
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= self.world

    def _apply(self, loss, opt, params, name):
        if not torch.isfinite(loss):
            last = self.run_dir / "last.pt" if self.run_dir is not None else None
            where = f"the last good checkpoint is {last}" if last is not None and last.exists() else \
                "no checkpoint was written (give the trainer a run_dir to keep one)"
            raise TrainingDiverged(
                f"step {self.step}: {name} became {loss.item()} ({self.config.method}); {where}. "
                f"Lower the learning rate (now {self.config.lr}) or check the data, then run again to resume.")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        self._average_gradients(params)
        opt.step()

    def train_step(self, x: torch.Tensor) -> dict:
        record = {"step": self.step}
        m, method = self.model, self.config.method
        shared = self.config.share_draws and method in objectives.SADDLE_METHODS
        with self._autocast():
            draws = objectives.StepDraws(m, x) if shared else None      # drawn lazily, by the first losses
        for i in range(self.config.disc_steps if method != "vae" else 0):
            with self._autocast():
                losses = objectives.discriminator_loss(m, x, method, draws if i == 0 else None)
            self._apply(sum(losses.values()), self.opt_disc, m.discriminator_parameters(), "the discriminator loss")
            record.update({k: v.item() for k, v in losses.items()})
        for i in range(self.config.gen_steps):
            with self._autocast():
                loss = objectives.generator_loss(m, x, method, self.config.kl_weight, self.config.rec_z_to_decoder,
                                                 self.config.reading, self.config.lam, draws if i == 0 else None)
            self._apply(loss, self.opt_gen, m.generator_parameters(), "the encoder/decoder loss")
        record["loss_gen"] = loss.item()
        return record

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Validation losses, a deterministic function of the weights: they run on a
        forked, freshly seeded random state, so evaluating (or not) never changes
        the course of training and two evaluations differ only if the weights do."""
        self.model.eval()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []), self._autocast():
            torch.manual_seed(self.config.seed)
            result = objectives.reconstruction_losses(self.model, self.val_x)
            result["elbo"] = objectives.elbo(self.model, self.val_x).item()
        self.model.train()
        return {"step": self.step, **result}

    # ----- the loop ------------------------------------------------------------------------
    def fit(self) -> "Trainer":
        """Train up to ``max_steps`` (or early stopping, or the time cap), then save ``last.pt``.

        The run folder is locked while this runs, and Ctrl-C or SIGTERM stop it cleanly
        between two steps (see :meth:`_signals_stop_between_steps`)."""
        with self._run_folder_lock(), self._signals_stop_between_steps():
            self._fit()
            if self._stop_requested():      # asked during the final evaluation: last.pt is saved, stop as asked
                raise self._interruption()
        return self

    def _fit(self) -> None:
        cfg = self.config
        self.model.train()
        # at most one refresh a second: a notebook bar sends a message per refresh, and a
        # flood of them during a long cell can drop the kernel's final messages (nbval then times out)
        bar = tqdm(total=cfg.max_steps, initial=self.step, desc=cfg.method, mininterval=1.0,
                   disable=not self.progress or self.rank != 0)
        while self.step < cfg.max_steps and not self.stopped_early and not self._out_of_time():
            if self._stop_requested():
                bar.close()
                self.save("last.pt")        # between two steps: a state a resumed run continues exactly
                raise self._interruption()
            start = time.perf_counter()
            record = self.train_step(self.batch(self.step))
            self.seconds += time.perf_counter() - start
            self.history.append(record)
            self.step += 1
            bar.update(1)
            if self.step % cfg.eval_every == 0:
                self._evaluate_and_maybe_stop()
                bar.set_postfix(rec_x=f"{self.evals[-1]['rec_x']:.3g}", rec_z=f"{self.evals[-1]['rec_z']:.3g}")
            if self.step % cfg.checkpoint_every == 0:
                self.save("last.pt")
        bar.close()
        if not self.evals or self.evals[-1]["step"] != self.step:
            self._evaluate_and_maybe_stop()      # score the final weights too
        self.stop_reason = ("early stopping" if self.stopped_early else
                            "step limit" if self.step >= cfg.max_steps else f"time limit ({cfg.max_minutes} min)")
        self.save("last.pt")

    def _out_of_time(self) -> bool:
        return self.config.max_minutes > 0 and self.seconds >= 60 * self.config.max_minutes

    def _evaluate_and_maybe_stop(self):
        result = self.evaluate()
        self.evals.append(result)
        score = result["rec_x"] + result["rec_z"]
        if score < self.best:
            self.best, self.bad_evals = score, 0
            self.save("best.pt")
        else:
            self.bad_evals += 1
            self.stopped_early = self.config.patience > 0 and self.bad_evals >= self.config.patience

    # ----- interruptions and the run folder lock ------------------------------------------
    @contextlib.contextmanager
    def _signals_stop_between_steps(self):
        """While training: the first SIGINT or SIGTERM only asks the loop to stop at the next
        step boundary (so the saved state is never half a step); a second one interrupts at once.

        Signal handlers can only be set in the main thread; elsewhere this does nothing.
        The previous handlers are restored on the way out."""
        self._signal = None
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum, frame):
            if self._signal is not None:          # asked twice: stop now, last.pt stays as it was
                raise KeyboardInterrupt
            self._signal = signum

        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():      # None: a handler not set from Python
                signal.signal(s, signal.SIG_DFL if handler is None else handler)

    def _stop_requested(self) -> bool:
        """Has a signal asked to stop? Under torchrun every process takes the same answer, so all stop at one step."""
        if self.world == 1:
            return self._signal is not None
        flag = torch.tensor([float(self._signal is not None)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def _interruption(self) -> TrainingInterrupted:
        """The exception that ends an interrupted ``fit``; it says where ``last.pt`` is and how to resume."""
        stop = TrainingInterrupted(self._signal or signal.SIGINT, self.step,
                                   self.run_dir / "last.pt" if self.run_dir is not None else None)
        self.stop_reason = stop.what
        return stop

    @contextlib.contextmanager
    def _run_folder_lock(self):
        """Hold an exclusive lock on ``run_dir/train.lock`` (which holds the holder's PID) while training.

        ``fcntl.flock`` (Unix only): the lock goes with the process, so a crash or a kill
        releases it too. Only rank 0 locks; the other torchrun processes share its folder."""
        if self.run_dir is None or self.rank != 0:
            yield
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / "train.lock"
        with open(path, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "unknown"
                raise RunFolderBusy(f"{self.run_dir} is in use by another training process (PID {holder}): "
                                    f"wait for it to finish or stop it, or use another run folder") from None
            lock.truncate(0)
            lock.write(f"{os.getpid()}\n")
            lock.flush()
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # ----- checkpoints ---------------------------------------------------------------------
    def state(self) -> dict:
        return {"config": asdict(self.config), "step": self.step, "model": self.model.state_dict(),
                "opt_gen": self.opt_gen.state_dict(), "opt_disc": self.opt_disc.state_dict(),
                "history": self.history, "evals": self.evals, "best": self.best, "bad_evals": self.bad_evals,
                "stopped_early": self.stopped_early, "seconds": self.seconds, "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}

    def save(self, name: str) -> None:
        """Write ``run_dir/name`` atomically: a crash mid-write leaves the old file intact."""
        if self.run_dir is None or self.rank != 0:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.run_dir / (name + ".tmp")
        torch.save(self.state(), tmp)
        os.replace(tmp, self.run_dir / name)

    def load(self, path) -> None:
        """Resume from a checkpoint; one that cannot be read or does not fit is a :class:`CheckpointUnreadable`."""
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
        except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
            raise CheckpointUnreadable(
                f"{path} is truncated or corrupted ({str(error).strip().splitlines()[0][:120]}); delete it to "
                f"start this run afresh, or put back a good copy, then run again") from error
        if state["config"]["method"] != self.config.method:
            raise ValueError(f"{path} holds a {state['config']['method']!r} run, not {self.config.method!r}: "
                             f"use another run folder or the same method")
        game = {k: state["config"].get(k, TrainConfig.__dataclass_fields__[k].default) for k in ("reading", "lam")}
        if game != {"reading": self.config.reading, "lam": self.config.lam}:
            raise ValueError(f"{path} holds a run of the game (12) under {game}, not reading "
                             f"{self.config.reading!r} with lam {self.config.lam}: use another run folder")
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as error:
            raise CheckpointUnreadable(
                f"{path} holds a model of other sizes than this one (another experiment's checkpoint): "
                f"use another run folder, or delete it to start afresh") from error
        self.opt_gen.load_state_dict(state["opt_gen"])
        self.opt_disc.load_state_dict(state["opt_disc"])
        for key in ("step", "history", "evals", "best", "bad_evals", "stopped_early"):
            setattr(self, key, state[key])
        self.seconds = state.get("seconds", 0.0)
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
