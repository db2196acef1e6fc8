"""Opening the chapters in Google Colab.

Every chapter starts with an "Open in Colab" badge and, as its first code cell,
the cell :func:`setup_cell` writes. On Colab that cell clones the book, installs
its library with the packages the chapters need (``pip install -e .[book]``, with
the installed torch pinned, so that pip keeps Colab's torch and fits torchvision to it
even where torchvision is missing), makes the clone the
working directory, and asks for a GPU. With a GPU it selects the full profile
(unless ``ASVAE_PROFILE`` was set before the cell ran); without one it says how
to get one and stays in the quick profile. Anywhere else the cell does nothing.

The chapters cannot import this module in that cell (on Colab the library is
not there yet), so the cell's text is written into each chapter by

    python -m asvae_lib.book.colab

and ``tests/test_colab.py`` checks that every chapter carries the current one
and that the cell, run as on Colab, clones, installs and chooses the profile.
"""
import argparse
import re
import sys
from pathlib import Path

import jupytext

# Where the book is published. No public address is recorded yet: this is the
# intended one. Change it here, rerun this module, then `make book`.
REPOSITORY = "https://github.com/asvae-book/asvae-book"
BRANCH = "main"
CLONE = "/content/asvae-book"          # Colab's working area
CHAPTERS = Path(__file__).resolve().parents[2] / "chapters"
FIRST_LINE = "# Colab only: fetch the book, install its library, ask for a GPU. Elsewhere this does nothing."


def badge(stem: str, repository: str = REPOSITORY) -> str:
    """Markdown for the "Open in Colab" badge of ``chapters/<stem>.ipynb``."""
    path = repository.removeprefix("https://github.com/")
    return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"(https://colab.research.google.com/github/{path}/blob/{BRANCH}/chapters/{stem}.ipynb)")


def setup_cell(repository: str = REPOSITORY) -> str:
    """The first code cell of every chapter."""
    return f'''{FIRST_LINE}
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    BOOK = "{CLONE}"
    if not os.path.isdir(BOOK):
        subprocess.run(["git", "clone", "--depth", "1", "--branch", "{BRANCH}", "{repository}", BOOK], check=True)
    from importlib.metadata import PackageNotFoundError, version
    try:                                   # keep the torch that is there: pip then fits torchvision to it
        keep = ["torch==" + version("torch")]
    except PackageNotFoundError:
        keep = []
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", BOOK + "[book]", *keep], check=True)
    sys.path.insert(0, BOOK)               # the editable install is seen by new kernels; this one needs the path
    os.chdir(BOOK + "/chapters")
    import torch

    if torch.cuda.is_available():
        os.environ.setdefault("ASVAE_PROFILE", "full")
        print("GPU:", torch.cuda.get_device_name(0))
    else:
        print("No GPU. For the full profile choose Runtime > Change runtime type > GPU, then run all cells again.")
    print("profile:", os.environ.get("ASVAE_PROFILE", "quick"))'''


def with_colab(notebook, stem: str, repository: str = REPOSITORY):
    """The notebook with the badge on top of its first (title) cell and the setup cell right after it;
    an older badge or setup cell is replaced, so running this twice changes nothing."""
    cells = [c for c in notebook.cells if not (c.cell_type == "code" and c.source.startswith(FIRST_LINE))]
    title = cells[0]
    if title.cell_type != "markdown":
        raise ValueError(f"{stem}: the first cell must be the chapter's title (markdown)")
    text = re.sub(r"^\[!\[Open In Colab\].*\n\n", "", title.source)
    title.source = badge(stem, repository) + "\n\n" + text
    notebook.cells = [title, jupytext.reads(setup_cell(repository), fmt="py:percent").cells[0]] + cells[1:]
    return notebook


def without_versions(text: str) -> str:
    """A chapter source without the ``format_version``/``jupytext_version`` lines that jupytext adds to
    its header on every save (JupyterLab, ``jupytext --sync``); the book's sources do not carry them."""
    return re.sub(r"^#       (format_version|jupytext_version): .*\n", "", text, flags=re.MULTILINE)


def write_chapter(path: Path, repository: str = REPOSITORY) -> bool:
    """Rewrite one chapter source in place; True if it changed. A chapter that differs only by
    jupytext's version lines is left alone; a rewritten one is written without them."""
    before = path.read_text()
    notebook = with_colab(jupytext.reads(before, fmt="py:percent"), path.stem, repository)
    after = without_versions(jupytext.writes(notebook, fmt="py:percent"))
    if after == without_versions(before):
        return False
    path.write_text(after)
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", type=Path, default=sorted(CHAPTERS.glob("*.py")))
    for path in parser.parse_args(argv).chapters:
        if write_chapter(path):
            print(f"updated {path}; re-execute it (make book)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
