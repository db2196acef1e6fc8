"""The book's invariants: paired, executed notebooks; CI types what the README says."""
import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path

import jupytext
import pytest

from asvae_lib.book import notebook_outputs

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "chapters").glob("*.py"))


def test_there_are_chapters():
    assert SOURCES, "chapters/ holds no .py sources"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_notebook_is_paired_and_in_sync(source):
    stored = source.with_suffix(".ipynb")
    assert stored.exists(), f"{stored.name} is missing: run `make book`"
    from_py = jupytext.read(source)
    from_nb = jupytext.read(stored)
    cells = lambda nb: [(c.cell_type, c.source.strip()) for c in nb.cells]
    assert cells(from_py) == cells(from_nb), (
        f"{source.name} and {stored.name} differ: edit the .py, then run `make book`")
    assert "ipynb,py:percent" in str(from_py.metadata.get("jupytext", {}).get("formats", "")), \
        f"{source.name} is not paired (jupytext formats ipynb,py:percent)"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_notebook_is_stored_executed_in_order(source):
    nb = json.loads(source.with_suffix(".ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    counts = [c.get("execution_count") for c in code]
    assert all(counts), f"{source.stem}.ipynb has unexecuted cells: run `make book`"
    assert counts == sorted(counts), f"{source.stem}.ipynb was not executed top to bottom: run `make book`"
    assert not [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_stored_progress_bars_show_their_final_state(source):
    """What GitHub shows of a tqdm widget is its plain text; make book rewrites it from the
    widget's final state (asvae_lib.book.notebook_outputs), so no stored bar reads 0%."""
    nb = json.loads(source.with_suffix(".ipynb").read_text())
    state = nb["metadata"].get("widgets", {}).get(notebook_outputs.WIDGET_STATE, {}).get("state", {})
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(notebook_outputs.WIDGET_VIEW)
            final = view and notebook_outputs.progress_text(view["model_id"], state)
            if final:
                assert "".join(out["data"]["text/plain"]) == final, f"{source.stem}: run `make book`"


def test_a_bar_stored_at_zero_is_rewritten_to_its_final_state():
    state = {"box": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_a", "IPY_MODEL_b", "IPY_MODEL_c"]}},
             "a": {"model_name": "HTMLModel", "state": {"value": "vae: 100%"}},
             "b": {"model_name": "FloatProgressModel", "state": {"value": 600, "max": 600}},
             "c": {"model_name": "HTMLModel", "state": {"value": " 600/600 [00:04&lt;00:00]"}}}
    out = {"output_type": "display_data", "data": {notebook_outputs.WIDGET_VIEW: {"model_id": "box"},
                                                   "text/plain": ["vae:   0%|          | 0/600"]}}
    nb = {"cells": [{"cell_type": "code", "outputs": [out]}],
          "metadata": {"widgets": {notebook_outputs.WIDGET_STATE: {"state": state}}}}
    assert notebook_outputs.finalise(nb) == 1
    assert out["data"]["text/plain"] == ["vae: 100%|##########| 600/600 [00:04<00:00]"]


def _readme_commands(section):
    readme = (ROOT / "README.md").read_text()
    block = re.search(rf"## {section}.*?```bash\n(.*?)```", readme, re.S)
    assert block, f"README.md needs a '## {section}' section with a ```bash block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_ci_runs_exactly_the_readme_commands():
    """CI = the quick start (install, test), then the browser test (install Chromium, make e2e)."""
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.strip().startswith(("#", "set ", "cd "))]
    assert ci == _readme_commands("Quick start") + _readme_commands("The browser test")


def test_readme_budgets_are_the_ones_make_test_enforces():
    spec = importlib.util.spec_from_file_location("book_conftest", ROOT / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    readme = (ROOT / "README.md").read_text()
    listed = dict(re.findall(r"^\| \[(\d\d)_\w+\]\(.*\| (\d+) s \|$", readme, re.M))
    assert {k: int(v) for k, v in listed.items()} == conftest.BUDGET_S


def test_readme_lists_every_chapter():
    readme = (ROOT / "README.md").read_text()
    missing = [p.stem for p in SOURCES if p.stem not in readme]
    assert not missing, f"README's chapter table lacks {missing}"


@pytest.mark.parametrize("uid", ["0", "1000"], ids=["root", "user"])
def test_make_lab_allows_root_only_as_root_and_passes_lab_args(tmp_path, uid):
    """`make lab` as root needs --allow-root (Jupyter refuses root otherwise); LAB_ARGS is passed on.
    A stand-in `id` on PATH plays the user; `make -n` prints the command without running it."""
    fake_id = tmp_path / "id"
    fake_id.write_text(f"#!/bin/sh\necho {uid}\n")
    fake_id.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}  # under `make test`
    env["PATH"] = f"{tmp_path}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(["make", "--no-print-directory", "-n", "lab", "LAB_ARGS=--port 9999 --no-browser"],
                          cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    command = done.stdout.split()
    assert command[1:5] == ["-m", "jupyter", "lab", "chapters"]
    assert ("--allow-root" in command) == (uid == "0")
    assert command[-3:] == ["--port", "9999", "--no-browser"]
