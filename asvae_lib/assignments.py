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

    python -m asvae_lib.assignments [--out assignments] [chapters/*.py ...]
"""
import argparse
import copy
import sys
from pathlib import Path

import jupytext
import nbformat

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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m asvae_lib.assignments", description=__doc__.split("\n\n")[0])
    p.add_argument("chapters", nargs="*", help="chapter sources (default: chapters/*.py)")
    p.add_argument("--out", default="assignments")
    args = p.parse_args(argv)
    sources = [Path(c) for c in args.chapters] or sorted(Path("chapters").glob("*.py"))
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
