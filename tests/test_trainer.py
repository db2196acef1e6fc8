"""The trainer: resume equivalence (also after a real kill), the NaN guard, two-process DDP."""
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
from asvae_lib.trainer import TrainConfig, Trainer, TrainingDiverged

ROOT = Path(__file__).resolve().parents[1]


def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 2, generator=g) * torch.tensor([2.0, 0.5])
    return x[:500], x[500:]


def run(run_dir, max_steps, method="asvae", lr=1e-3, **kw):
    torch.manual_seed(0)
    model = mlp_asvae(2, 2, hidden=16, flow_length=2)
    cfg = TrainConfig(method=method, max_steps=max_steps, batch_size=64, lr=lr, eval_every=10,
                      checkpoint_every=5, **kw)
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
    with pytest.raises(TrainingDiverged, match="last good checkpoint is .*last.pt"):
        trainer.fit()
    assert torch.load(tmp_path / "last.pt", weights_only=False)["step"] == 10   # the bad state was not saved


def test_early_stopping_stops(tmp_path):
    trainer = run(None, 400, patience=1, lr=0.0)       # nothing improves: stop at the second evaluation
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
    t = Trainer(model, TrainConfig(max_steps=10, batch_size=64, lr=1e-3, eval_every=5), x[:500], x[500:], progress=False).fit()
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
