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
import errno
import fcntl
import io
import math
import os
import pickle
import shutil
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

    def check(self) -> "TrainConfig":
        """Every value in its range, before anything is written or trained: a ValueError naming the
        setting and what it accepts."""
        objectives.check_method(self.method)
        objectives.check_reading(self.reading, self.method)
        at_least = {"batch_size": 1, "max_steps": 0, "disc_steps": 0, "gen_steps": 1, "eval_every": 1,
                    "checkpoint_every": 1, "patience": 0}
        for name, low in at_least.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} {value!r}: give a whole number >= {low}")
        for name, value, option in (("lr", self.lr, " (--lr)"), ("disc_lr", self.disc_lr, "")):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} {value!r}{option}: give a finite number > 0, e.g. 1e-4")
        for name in ("kl_weight", "lam", "max_minutes"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} {value!r}: give a finite number >= 0")
        if not 0 <= self.beta1 < 1:
            raise ValueError(f"beta1 {self.beta1!r}: give a number in [0, 1)")
        return self


class TrainingDiverged(RuntimeError):
    """A loss, or the weights, became NaN or infinite."""


class CheckpointWriteFailed(OSError):
    """A checkpoint could not be written (a full disk, a lost mount): the previous one is intact."""


class TrainingInterrupted(KeyboardInterrupt):
    """``fit`` was stopped by a signal (Ctrl-C, a notebook's stop button, SIGTERM) after
    saving ``checkpoint`` (``last.pt``; None without a run folder) at ``step``."""

    def __init__(self, signum: int, step: int, checkpoint: Path | None, failure: str | None = None):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        self.what = f"interrupted ({signal.Signals(signum).name}) at step {step}"
        if checkpoint is None:
            self.saved = "nothing saved (give the trainer a run_dir to keep a checkpoint)"
        elif failure is None:
            self.saved = f"saved {checkpoint}"
        else:          # the save at this step failed; the previous checkpoint, if any, is what a rerun resumes
            self.saved = failure
        super().__init__(f"{self.what}: {self.saved}; run again with the same run folder to resume")


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
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {name!r} (--device): the book trains on cpu, cuda or mps; {fix}")
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
        config.check()
        if config.method == "asvae-pathwise" and getattr(model, "g", None) is None:
            raise ValueError("asvae-pathwise needs the joint discriminator g: build the model with "
                             "joint_discriminator=True (models.mlp_asvae)")
        if config.batch_size > len(train_x):
            raise ValueError(f"batch_size {config.batch_size} is larger than the training set ({len(train_x)} rows): "
                             f"give at most {len(train_x)}")
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
        self._saved_steps = {}                        # checkpoint name -> the step it holds (written or loaded)
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

    def _diverged(self, what: str) -> TrainingDiverged:
        """Why the run stopped, where its last finite checkpoint is (``save`` writes no other kind),
        and what to change: resuming alone would diverge at the same step (the run is deterministic)."""
        last = self.run_dir / "last.pt" if self.run_dir is not None else None
        where = (f"the last checkpoint, with finite weights, is {last} (step {self._saved_steps.get('last.pt', '?')})"
                 if last is not None and last.exists() else
                 "no checkpoint was written yet" if last is not None else
                 "nothing was saved (give the trainer a run_dir to keep checkpoints)")
        return TrainingDiverged(
            f"step {self.step}: {what} ({self.config.method}); {where}. The same run diverges again at the "
            f"same step: train a new run with a lower learning rate (--lr {self.config.lr / 10:g}, now "
            f"{self.config.lr:g}), or check the data")

    def _apply(self, loss, opt, params, name):
        if not torch.isfinite(loss):
            raise self._diverged(f"{name} became {loss.item()}")
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
        try:
            self._steps(bar)
        finally:
            bar.close()                          # an error message then starts on a line of its own
        if not self.evals or self.evals[-1]["step"] != self.step:
            self._evaluate_and_maybe_stop()      # score the final weights too
        self.stop_reason = ("early stopping" if self.stopped_early else
                            "step limit" if self.step >= cfg.max_steps else f"time limit ({cfg.max_minutes} min)")
        self.save("last.pt")

    def _steps(self, bar) -> None:
        """Train until the step limit, early stopping or the time cap; stop cleanly when asked."""
        cfg = self.config
        while self.step < cfg.max_steps and not self.stopped_early and not self._out_of_time():
            if self._stop_requested():
                try:
                    self.save("last.pt")    # between two steps: a state a resumed run continues exactly
                except CheckpointWriteFailed as failure:
                    raise self._interruption(str(failure)) from None
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

    def _interruption(self, failure: str | None = None) -> TrainingInterrupted:
        """The exception that ends an interrupted ``fit``; it says where ``last.pt`` is and how to resume
        (``failure``: why this step's checkpoint could not be written)."""
        stop = TrainingInterrupted(self._signal or signal.SIGINT, self.step,
                                   self.run_dir / "last.pt" if self.run_dir is not None else None, failure)
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
        """Write ``run_dir/name`` atomically: a crash mid-write leaves the old file intact.

        Weights that are not finite are never written (:class:`TrainingDiverged`). The checkpoint
        is serialised in memory first, so its size is known: with less space free than that, or
        when the write fails, the temporary file is removed, the previous checkpoint stays as it
        was, and :class:`CheckpointWriteFailed` says which file, how much space it needs and how
        to resume."""
        if self.run_dir is None or self.rank != 0:
            return
        if not all(torch.isfinite(p).all() for p in self.model.state_dict().values() if p.is_floating_point()):
            raise self._diverged("the weights are no longer finite")
        path, tmp = self.run_dir / name, self.run_dir / (name + ".tmp")
        buffer = io.BytesIO()
        torch.save(self.state(), buffer)
        need = buffer.getbuffer().nbytes
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(self.run_dir).free
            if free < need:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            with open(tmp, "wb") as f:
                f.write(buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            kept = (f"the previous {name} (step {self._saved_steps.get(name, 'of an earlier run')}) is intact"
                    if path.exists() else f"no {name} was written before")
            raise CheckpointWriteFailed(
                f"could not write {path} at step {self.step} ({error.strerror or error}): it needs "
                f"{need / 2**20:.1f} MB, {shutil.disk_usage(self.run_dir).free / 2**20:.1f} MB are free there; "
                f"{kept}. Free some space, then run the same command again to resume") from None
        self._saved_steps[name] = self.step

    def load(self, path) -> None:
        """Resume from a checkpoint; one that cannot be read or does not fit is a :class:`CheckpointUnreadable`."""
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
        except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
            raise CheckpointUnreadable(
                f"{path} is truncated or corrupted ({str(error).strip().splitlines()[0][:120]}); delete it to "
                f"start this run afresh, or put back a good copy, then run again") from error
        needed = ("config", "step", "model", "opt_gen", "opt_disc", "history", "evals", "best", "bad_evals",
                  "stopped_early", "rng_cpu", "rng_cuda")
        if not isinstance(state, dict) or any(k not in state for k in needed):
            held = sorted(state)[:4] if isinstance(state, dict) else type(state).__name__
            raise CheckpointUnreadable(
                f"{path} is not a training checkpoint (it holds {held}...; weights alone, such as a "
                f"results/*.pt file, cannot be resumed): move it away to start this run afresh")
        if state["config"].get("seed", 0) != self.config.seed:
            raise ValueError(f"{path} holds a run of seed {state['config'].get('seed', 0)}, not {self.config.seed}: "
                             f"give --seed {state['config'].get('seed', 0)} to resume or re-score it, or use "
                             f"another run folder")
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
        self._saved_steps["last.pt"] = self.step
        self.seconds = state.get("seconds", 0.0)
        torch.set_rng_state(state["rng_cpu"])
        if state["rng_cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
