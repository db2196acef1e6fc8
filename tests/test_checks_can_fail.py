"""The book's checks can fail: each case runs a chapter's cells in order with one piece
deliberately broken, and the chapter's own check of that piece must stop it (an
AssertionError in the cell that holds the check named). A check that a broken input passes
would be a check that cannot fail. What a chapter defines itself (its ``#@save`` cells) is
broken by editing the cell, as a reader would; what it imports, by patching the library.
"""
import dataclasses
from pathlib import Path

import jupytext
import pytest
import torch

from asvae_lib import data, experiments, pairs

ROOT = Path(__file__).resolve().parents[1]


def first_failing_check(chapter: str, edits: tuple = ()) -> str:
    """Run the chapter's code cells (up to its exercises), each ``(old, new)`` of ``edits``
    replaced in its source first, until one raises AssertionError; return that cell's source.
    Fails the test if every check passes."""
    source = (ROOT / "chapters" / f"{chapter}.py").read_text()
    for old, new in edits:
        assert source.count(old) == 1, f"{chapter}: the edit expects one {old!r}"
        source = source.replace(old, new)
    nb = jupytext.reads(source, fmt="py:percent")
    namespace = {"__name__": "__main__"}
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## Exercises"):
            break
        if cell.cell_type == "code":
            try:
                exec(compile(cell.source, chapter, "exec"), namespace)
            except AssertionError:
                return cell.source
    pytest.fail(f"{chapter}: every check passed with a broken input")


@pytest.fixture(autouse=True)
def restore_torch_state():
    """Chapters set torch's default dtype and thread count; put them back afterwards."""
    dtype, threads, rng = torch.get_default_dtype(), torch.get_num_threads(), torch.get_rng_state()
    yield
    torch.set_default_dtype(dtype)
    torch.set_num_threads(threads)
    torch.set_rng_state(rng)


def test_chapter1_catches_a_kl_with_its_arguments_swapped():
    swapped = ("return cross_entropy(p, q) - p.entropy()", "return cross_entropy(q, p) - q.entropy()")
    assert "assert abs(elbo - joint_form)" in first_failing_check("01_why_symmetric", (swapped,))


def test_chapter3_catches_negatives_drawn_from_the_data(monkeypatch):
    def broken(x, z, encode, decode):                 # q(x) q(z|x) instead of p_theta(x) q(z|x)
        return (x, encode(x)), (x, encode(x))

    monkeypatch.setattr(pairs, "f_pairs", broken)     # the world's samplers call the library's pairs
    assert "negatives of (5) are not" in first_failing_check("03_two_discriminators")


def test_chapter5_catches_a_wrong_log_determinant():
    scaled = ("    return planar_forward(z, *self.layers(z.dtype))",
              "    y, log_det = planar_forward(z, *self.layers(z.dtype))\n    return y, 0.9 * log_det")
    assert "(log_det - brute)" in first_failing_check("05_normalizing_flows", (scaled,))


def test_chapter7_catches_dequantisation_by_255(monkeypatch):
    def by_255(x, generator=None):
        return (x.float() + torch.rand(x.shape, generator=generator)) / 255

    monkeypatch.setattr(data, "dequantize", by_255)
    assert "torch.equal(bins, x.float())" in first_failing_check("07_mnist")


def test_chapter10_catches_an_importance_weighted_bound_looser_than_the_elbo(monkeypatch):
    load = experiments.RunResult.load

    def swapped(path):
        r = load(path)
        if r.dataset != "mnist":
            return r
        k = max(r.experiment.eval.iwae_ks)
        metrics = dict(r.metrics, nll_elbo_nats=r.nll_nats(k))
        metrics[f"nll_iwae{k}_nats"] = r.nll_nats(1)
        return dataclasses.replace(r, metrics=metrics)

    monkeypatch.setattr(experiments.RunResult, "load", staticmethod(swapped))
    assert "r.nll_nats(max(r.experiment.eval.iwae_ks)) <= r.nll_nats(1)" in first_failing_check("10_reproduction")
