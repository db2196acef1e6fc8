"""A chapter over its time budget fails `make test` (conftest.py): run pytest on a one-cell
notebook named like chapter 1, with the budgets scaled so that it is over, then under."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_notebook_under_budget(tmp_path, scale: str):
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "a", "metadata": {}, "outputs": [],
                     "source": ["import time\n", "time.sleep(0.5)"]}],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "01_budget_probe.ipynb"
    path.write_text(json.dumps(nb))
    env = {**os.environ, "ASVAE_BUDGET_SCALE": scale, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "--nbval-lax", "-q", str(path),
                           "--rootdir", str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("scale, fails", [("0.01", True), ("100", False)])
def test_a_chapter_over_its_budget_fails_the_run(tmp_path, scale, fails):
    # chapter 1's budget times 0.01 is 0.1 s, below the cell's 0.5 s sleep; times 100, far above
    done = run_notebook_under_budget(tmp_path, scale)
    assert "01_budget_probe" in done.stdout, done.stdout + done.stderr
    assert ("OVER BUDGET" in done.stdout) == fails, done.stdout
    assert (done.returncode != 0) == fails, done.stdout
    assert "1 passed" in done.stdout           # the cell itself passed either way
