"""Per-chapter timing for `make test`: the book's time budget, measured every run, and a
chapter over its budget fails the run; and a longer wait for a cell's last outputs than
nbval's hard-coded 5 s."""
import os
from collections import defaultdict
from pathlib import Path

import pytest

# Quick-profile budget of each chapter under nbval, in seconds (README, "Chapters"): about twice
# what a clean run took on a 2-core machine. On a slower machine, scale them all:
# ASVAE_BUDGET_SCALE=2 make test.
BUDGET_S = {"01": 10, "02": 30, "03": 20, "04": 30, "05": 15, "06": 80, "07": 110, "08": 120, "09": 15, "10": 30}
SCALE = float(os.environ.get("ASVAE_BUDGET_SCALE", "1"))
_seconds = defaultdict(float)


def over_budget() -> dict:
    """{chapter: (seconds, budget)} for every chapter that took longer than its budget."""
    return {stem: (s, BUDGET_S[stem[:2]] * SCALE) for stem, s in _seconds.items()
            if stem[:2] in BUDGET_S and s > BUDGET_S[stem[:2]] * SCALE}


def pytest_collection_modifyitems(items):
    """nbval waits only 5 s for each output message after a cell has finished (not configurable:
    nbval issues #136 and #231); on a busy 2-core CI machine, after a long training cell with
    progress bars, that wait ran out once here. Give it a minute."""
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = 60


def pytest_runtest_logreport(report):
    path = Path(report.nodeid.split("::")[0])
    if path.suffix == ".ipynb":
        _seconds[path.stem] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not _seconds:
        return
    terminalreporter.section("chapter times (quick profile)")
    over = over_budget()
    for stem, seconds in sorted(_seconds.items()):
        budget = BUDGET_S.get(stem[:2])
        flag = "   OVER BUDGET: fails the run" if stem in over else ""
        terminalreporter.write_line(f"{stem:32s} {seconds:7.1f} s   budget {budget} s x {SCALE:g}{flag}")
    terminalreporter.write_line(f"{'all chapters':32s} {sum(_seconds.values()):7.1f} s")
    if over:
        terminalreporter.write_line("a chapter over its budget fails `make test`: make it faster, or on a slow "
                                    "machine set ASVAE_BUDGET_SCALE (e.g. 2)", red=True)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if over_budget() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
