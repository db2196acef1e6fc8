"""Student versions of the chapters, for handing out as course assignments.

Each chapter may end with exercises written in nbgrader's convention:

* code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` is the reference
  solution: in the student version it becomes ``raise NotImplementedError()``
  (at the same indentation), so the exercise's visible checks fail until the
  student writes their own;
* code between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` is a
  grader's check: it is removed from the student version.

The book's own notebooks keep the solutions, so ``make test`` proves every
reference solution passes its checks, hidden ones included.

    python -m asvae_lib.book.assignments [--out assignments] [chapters/*.py ...]

The exercise cells also carry nbgrader's cell metadata, so that nbgrader itself
(``nbgrader generate_assignment``, ``autograde``) accepts the chapters: a cell
with a solution region is a solution cell (``ex<chapter>_<k>``), and the cell
after it, which checks it, is a locked grade cell worth one point
(``ex<chapter>_<k>_check``). :func:`mark_for_nbgrader` sets it; after adding an
exercise, write it into the chapter sources with

    python -m asvae_lib.book.assignments --mark [chapters/*.py ...]
"""
import argparse
import copy
import re
import sys
from pathlib import Path

import jupytext
import nbformat

from .colab import without_versions

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]


def student_source(source: str) -> str:
    """A cell's code with solutions replaced by a stub and hidden tests removed."""
    out, inside = [], None
    for line in source.splitlines():
        marker = line.strip()
        if marker in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            if inside is not None:
                raise ValueError(f"{marker!r} inside an open {inside!r} block")
            inside = marker
            if marker == BEGIN_SOLUTION:
                indent = line[: len(line) - len(line.lstrip())]
                out += [indent + s for s in STUB]
        elif marker in (END_SOLUTION, END_HIDDEN):
            if inside != {END_SOLUTION: BEGIN_SOLUTION, END_HIDDEN: BEGIN_HIDDEN}[marker]:
                raise ValueError(f"{marker!r} without its BEGIN")
            inside = None
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise ValueError(f"{inside!r} is never closed")
    return "\n".join(out)


def has_exercises(notebook) -> bool:
    return any(BEGIN_SOLUTION in c.source for c in notebook.cells if c.cell_type == "code")


def student_version(notebook):
    """A copy of the notebook with every code cell made a student's, outputs cleared."""
    student = copy.deepcopy(notebook)
    for cell in student.cells:
        if cell.cell_type == "code":
            cell.source, cell.outputs, cell.execution_count = student_source(cell.source), [], None
    return student


def nbgrader_cell(grade_id: str, solution: bool) -> dict:
    """nbgrader's metadata (schema 3) of a solution cell, or of a locked grade cell worth one point."""
    if solution:
        return {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3, "solution": True}
    return {"grade": True, "grade_id": grade_id, "locked": True, "points": 1, "schema_version": 3,
            "solution": False}


def mark_for_nbgrader(notebook, chapter: int):
    """Give every exercise's solution cell and the check cell right after it nbgrader's metadata, in place.

    Solution cells are the code cells holding ``### BEGIN SOLUTION``; each must be followed by a code
    cell that checks it (``assert`` or hidden tests). Other cells are left as they are.
    """
    code = [c for c in notebook.cells if c.cell_type == "code"]
    k = 0
    for cell, after in zip(code, code[1:] + [None]):
        if BEGIN_SOLUTION not in cell.source:
            continue
        k += 1
        grade_id = f"ex{chapter}_{k}"
        if after is None or not ("assert" in after.source or BEGIN_HIDDEN in after.source):
            raise ValueError(f"exercise {grade_id}: the solution cell must be followed by a cell that checks it")
        cell.metadata["nbgrader"] = nbgrader_cell(grade_id, solution=True)
        after.metadata["nbgrader"] = nbgrader_cell(grade_id + "_check", solution=False)
    return notebook


def chapter_number(path: Path) -> int:
    """``chapters/06_asvae_2d.py`` -> 6."""
    match = re.match(r"(\d+)_", path.name)
    if not match:
        raise ValueError(f"{path}: a chapter's name starts with its number, e.g. 06_asvae_2d.py")
    return int(match.group(1))


def mark_chapter(path: Path) -> bool:
    """Write the nbgrader metadata into a chapter source (only its ``# %%`` lines change); True if it changed."""
    before = path.read_text()
    notebook = mark_for_nbgrader(jupytext.reads(before, fmt="py:percent"), chapter_number(path))
    after = without_versions(jupytext.writes(notebook, fmt="py:percent"))
    if after == without_versions(before):
        return False
    path.write_text(after)
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m asvae_lib.book.assignments", description=__doc__.split("\n\n")[0])
    p.add_argument("chapters", nargs="*", help="chapter sources (default: chapters/*.py)")
    p.add_argument("--out", default="assignments")
    p.add_argument("--mark", action="store_true",
                   help="write nbgrader's cell metadata into the chapter sources instead (then update the .ipynb: "
                        "jupytext --update --to ipynb CHAPTER.py)")
    args = p.parse_args(argv)
    sources = [Path(c) for c in args.chapters] or sorted(Path("chapters").glob("*.py"))
    if args.mark:
        for source in sources:
            if mark_chapter(source):
                print(f"marked the exercises of {source} for nbgrader")
        return 0
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for source in sources:
        notebook = jupytext.read(source)
        if not has_exercises(notebook):
            continue
        target = Path(args.out) / (source.stem + ".ipynb")
        nbformat.write(student_version(notebook), target)
        print(f"{source} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
