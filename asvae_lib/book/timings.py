"""``make timings``: how long a newcomer waits, measured on a fresh clone, held to the book's budgets.

`make test` reports time and never fails on it (conftest.py). This benchmark is where time counts:
it clones the committed tree into a temporary folder and follows the README's quick start there
(a new virtual environment, ``pip install -r requirements.txt``), then times ``make lint``,
``make unit``, ``make chapters`` (each chapter separately, from conftest.py's record) and, where
Chromium is installed, ``make e2e``. It writes ``results/timings-cpu.json`` (with the machine, the
versions and the load average before it started: measure on an idle machine) and prints the
README's table. It exits 1 when a chapter is over its budget or `make test` took over
``TEST_GOAL_S``, so a slower book shows up here, not as a red `make test` on a reader's laptop.

    python -m asvae_lib.book.timings [--out results/timings-cpu.json] [--table]
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEST_GOAL_S = 600            # `make test` (lint, unit tests, chapters) on an idle 2-core CPU


FAILED = []                  # the commands of this measurement that exited non-zero


def timed(cmd: list, cwd: Path, env: dict) -> float:
    """Run ``cmd`` and return its wall-clock seconds; a failure is timed too, and kept in FAILED
    (the first measurement of a commit without a record fails the README-table test, for one)."""
    print("+", " ".join(cmd), flush=True)
    start = time.perf_counter()
    if subprocess.run(cmd, cwd=cwd, env=env, check=False).returncode != 0:
        FAILED.append(" ".join(cmd))
    return time.perf_counter() - start


def budgets() -> dict:
    """conftest.py's per-chapter budgets (the file is not an importable module of the library)."""
    namespace = {}
    exec(compile((REPO / "conftest.py").read_text(), "conftest.py", "exec"), namespace)
    return namespace["BUDGET_S"]


def measure(clone: Path) -> dict:
    """Time the README's quick start in ``clone``; return {step: seconds} and what it ran on."""
    venv = clone / ".venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASVAE_", "VIRTUAL_ENV"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", VIRTUAL_ENV=str(venv),
               ASVAE_TIMINGS=str(clone / "timings.json"))
    steps = {"install (new venv, pip install -r requirements.txt)":
             timed([sys.executable, "-m", "venv", str(venv)], clone, env)
             + timed(["python", "-m", "pip", "install", "-q", "-r", "requirements.txt"], clone, env)}
    steps["make lint"] = timed(["make", "lint"], clone, env)
    steps["make unit (wall)"] = timed(["make", "unit"], clone, env)
    steps["make chapters (wall)"] = timed(["make", "chapters"], clone, env)
    if shutil.which(os.environ.get("CHROMIUM", "chromium")):
        steps["make e2e (wall)"] = timed(["make", "e2e"], clone, env)
    steps.update(json.loads((clone / "timings.json").read_text())["steps"])
    versions = subprocess.run([venv / "bin" / "python", "-c", "import torch, sys; print(torch.__version__,"
                               " sys.version.split()[0])"], capture_output=True, text=True, check=True).stdout.split()
    return {"steps": {k: round(v, 1) for k, v in steps.items()}, "torch": versions[0], "python": versions[1]}


def verdict(times: dict, budget: dict) -> list:
    """What is over its budget: chapters over theirs, and `make test` over TEST_GOAL_S."""
    steps = times["steps"]
    over = [f"{k}: {s} s > {budget[k[:2]]} s" for k, s in steps.items() if k[:2] in budget and s > budget[k[:2]]]
    test = sum(steps[k] for k in ("make lint", "make unit (wall)", "make chapters (wall)"))
    if test > TEST_GOAL_S:
        over.append(f"make test: {test:.0f} s > {TEST_GOAL_S} s")
    return over


def table(times: dict) -> str:
    """The README's timing table: the steps in the order a newcomer meets them, each chapter under nbval."""
    steps = times["steps"]
    chapters = sorted(k for k in steps if k[:2].isdigit())
    order = ["install (new venv, pip install -r requirements.txt)", "make lint", "make unit (wall)", *chapters,
             "make chapters (wall)", "make e2e (wall)", "all of the above, wall clock"]
    rows = [f"| {k} | {steps[k]:.1f} |" for k in order if k in steps]
    test = sum(steps[k] for k in ("make lint", "make unit (wall)", "make chapters (wall)"))
    rows.insert(order.index("make chapters (wall)") + 1, f"| **make test** (lint + unit + chapters) | {test:.1f} |")
    return "\n".join(["| step | seconds |", "|---|---|", *rows])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "results" / "timings-cpu.json"), help="the record to write")
    p.add_argument("--table", action="store_true", help="print the stored record as the README table; measure nothing")
    args = p.parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.out).read_text())))
        return 0
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.strip()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="asvae-timings-") as tmp:
        clone = Path(tmp) / "book"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        start = time.perf_counter()
        times = measure(clone)
        times["steps"]["all of the above, wall clock"] = round(time.perf_counter() - start, 1)
    times.update(failed=FAILED, commit=commit, date=datetime.date.today().isoformat(),
                 cpu=platform.processor() or platform.machine(),
                 cores=os.cpu_count(), load_average_before=[round(x, 2) for x in load],
                 pip_cache="warm" if (Path.home() / ".cache" / "pip").exists() else "cold")
    Path(args.out).write_text(json.dumps(times, indent=1) + "\n")
    print(table(times))
    over = verdict(times, budgets()) + [f"failed: {cmd}" for cmd in FAILED]
    for line in over:
        print("OVER BUDGET:", line)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
