"""Colab: every chapter opens there, and its first cell sets the book up as on Colab."""
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import jupytext
import pytest

from asvae_lib.book import colab

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.py"))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_opens_with_badge_and_setup_cell(chapter):
    check_badge_and_setup_cell(chapter)


def check_badge_and_setup_cell(chapter):
    cells = jupytext.read(chapter).cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith(colab.badge(chapter.stem) + "\n\n"), \
        f"{chapter.name} lacks its Colab badge: run `python -m asvae_lib.book.colab`"
    assert cells[1].cell_type == "code" and cells[1].source == colab.setup_cell(), \
        f"{chapter.name}'s first code cell is not the current Colab cell: run `python -m asvae_lib.book.colab`"


def test_badge_points_at_the_stored_notebook():
    assert colab.badge("07_mnist", "https://github.com/someone/book") == (
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        "(https://colab.research.google.com/github/someone/book/blob/main/chapters/07_mnist.ipynb)")


def test_writing_twice_changes_nothing(tmp_path):
    copy = tmp_path / CHAPTERS[0].name
    copy.write_text(CHAPTERS[0].read_text())
    assert not colab.write_chapter(copy)        # the stored chapter is already up to date
    assert copy.read_text() == CHAPTERS[0].read_text()


def test_a_chapter_saved_by_jupytext_passes_the_same_checks(tmp_path):
    """Saving in JupyterLab or `jupytext --sync` adds version lines to the header: the checks allow them."""
    chapter = tmp_path / CHAPTERS[0].name
    chapter.write_text(CHAPTERS[0].read_text() + "\n# %%\nedited = True\n")          # a reader's edit
    notebook = chapter.with_suffix(".ipynb")
    notebook.write_bytes(CHAPTERS[0].with_suffix(".ipynb").read_bytes())
    os.utime(notebook, (0, 0))                                                        # the .py is the newer
    done = subprocess.run([sys.executable, "-m", "jupytext", "--sync", str(chapter)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "jupytext_version:" in chapter.read_text()          # what jupytext 1.19 does; tolerated below
    check_badge_and_setup_cell(chapter)
    assert not colab.write_chapter(chapter)
    cells = [(c.cell_type, c.source) for c in jupytext.read(notebook).cells]
    assert cells == [(c.cell_type, c.source) for c in jupytext.read(chapter).cells]
    assert cells[-1] == ("code", "edited = True")


# Run the setup cell as Colab would, in a fresh interpreter: `google.colab` is
# importable, the repository is this one (cloned from disk), and pip resolves the
# install without performing it (--dry-run), so this machine's packages stay as they are.
DRIVER = """
import json, subprocess, sys, types
sys.modules["google"] = types.ModuleType("google")
sys.modules["google.colab"] = types.ModuleType("google.colab")
real_run, calls = subprocess.run, []

def run(cmd, **kwargs):
    calls.append(cmd)
    if cmd[:2] == ["git", "clone"]:
        i = cmd.index("--branch")
        cmd = cmd[:i] + cmd[i + 2:]                 # this clone's checked-out branch, whatever its name
    if "pip" in cmd:
        cmd = cmd + ["--dry-run", "--report", sys.argv[2]]
    return real_run(cmd, **kwargs)

subprocess.run = run
cell = open(sys.argv[1]).read()
for _ in range(2):                                  # a second run must not clone again
    exec(cell, {})
import os, torch, asvae_lib
print("RESULT", json.dumps(dict(cwd=os.getcwd(), library=asvae_lib.__file__, calls=calls,
                                profile=os.environ.get("ASVAE_PROFILE"), gpu=torch.cuda.is_available())))
"""


def test_setup_cell_clones_installs_and_picks_the_profile_on_colab(tmp_path):
    clone = tmp_path / "asvae-book"
    cell = colab.setup_cell(repository=f"file://{ROOT}").replace(colab.CLONE, str(clone))
    (tmp_path / "cell.py").write_text(cell)
    (tmp_path / "driver.py").write_text(DRIVER)
    env = {k: v for k, v in os.environ.items() if k != "ASVAE_PROFILE"}
    report = tmp_path / "pip-report.json"
    done = subprocess.run([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "cell.py"), str(report)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.split("RESULT ", 1)[1])

    clones = [c for c in result["calls"] if c[:2] == ["git", "clone"]]
    installs = [c for c in result["calls"] if "pip" in c]
    assert len(clones) == 1 and len(installs) == 2
    assert f"{clone}[book]" in installs[0] and "-e" in installs[0]
    assert f"torch=={metadata.version('torch')}" in installs[0], "the installed torch must be pinned"
    assert result["cwd"] == str(clone / "chapters")
    assert Path(result["library"]).is_relative_to(clone), "the chapters would import another copy of asvae_lib"
    would_install = [item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]]
    assert "asvae-lib" in would_install, would_install
    assert "torch" not in would_install and "torchvision" not in would_install, \
        f"the Colab install would replace the installed torch: {would_install}"
    if result["gpu"]:
        assert result["profile"] == "full"
    else:
        assert result["profile"] is None and "No GPU." in done.stdout and "profile: quick" in done.stdout
    print("pip would install:", would_install)
