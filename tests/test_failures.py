"""What a user loses when something goes wrong around a run: nothing, and each failure is one line.

A full disk at a checkpoint (a patched ``shutil.disk_usage`` or writer stands in for a tiny
filesystem), options outside their range, a diverged run, files that are not what they seem,
and a seed that is not the run's own. Each test reproduces a failure the trainer or the command
line once met with a traceback, lost work or a wrong record.
"""
import errno
import json
import math
import os
import signal
from pathlib import Path

import pytest
import torch

from asvae_lib import experiments, train, trainer
from asvae_lib.models import mlp_asvae
from asvae_lib.trainer import CheckpointWriteFailed, TrainConfig, Trainer, TrainingDiverged, TrainingInterrupted

ORIGINAL_EXPERIMENT = experiments.experiment


@pytest.fixture
def small(monkeypatch):
    """The quick MNIST experiment, 20 steps, evaluated and checkpointed every 10, 40 test digits, k = 2."""
    def smaller(dataset, profile):
        return ORIGINAL_EXPERIMENT(dataset, profile).changed(
            train={"max_steps": 20, "eval_every": 10, "checkpoint_every": 10}, eval={"iwae_ks": (2,), "n_test": 40})
    monkeypatch.setattr(experiments, "experiment", smaller)


def cli(tmp_path, *options):
    return train.main(["--dataset", "mnist", "--method", "vae", "--profile", "quick",
                       "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results"), *options])


def one_line_error(capsys) -> str:
    """The one ``error:`` line on stderr (a progress bar may come before it, on lines of its own)."""
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err and "error: " not in err.replace(errors[0], ""), err
    assert all(line == errors[0] or "it/s" in line or "?it" in line for line in lines), err
    return errors[0]


def folder(tmp_path, name="vae") -> Path:
    return tmp_path / "runs" / "quick" / "mnist" / name


def toy_trainer(run_dir, **changes) -> Trainer:
    torch.manual_seed(0)
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    config = TrainConfig(**{"method": "asvae", "batch_size": 50, "max_steps": 10, "eval_every": 5,
                            "checkpoint_every": 5, "lr": 1e-3, "device": "cpu", **changes})
    return Trainer(mlp_asvae(2, 2, hidden=8), config, x, x[:50], run_dir, progress=False)


def disk_with_free_bytes(monkeypatch, free: int):
    real = trainer.shutil.disk_usage
    monkeypatch.setattr(trainer.shutil, "disk_usage", lambda p: real(p)._replace(free=free))


# ----- 1. a full disk at a checkpoint --------------------------------------------------------
def test_a_checkpoint_that_does_not_fit_keeps_the_previous_one_and_says_so(tmp_path, monkeypatch):
    t = toy_trainer(tmp_path).fit()                                   # last.pt at step 10
    before = (tmp_path / "last.pt").read_bytes()
    t.config.max_steps = 20
    disk_with_free_bytes(monkeypatch, 1000)
    with pytest.raises(CheckpointWriteFailed) as caught:
        t.fit()
    message = str(caught.value)                                        # the evaluation at 15 saves best.pt first
    assert f"could not write {tmp_path / 'best.pt'} at step 15" in message
    assert "MB are free" in message and "the previous best.pt (step 10) is intact" in message
    assert "run the same command again to resume" in message
    assert (tmp_path / "last.pt").read_bytes() == before
    assert not list(tmp_path.glob("*.tmp"))                           # nothing left to keep the disk full


def test_a_write_that_fails_midway_removes_its_temporary_file(tmp_path, monkeypatch):
    t = toy_trainer(tmp_path)
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(trainer.os, "fsync", full)
    with pytest.raises(CheckpointWriteFailed, match="No space left on device.*no best.pt was written before"):
        t.fit()
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "last.pt").exists()


def test_ctrl_c_on_a_full_disk_still_ends_with_the_resume_line(tmp_path, monkeypatch):
    t = toy_trainer(tmp_path).fit()                                   # last.pt at step 10
    t.config.max_steps, step = 30, t.train_step

    def interrupted_at_12(x):
        if t.step == 12:
            t._signal = signal.SIGINT
        return step(x)
    monkeypatch.setattr(t, "train_step", interrupted_at_12)
    disk_with_free_bytes(monkeypatch, 1000)
    t.config.checkpoint_every = 1000
    with pytest.raises(TrainingInterrupted) as caught:
        t.fit()
    message = str(caught.value)
    assert "interrupted (SIGINT) at step 13" in message and "could not write" in message
    assert "the previous last.pt (step 10) is intact" in message and "run again with the same run folder" in message


def test_cli_on_a_full_disk_is_one_line(tmp_path, small, monkeypatch, capsys):
    disk_with_free_bytes(monkeypatch, 1000)
    assert cli(tmp_path) == 1
    assert "could not write" in one_line_error(capsys)
    assert not list(folder(tmp_path).glob("*.tmp"))


