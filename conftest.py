"""Per-chapter timing for `make test`: the book's time budget, measured every run;
and a longer wait for a cell's last outputs than nbval's hard-coded 5 s."""
from collections import defaultdict
from pathlib import Path

# Quick-profile budget of each chapter under nbval, in seconds (README, "Chapters").
BUDGET_S = {"01": 30, "02": 60, "03": 60, "04": 60, "05": 60, "06": 120, "07": 300, "08": 400, "09": 240, "10": 10}
_seconds = defaultdict(float)


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
    for stem, seconds in sorted(_seconds.items()):
        budget = BUDGET_S.get(stem[:2])
        flag = "" if budget is None or seconds <= budget else "   OVER BUDGET"
        terminalreporter.write_line(f"{stem:32s} {seconds:7.1f} s   budget {budget} s{flag}")
    terminalreporter.write_line(f"{'all chapters':32s} {sum(_seconds.values()):7.1f} s")
