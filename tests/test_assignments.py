"""Course assignments: the student version of a chapter runs and fails its checks
until solved (the reference solutions pass them when `make chapters` runs the
chapters); the chapters carry nbgrader's cell metadata, and nbgrader itself
accepts them and grades an exercise section."""
import json
import os
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from asvae_lib.book import assignments
from asvae_lib.book.assignments import BEGIN_HIDDEN, BEGIN_SOLUTION, student_source, student_version

CHAPTERS = sorted((Path(__file__).resolve().parents[1] / "chapters").glob("*.py"))
WITH_EXERCISES = [c for c in CHAPTERS if assignments.has_exercises(jupytext.read(c))]


def test_student_source_stubs_solutions_and_drops_hidden_tests():
    code = ("def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n\n"
            "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(2) == 3\n### END HIDDEN TESTS\nprint('ok')")
    assert student_source(code) == ("def f(x):\n    y = 1\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\n"
                                    "assert f(1) == 2\nprint('ok')")


@pytest.mark.parametrize("bad", ["### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION",
                                 "### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\n### END HIDDEN TESTS"])
def test_unbalanced_markers_are_refused(bad):
    with pytest.raises(ValueError):
        student_source(bad)


def test_every_chapter_ends_with_exercises():
    assert WITH_EXERCISES == CHAPTERS, f"no exercises in {sorted(set(CHAPTERS) - set(WITH_EXERCISES))}"


def exercise_cells(notebook):
    """The code cells from the chapter's '## Exercises' heading on (exercises are self-contained)."""
    start = max(i for i, c in enumerate(notebook.cells)
                if c.cell_type == "markdown" and c.source.startswith("## Exercises"))
    return [c.source for c in notebook.cells[start:] if c.cell_type == "code"]


@pytest.mark.parametrize("chapter", WITH_EXERCISES, ids=lambda p: p.stem)
def test_student_version_fails_until_solved(chapter):
    """The reference solutions pass their checks where the chapter runs them: `make chapters` executes
    each chapter, exercises and solutions included, and nbgrader grades one exercise section alone
    (below). Here the student version's definitions run and every check fails."""
    reference = jupytext.read(chapter)
    student = student_version(reference)
    student_code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    assert BEGIN_SOLUTION not in student_code and BEGIN_HIDDEN not in student_code
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")

    namespace, failures = {}, 0
    for source in exercise_cells(student):                # student version: definitions run, checks fail
        try:
            exec(compile(source, str(chapter), "exec"), namespace)
        except (NotImplementedError, AssertionError):
            failures += 1
    assert failures == reference_checks(reference) > 0


def reference_checks(notebook):
    """Exercises in the chapter = solution blocks."""
    return sum(source.count(BEGIN_SOLUTION) for source in exercise_cells(notebook))


def test_make_assignments_writes_student_notebooks(tmp_path):
    assert assignments.main([str(c) for c in CHAPTERS] + ["--out", str(tmp_path)]) == 0
    written = sorted(p.stem for p in tmp_path.glob("*.ipynb"))
    assert written == sorted(c.stem for c in WITH_EXERCISES)
    text = (tmp_path / (WITH_EXERCISES[0].stem + ".ipynb")).read_text()
    assert "raise NotImplementedError()" in text and BEGIN_SOLUTION not in text


@pytest.mark.parametrize("chapter", WITH_EXERCISES, ids=lambda p: p.stem)
def test_exercise_cells_carry_nbgrader_metadata(chapter, tmp_path):
    n, code = assignments.chapter_number(chapter), [c for c in jupytext.read(chapter).cells if c.cell_type == "code"]
    marked = {c.metadata["nbgrader"]["grade_id"]: c for c in code if "nbgrader" in c.metadata}
    assert marked, f"{chapter.name} has no nbgrader metadata: run `python -m asvae_lib.book.assignments --mark`"
    solution, check = marked[f"ex{n}_1"], marked[f"ex{n}_1_check"]
    assert solution.metadata["nbgrader"]["solution"] and BEGIN_SOLUTION in solution.source
    assert check.metadata["nbgrader"]["grade"] and check.metadata["nbgrader"]["locked"] and "assert" in check.source
    assert all(BEGIN_SOLUTION not in c.source for c in code if "nbgrader" not in c.metadata)
    copy = tmp_path / chapter.name
    copy.write_text(chapter.read_text())
    assert not assignments.mark_chapter(copy), f"{chapter.name}: run `python -m asvae_lib.book.assignments --mark`"


