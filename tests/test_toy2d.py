"""The 2-D sweep of chapter 6: runs are deterministic, records and weights round-trip, the bar is applied."""
import pytest
import torch

from asvae_lib import toy2d


def test_a_run_is_deterministic_and_its_record_and_weights_round_trip(tmp_path):
    a = toy2d.run("ring", "asvae", seed=1, steps=30, marks=(10,), keep_model=True)
    b = toy2d.run("ring", "asvae", seed=1, steps=30, marks=(10,))
    assert [c["step"] for c in a["curve"]] == [10, 30]
    assert a["final"] == b["final"] and a["curve"] == b["curve"]
    assert a["settings"]["method"] == "asvae" and a["settings"]["steps"] == 30 and a["torch"] == torch.__version__
    toy2d.save(a, tmp_path)
    stored = toy2d.load("ring", tmp_path)[("asvae", 1)]
    assert stored["final"] == a["final"] and "model" not in stored
    model = toy2d.load_model("ring", "asvae", 1, tmp_path)
    for name, p in a["model"].state_dict().items():
        assert torch.equal(p, model.state_dict()[name]), name


def test_where_a_run_is_scored_is_part_of_its_protocol():
    """measure() re-seeds the global generator, so the same run scored at other steps differs."""
    a = toy2d.run("grid", "vae", seed=0, steps=40, marks=(20,))
    b = toy2d.run("grid", "vae", seed=0, steps=40, marks=(10,))
    assert a["final"] != b["final"]


def test_missing_weights_say_how_to_make_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m asvae_lib.toy2d"):
        toy2d.load_model("grid", "vae", 0, tmp_path)


def test_unknown_data_set_and_configuration_are_refused(capsys):
    with pytest.raises(ValueError, match="grid"):
        toy2d.data("moons")
    with pytest.raises(SystemExit):
        toy2d.main(["--configs", "asvae-x"])
    assert "unknown configuration" in capsys.readouterr().err


def _record(config, seed, modes, good, rec, enc_std=0.1):
    return {"config": config, "seed": seed,
            "final": {"modes": modes, "good": good, "rec. error": rec, "enc. std": enc_std}}


def test_the_bar_for_works_needs_all_three_criteria():
    vae = _record("vae", 0, 12, 0.2, 0.05)
    assert toy2d.works(_record("asvae", 0, 20, 0.5, 0.04), vae, 25)
    assert not toy2d.works(_record("asvae", 0, 19, 0.9, 0.01), vae, 25)      # too few modes
    assert not toy2d.works(_record("asvae", 0, 25, 0.49, 0.01), vae, 25)     # too few good samples
    assert not toy2d.works(_record("asvae", 0, 25, 0.9, 0.05), vae, 25)      # reconstructs no better
    assert not toy2d.works(_record("asvae", 0, 25, 0.9, 0.001, 0.0111), vae, 25)   # only by a collapsed encoder
    assert toy2d.works(_record("asvae", 0, 25, 0.9, 0.001, 0.023), vae, 25)        # just above twice the clamp
    records = {("vae", s): _record("vae", s, 12, 0.2, 0.05) for s in range(5)}
    records.update({("asvae", s): _record("asvae", s, 22, 0.6, 0.01 if s < 3 else 0.1) for s in range(5)})
    assert toy2d.seeds_that_work(records, "asvae", 25) == [0, 1, 2]
    assert toy2d.summary(records, "asvae", "modes") == (22.0, 22.0, 22.0)


def test_a_diverged_run_is_recorded_where_it_stopped(monkeypatch):
    from asvae_lib.trainer import Trainer, TrainingDiverged
    step = Trainer.train_step

    def failing(self, x):
        if self.step == 15:
            raise TrainingDiverged("step 15: the encoder/decoder loss became nan (vae); no checkpoint")
        return step(self, x)

    monkeypatch.setattr(Trainer, "train_step", failing)
    record = toy2d.run("grid", "vae", seed=0, steps=30, marks=(10,))
    assert record["diverged"] == {"step": 15, "message": "step 15: the encoder/decoder loss became nan (vae)"}
    assert [c["step"] for c in record["curve"]] == [10, 15] and record["final"]["step"] == 15


