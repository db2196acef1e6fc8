"""The trainer: resume equivalence (also after a real kill, Ctrl-C or SIGTERM), the run folder lock,
unreadable checkpoints, the NaN guard, two-process DDP."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from asvae_lib.models import mlp_asvae
from asvae_lib.trainer import (
    CheckpointUnreadable,
    RunFolderBusy,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    TrainingInterrupted,
)

ROOT = Path(__file__).resolve().parents[1]


def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 2, generator=g) * torch.tensor([2.0, 0.5])
    return x[:500], x[500:]


def run(run_dir, max_steps, method="asvae", lr=1e-3, **kw):
    torch.manual_seed(0)
    model = mlp_asvae(2, 2, hidden=16, flow_length=2)
    settings = {"method": method, "max_steps": max_steps, "batch_size": 64, "lr": lr, "eval_every": 10,
                "checkpoint_every": 5}
    cfg = TrainConfig(**{**settings, **kw})
    return Trainer(model, cfg, *data(), run_dir=run_dir, progress=False).fit()


def weights(trainer):
    return torch.cat([p.detach().flatten() for p in trainer.model.parameters()])


def test_resumed_run_ends_with_the_same_weights(tmp_path):
    whole = run(tmp_path / "whole", 30)
    run(tmp_path / "split", 15)                 # stops at 15 with last.pt
    resumed = run(tmp_path / "split", 30)       # finds last.pt and continues
    assert resumed.step == 30 and len(resumed.history) == 30
    assert torch.equal(weights(whole), weights(resumed))


def test_checkpoint_write_is_atomic_and_method_is_checked(tmp_path):
    run(tmp_path, 5)
    assert (tmp_path / "last.pt").exists() and not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ValueError, match="run folder"):
        run(tmp_path, 10, method="vae")


def test_resume_after_a_real_kill(tmp_path):
    """Kill -9 a training process after its first checkpoints, resume, compare weights."""
    script = textwrap.dedent(f"""
        import sys, time, torch
        sys.path.insert(0, {str(ROOT)!r})
        sys.path.insert(0, {str(ROOT / 'tests')!r})
        import asvae_lib.trainer as T
        from test_trainer import run
        slow = T.Trainer.train_step
        def train_step(self, x):          # slow each step down so the kill lands mid-run
            time.sleep(0.05)
            return slow(self, x)
        T.Trainer.train_step = train_step
        run({str(tmp_path / 'killed')!r}, 60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    last = tmp_path / "killed" / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not last.exists():
        time.sleep(0.1)
    time.sleep(0.6)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the process ended before it could be killed"
    killed_at = torch.load(last, weights_only=False)["step"]
    assert 0 < killed_at < 60
    resumed = run(tmp_path / "killed", 60)
    whole = run(tmp_path / "whole", 60)
    assert torch.equal(weights(whole), weights(resumed))


def test_nan_guard_names_the_last_good_checkpoint(tmp_path):
    trainer = run(tmp_path, 10)
    with torch.no_grad():
        next(trainer.model.decoder.parameters()).fill_(float("nan"))
    trainer.config.max_steps = 20
    with pytest.raises(TrainingDiverged, match=r"with finite weights, is .*last.pt \(step 10\).*--lr 0.0001"):
        trainer.fit()
    assert torch.load(tmp_path / "last.pt", weights_only=False)["step"] == 10   # the bad state was not saved


def test_early_stopping_stops(tmp_path):
    trainer = run(None, 400, patience=1, lr=1e-30)     # steps below rounding: nothing improves, stop at the 2nd eval
    assert trainer.stopped_early and trainer.step == 20


DDP_SCRIPT = textwrap.dedent("""
    import os, sys, torch, torch.distributed as dist
    sys.path.insert(0, os.environ["ROOT"])
    from asvae_lib.models import mlp_asvae
    from asvae_lib.trainer import TrainConfig, Trainer
    dist.init_process_group("gloo")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 2, generator=g)
    torch.manual_seed(dist.get_rank())                 # different initial weights: rank 0's must win
    model = mlp_asvae(2, 2, hidden=16)
    config = TrainConfig(max_steps=10, batch_size=64, lr=1e-3, eval_every=5)
    t = Trainer(model, config, x[:500], x[500:], progress=False).fit()
    w = torch.cat([p.detach().flatten() for p in t.model.parameters()])
    torch.save(w, os.path.join(os.environ["OUT"], f"rank{dist.get_rank()}.pt"))
    dist.destroy_process_group()
""")


def test_two_process_data_parallel_run_keeps_the_replicas_identical(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "ROOT": str(ROOT), "OUT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                             "--master_port=29517", str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    w0, w1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert torch.equal(w0, w1)


def test_mixed_precision_path_runs_and_keeps_densities_in_float32():
    """The GPU path (bfloat16 autocast), exercised on the CPU."""
    trainer = run(None, 5, amp=True)
    assert all(torch.isfinite(torch.tensor(r["loss_gen"])) for r in trainer.history)
    x = data()[1][:4]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = trainer.model.encoder.rsample(x)
        assert trainer.model.decoder.log_prob(x, z).dtype == torch.float32


def test_device_is_picked_cuda_then_mps_then_cpu(monkeypatch):
    from asvae_lib import trainer as T
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert T.pick_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert T.pick_device().type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert T.pick_device().type == "cpu" and T.pick_device("cpu").type == "cpu"


# ----- interruptions: Ctrl-C, SIGTERM, a notebook's stop button ---------------------------
# A slowed-down training process prints each step it finishes; the test sends the signal
# mid-run, between two periodic checkpoints (every 1000 steps: only the interruption saves).
SLOW_STEPS = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    sys.path.insert(0, {tests!r})
    import asvae_lib.trainer as T
    from test_trainer import run
    slow = T.Trainer.train_step
    def train_step(self, x):
        time.sleep(0.05)
        record = slow(self, x)
        print("step", self.step + 1, flush=True)
        return record
    T.Trainer.train_step = train_step
""")
SLOW_RUN = SLOW_STEPS + textwrap.dedent("""
    try:
        run({run_dir!r}, 60, checkpoint_every=1000)
    except T.TrainingInterrupted as stop:
        print(stop, flush=True)
        sys.exit(128 + stop.signum)
""")


def start_slow_run(run_dir):
    script = SLOW_RUN.format(root=str(ROOT), tests=str(ROOT / "tests"), run_dir=str(run_dir))
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def wait_for_step(proc, step):
    for line in proc.stdout:
        if line.startswith("step") and int(line.split()[1]) >= step:
            return
    raise AssertionError(f"the training process ended before step {step}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_saves_the_current_step_and_resume_matches(tmp_path, signum):
    proc = start_slow_run(tmp_path / "stopped")
    wait_for_step(proc, 7)
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, out
    saved = torch.load(tmp_path / "stopped" / "last.pt", weights_only=False)["step"]
    assert 7 <= saved < 60                       # the step reached, not a periodic checkpoint (there is none)
    assert f"at step {saved}: saved {tmp_path / 'stopped' / 'last.pt'}" in out and "to resume" in out
    resumed = run(tmp_path / "stopped", 60)
    whole = run(tmp_path / "whole", 60)
    assert resumed.step == 60 and torch.equal(weights(whole), weights(resumed))


def test_interrupt_in_process_stops_between_steps_and_restores_the_handlers(tmp_path, monkeypatch):
    """What a notebook's stop button does: SIGINT to the kernel's own (main) thread, mid-step."""
    step = Trainer.train_step

    def interrupted_step(self, x):
        if self.step == 7:
            os.kill(os.getpid(), signal.SIGINT)  # arrives during the step, which still completes
        return step(self, x)

    monkeypatch.setattr(Trainer, "train_step", interrupted_step)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted, match="SIGINT.* at step 8: saved .*last.pt"):
        run(tmp_path, 30, checkpoint_every=1000)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert torch.load(tmp_path / "last.pt", weights_only=False)["step"] == 8
    monkeypatch.undo()
    assert torch.equal(weights(run(tmp_path, 30)), weights(run(tmp_path / "whole", 30)))


def test_a_second_trainer_on_the_same_folder_is_refused(tmp_path):
    proc = start_slow_run(tmp_path)
    try:
        wait_for_step(proc, 1)
        with pytest.raises(RunFolderBusy, match=rf"{tmp_path} is in use .*\(PID {proc.pid}\)"):
            run(tmp_path, 60)
    finally:
        proc.kill()
        proc.communicate()
    assert run(tmp_path, 5, checkpoint_every=5).step >= 5   # a killed holder releases the lock


def test_the_lock_is_released_when_fit_fails(tmp_path, monkeypatch):
    def broken(self, x):
        raise RuntimeError("boom")

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "train_step", broken)
        with pytest.raises(RuntimeError, match="boom"):
            run(tmp_path, 5)
    assert run(tmp_path, 5).step == 5


def test_a_truncated_checkpoint_is_named(tmp_path):
    run(tmp_path, 5)
    last = tmp_path / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(CheckpointUnreadable, match=f"{last} is truncated or corrupted.*delete it"):
        run(tmp_path, 10)


def test_a_checkpoint_of_another_model_is_named(tmp_path):
    run(tmp_path, 5)
    torch.manual_seed(0)
    other = mlp_asvae(2, 2, hidden=8, flow_length=2)           # other sizes than run()'s model
    with pytest.raises(CheckpointUnreadable, match="last.pt holds a model of other sizes"):
        Trainer(other, TrainConfig(max_steps=10, batch_size=64), *data(), run_dir=tmp_path, progress=False)


@pytest.mark.parametrize("name, match", [("gpu", "not a device name"), ("cuda", "no usable CUDA GPU")])
def test_unknown_or_missing_devices_are_refused(monkeypatch, name, match):
    from asvae_lib.trainer import pick_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=rf"device '{name}' \(--device\).*{match}.*use --device auto"):
        pick_device(name)


def test_a_notebooks_stop_button_saves_like_ctrl_c(tmp_path):
    """A real Jupyter kernel runs a slowed-down fit; the test interrupts it as the stop button does."""
    jupyter_client = pytest.importorskip("jupyter_client")
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="python3", cwd=str(ROOT),
                                                     env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        code = (SLOW_STEPS.format(root=str(ROOT), tests=str(ROOT / "tests"))
                + f"run({str(tmp_path)!r}, 60, checkpoint_every=1000)")
        msg_id, errors = kc.execute(code), []
        while True:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream" and "step 7" in msg["content"]["text"]:
                km.interrupt_kernel()
            if msg["msg_type"] == "error":
                errors.append((msg["content"]["ename"], msg["content"]["evalue"]))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert [name for name, _ in errors] == ["TrainingInterrupted"], errors
    saved = torch.load(tmp_path / "last.pt", weights_only=False)["step"]
    message = (f"interrupted (SIGINT) at step {saved}: saved {tmp_path / 'last.pt'}; "
               "run again with the same run folder to resume")
    assert errors == [("TrainingInterrupted", message)]
    assert 7 <= saved < 60


def test_a_signal_during_the_final_evaluation_still_stops(tmp_path, monkeypatch):
    """The run is complete and saved, but the caller asked to stop: fit says so instead of returning."""
    evaluate = Trainer.evaluate

    def interrupted_evaluation(self):
        if self.step == 10:
            os.kill(os.getpid(), signal.SIGTERM)
        return evaluate(self)

    monkeypatch.setattr(Trainer, "evaluate", interrupted_evaluation)
    with pytest.raises(TrainingInterrupted, match="SIGTERM.* at step 10: saved"):
        run(tmp_path, 10, eval_every=1000)
    assert torch.load(tmp_path / "last.pt", weights_only=False)["step"] == 10


def test_a_run_of_another_reading_of_the_game_is_refused(tmp_path):
    run(tmp_path, 5)
    with pytest.raises(ValueError, match="reading 'B'"):
        run(tmp_path, 10, reading="B")
    run(tmp_path, 10)                                  # the same reading resumes