def test_cli_cannot_write_spec_json_is_one_line(tmp_path, small, monkeypatch, capsys):
    def no_space(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(Path, "write_text", no_space)
    assert cli(tmp_path) == 2
    assert "cannot write the run folder" in one_line_error(capsys)


# ----- 2. options checked before anything is written --------------------------------------------
@pytest.mark.parametrize("options, match", [
    (("--iwae-ks", "0"), "--iwae-ks 0"), (("--iwae-ks", "-3"), "--iwae-ks -3"), (("--lr", "inf"), "--lr"),
    (("--lr", "0"), "--lr"), (("--lam", "nan"), "lam"), (("--device", "meta"), "--device"),
])
def test_cli_refuses_bad_options_before_writing_anything(tmp_path, small, capsys, options, match):
    assert cli(tmp_path, *options) == 2
    assert match in one_line_error(capsys)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results").exists()


def test_cli_refuses_results_at_a_file_before_training(tmp_path, small, capsys):
    (tmp_path / "results").write_text("not a folder")
    assert cli(tmp_path) == 2
    assert "--results" in one_line_error(capsys) and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("field, value", [("batch_size", 0), ("eval_every", 0), ("checkpoint_every", 0),
                                          ("gen_steps", 0), ("lr", float("inf")), ("kl_weight", float("nan")),
                                          ("lam", -1.0), ("beta1", 1.0), ("max_minutes", -1.0)])
def test_a_config_out_of_range_is_refused_by_name(field, value):
    with pytest.raises(ValueError, match=f"^{field} "):
        TrainConfig(**{field: value}).check()


def test_a_batch_larger_than_the_data_is_refused(tmp_path):
    with pytest.raises(ValueError, match="batch_size 500 is larger than the training set"):
        toy_trainer(tmp_path, batch_size=500)


# ----- 3. divergence ----------------------------------------------------------------------------
def test_non_finite_weights_are_never_saved(tmp_path):
    t = toy_trainer(tmp_path)
    with torch.no_grad():
        next(t.model.encoder.parameters()).fill_(float("inf"))
    with pytest.raises(TrainingDiverged, match="weights are no longer finite.*no checkpoint was written yet.*--lr"):
        t.save("last.pt")
    assert not (tmp_path / "last.pt").exists()


def test_cli_divergence_is_one_line_naming_the_lr_option(tmp_path, small, monkeypatch, capsys):
    real = trainer.objectives.elbo

    def nan_after_15(model, x):
        value = real(model, x)
        return value * float("nan") if model.training and nan_after_15.calls > 15 else value
    nan_after_15.calls = 0
    step = Trainer.train_step

    def counted(self, x):
        nan_after_15.calls += 1
        return step(self, x)
    monkeypatch.setattr(trainer.objectives, "elbo", nan_after_15)
    monkeypatch.setattr(Trainer, "train_step", counted)
    assert cli(tmp_path) == 1
    err = one_line_error(capsys)
    assert "became nan" in err and "(step 10)" in err and "--lr 0.0001" in err


# ----- 4. files that are not what they seem -----------------------------------------------------
def test_a_weights_file_as_last_pt_is_named(tmp_path, small, capsys):
    assert cli(tmp_path) == 0
    run = folder(tmp_path)
    torch.save({k: v for k, v in torch.load(run / "last.pt", weights_only=False)["model"].items()}, run / "last.pt")
    capsys.readouterr()
    assert cli(tmp_path) == 2
    assert f"{run / 'last.pt'} is not a training checkpoint" in one_line_error(capsys)


def test_a_truncated_best_pt_is_named(tmp_path, small, capsys):
    assert cli(tmp_path) == 0
    best = folder(tmp_path) / "best.pt"
    best.write_bytes(best.read_bytes()[:2048])
    capsys.readouterr()
    assert cli(tmp_path) == 2
    assert f"{best} is truncated, corrupted or not a checkpoint" in one_line_error(capsys)


@pytest.mark.parametrize("damage", ["truncated", "not UTF-8", "missing keys"])
def test_a_bad_spec_json_is_named(tmp_path, small, capsys, damage):
    assert cli(tmp_path) == 0
    spec = folder(tmp_path) / "spec.json"
    text = spec.read_text()
    spec.write_bytes({"truncated": text[:50].encode(), "not UTF-8": b"\xff\xfe{",
                      "missing keys": json.dumps({"dataset": "mnist"}).encode()}[damage])
    capsys.readouterr()
    assert cli(tmp_path) == 2
    assert f"{spec} is not a readable experiment" in one_line_error(capsys)


# ----- 5. a seed that is not the run's own -------------------------------------------------------
def test_resuming_with_another_seed_is_refused_naming_both(tmp_path):
    toy_trainer(tmp_path, seed=0).fit()
    with pytest.raises(ValueError, match="holds a run of seed 0, not 7: give --seed 0"):
        toy_trainer(tmp_path, seed=7)


def test_another_seed_on_the_command_line_is_another_run(tmp_path, small, capsys):
    assert cli(tmp_path) == 0
    assert cli(tmp_path, "--seed", "1") == 0
    one = experiments.load_result("mnist", "vae-seed1", "quick", tmp_path / "results")
    zero = experiments.load_result("mnist", "vae", "quick", tmp_path / "results")
    assert (zero.seed, one.seed) == (0, 1) and math.isfinite(one.nll_nats())
    assert folder(tmp_path, "vae-seed1").is_dir()
