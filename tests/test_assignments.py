"""Course assignments: the student version of a chapter runs, fails its checks
until solved, and passes them with the reference solution."""
from pathlib import Path

import jupytext
import pytest

from asvae_lib import assignments
from asvae_lib.assignments import BEGIN_HIDDEN, BEGIN_SOLUTION, student_source, student_version

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
def test_student_version_fails_until_solved_and_reference_passes(chapter):
    reference = jupytext.read(chapter)
    student = student_version(reference)
    student_code = "\n".join(c.source for c in student.cells if c.cell_type == "code")
    assert BEGIN_SOLUTION not in student_code and BEGIN_HIDDEN not in student_code
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")

    namespace = {}
    for source in exercise_cells(reference):              # reference solution: every check passes
        exec(compile(source, str(chapter), "exec"), namespace)

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
