"""Per-chapter timing for `make test`: every run prints how long each chapter took beside its
time budget and flags the ones over it. Time is measured, never asserted: the exit status
depends on correctness only. `make timings` (asvae_lib/book/timings.py) is the benchmark that holds
the book to its budgets; it sets ASVAE_TIMINGS to a JSON file, into which this run's times go.
Also a longer wait for a cell's last outputs than nbval's hard-coded 5 s."""
import json
import os
from collections import defaultdict
from pathlib import Path

# Quick-profile budget of each chapter under nbval, in seconds (README, "Chapters"): about twice
# what a clean run took on an idle 2-core machine. `make timings` compares against them.
BUDGET_S = {"01": 10, "02": 30, "03": 20, "04": 60, "05": 15, "06": 80, "07": 110, "08": 120, "09": 15, "10": 30}
_seconds = defaultdict(float)


def over_budget() -> dict:
    """{chapter: (seconds, budget)} for every chapter that took longer than its budget."""
    return {stem: (s, BUDGET_S[stem[:2]]) for stem, s in _seconds.items()
            if stem[:2] in BUDGET_S and s > BUDGET_S[stem[:2]]}


def pytest_collection_modifyitems(items):
    """nbval waits only 5 s for each output message after a cell has finished (not configurable:
    nbval issues #136 and #231); on a busy 2-core CI machine, after a long training cell with
    progress bars, that wait ran out once here. Give it a minute."""
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = 60


def pytest_runtest_logreport(report):
    path = Path(report.nodeid.split("::")[0])
    folder = {"tests": "unit tests", "e2e": "browser test"}.get(path.parts[0], path.parts[0])
    _seconds[path.stem if path.suffix == ".ipynb" else folder] += report.duration


def pytest_terminal_summary(terminalreporter):
    chapters = {stem: s for stem, s in _seconds.items() if stem[:2] in BUDGET_S}
    if chapters:
        smoke = " smoke test" if os.environ.get("ASVAE_SMOKE") == "1" else ""
        profile = os.environ.get("ASVAE_PROFILE", "quick") + smoke
        terminalreporter.section(f"chapter times ({profile}; measured, not asserted: see `make timings`)")
        over = over_budget()
        for stem, seconds in sorted(chapters.items()):
            flag = "   over budget" if stem in over else ""
            terminalreporter.write_line(f"{stem:32s} {seconds:7.1f} s   budget {BUDGET_S.get(stem[:2])} s{flag}")
        terminalreporter.write_line(f"{'all chapters':32s} {sum(chapters.values()):7.1f} s")
    record = os.environ.get("ASVAE_TIMINGS")
    if record and _seconds:
        path = Path(record)
        times = json.loads(path.read_text()) if path.exists() else {}
        times.setdefault("steps", {}).update({k: round(v, 1) for k, v in _seconds.items()})
        path.write_text(json.dumps(times, indent=1) + "\n")