def test_the_scan_picks_the_lam_that_passes_most_of_the_bar():
    curve = lambda modes, good, rec, std=0.1: {"curve": [{"step": 4000, "modes": modes, "good": good,
                                                         "rec. error": rec, "enc. std": std}]}
    vae = {"ring": {("vae", 0): curve(8, 0.4, 0.01)}}
    scan = {"ring": {("asvae, B", 0): curve(0, 0.1, 0.001, 0.0111),        # collapsed: no part of the bar
                     ("asvae, B, lam=3", 0): curve(8, 0.3, 0.02),          # modes only
                     ("asvae, B, lam=10", 0): curve(8, 0.6, 0.05)}}        # modes and good
    lam, table = toy2d.best_lam(scan, vae, {"ring": 8}, 4000)
    assert lam == 10.0 and table[1.0][0] == 0 and table[3.0][0] == 1 and table[10.0][0] == 2


def test_the_verdict_names_the_reading_and_collapse_never_counts_as_reconstruction():
    def rec(config, seed, modes, good, err, std=0.1):
        r = _record(config, seed, modes, good, err, std)
        r["final"]["ELBO"] = -1.0
        return r
    records = {}
    for s in range(5):
        records.update({("vae", s): rec("vae", s, 8, 0.5, 0.01), ("ali", s): rec("ali", s, 8, 0.6, 0.5),
                        ("asvae-r", s): rec("asvae-r", s, 8, 0.5, 0.01), ("asvae-g", s): rec("asvae-g", s, 0, 0.0, 0.1),
                        ("asvae", s): rec("asvae", s, 8, 0.6, 0.001, 0.0111),             # collapsed
                        ("asvae-r, B", s): rec("asvae-r, B", s, 8, 0.5, 0.01),
                        ("asvae-g, B", s): rec("asvae-g, B", s, 8, 0.6, 0.1),
                        ("asvae, B", s): rec("asvae, B", s, 8, 0.6, 0.005)})              # works
    rows = {(r["claim"].split(":")[0], r["reading"]): r["verdict"] for r in toy2d.verdict(records, 8, 0.07)}
    assert rows["AS-VAE balances both", "A"] == "not held"          # only by collapse
    assert rows["AS-VAE balances both", "B, lam 1"] == "held"
    assert rows["AS-VAE-g generates better than the VAE", "B, lam 1"] == "held"
    assert rows["asvae works", "A"] == "not held" and rows["asvae works", "B, lam 1"] == "held"
    assert ("AS-VAE balances both", "B, lam 3") not in rows            # no runs, no row


@pytest.mark.parametrize("stop_at", [15, 20], ids=["between marks", "at a mark"])
def test_an_interrupted_sweep_run_resumes_to_the_same_record(tmp_path, monkeypatch, stop_at):
    import signal

    from asvae_lib.trainer import Trainer, TrainingInterrupted
    whole = toy2d.run("ring", "asvae", seed=1, steps=40, marks=(10, 20))
    step = Trainer.train_step

    def stopped_once(self, x):
        if self.step == stop_at and not stopped_once.done:
            stopped_once.done, self._signal = True, signal.SIGTERM
        return step(self, x)
    stopped_once.done = False
    monkeypatch.setattr(Trainer, "train_step", stopped_once)
    with pytest.raises(TrainingInterrupted):
        toy2d.run("ring", "asvae", seed=1, steps=40, marks=(10, 20), run_dir=tmp_path)
    assert (tmp_path / "last.pt").exists() and (tmp_path / "curve.json").exists()
    resumed = toy2d.run("ring", "asvae", seed=1, steps=40, marks=(10, 20), run_dir=tmp_path)
    assert resumed["curve"] == whole["curve"] and resumed["final"] == whole["final"]


def test_the_sweep_on_sigterm_is_one_line_and_keeps_the_run(tmp_path, monkeypatch, capsys):
    import signal

    from asvae_lib.trainer import Trainer
    monkeypatch.setenv("ASVAE_RUNS", str(tmp_path / "runs"))
    step = Trainer.train_step

    def stopped(self, x):
        if self.step == 5:
            self._signal = signal.SIGTERM
        return step(self, x)
    monkeypatch.setattr(Trainer, "train_step", stopped)
    code = toy2d.main(["--dataset", "ring", "--configs", "vae", "--seeds", "0", "--steps", "20",
                       "--out", str(tmp_path / "out")])
    assert code == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "run the same command again" in err
    assert (toy2d.run_folder("ring", "vae", 0) / "last.pt").exists()