def test_a_solution_without_a_check_is_refused():
    notebook = jupytext.reads("# %%\nx = 1\n### BEGIN SOLUTION\n### END SOLUTION\n", fmt="py:percent")
    with pytest.raises(ValueError, match="ex3_1: the solution cell must be followed by a cell that checks it"):
        assignments.mark_for_nbgrader(notebook, 3)


@pytest.fixture(scope="module")
def nbgrader_python():
    """The interpreter that runs these tests, which must have nbgrader (requirements.txt installs it), so that
    nbgrader and the kernel it grades in see the same packages as the reader's notebooks: torch and asvae_lib
    in a virtual environment as well as in the system Python. Never skipped: a missing nbgrader fails."""
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        pytest.fail("nbgrader is not installed in this Python: run `python -m pip install -r requirements.txt`")
    return sys.executable


def nbgrader(python, course, *args):
    """Run nbgrader in ``course`` (it calls `alembic` from PATH, which sits beside its Python)."""
    env = {**os.environ, "PATH": f"{Path(python).parent}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([python, "-m", "nbgrader", *args], cwd=course, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr[-3000:]


def test_nbgrader_accepts_every_chapter_and_grades_an_exercise(tmp_path, nbgrader_python):
    """nbgrader itself: `generate_assignment` on every chapter (it stops at a solution region outside a
    solution cell); then `autograde` of chapter 4's exercise section (it imports torch and asvae_lib, and
    runs in a second; the whole chapter would take minutes to execute twice): the reference solution
    scores full marks, the untouched student version 0. A cell may take 10 minutes on a busy machine
    (nbgrader's default is 30 s)."""
    (tmp_path / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.root = "."\n'
                                                 'c.ExecutePreprocessor.timeout = 600\n')
    for chapter in CHAPTERS:
        folder = tmp_path / "source" / "book"
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(jupytext.read(chapter), folder / (chapter.stem + ".ipynb"))
    nbgrader(nbgrader_python, tmp_path, "generate_assignment", "book")
    assert sorted(p.stem for p in (tmp_path / "release" / "book").glob("*.ipynb")) == [c.stem for c in CHAPTERS]

    chapter = next(c for c in CHAPTERS if c.stem.startswith("04_"))
    exercises = jupytext.read(chapter)
    start = max(i for i, c in enumerate(exercises.cells)
                if c.cell_type == "markdown" and c.source.startswith("## Exercises"))
    exercises.cells = exercises.cells[start:]
    source = tmp_path / "source" / "ex4" / "ex4.ipynb"
    source.parent.mkdir(parents=True)
    nbformat.write(exercises, source)
    nbgrader(nbgrader_python, tmp_path, "generate_assignment", "ex4")
    for student, notebook in (("solved", source), ("unsolved", tmp_path / "release" / "ex4" / "ex4.ipynb")):
        (tmp_path / "submitted" / student / "ex4").mkdir(parents=True)
        (tmp_path / "submitted" / student / "ex4" / "ex4.ipynb").write_bytes(notebook.read_bytes())
    nbgrader(nbgrader_python, tmp_path, "autograde", "ex4")
    read = ("import json, sys\nfrom nbgrader.api import Gradebook\n"
            "with Gradebook(sys.argv[1]) as book:\n"
            "    print(json.dumps({s: [book.find_submission('ex4', s).score, book.find_submission('ex4', s).max_score]"
            " for s in ('solved', 'unsolved')}))")
    scores = json.loads(subprocess.run([nbgrader_python, "-c", read, f"sqlite:///{tmp_path / 'gradebook.db'}"],
                                       capture_output=True, text=True, check=True, timeout=120).stdout)
    points = float(sum(bool(c.metadata.get("nbgrader", {}).get("grade")) for c in exercises.cells))  # a point per check
    assert scores == {"solved": [points, points], "unsolved": [0.0, points]}
