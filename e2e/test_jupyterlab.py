"""A chapter run the way a reader runs it: JupyterLab in a real (headless) browser.

`make e2e` starts JupyterLab on 127.0.0.1 with an empty workspace and its own
settings, opens a fresh copy of a chapter (made from its .py source, so no stored
output can pass for a new one) in Debian's Chromium, clicks Run > Run All Cells,
waits for the last cell, saves the notebook from the browser, and checks:

* the saved notebook has every code cell executed and no error output;
* at least one matplotlib figure was rendered as an image on the page;
* the chapter's sliders rendered as live widgets, and moving one redraws the
  figure under it (the kernel answered the browser);
* a screenshot of the page is saved in e2e/screenshots/.

The browser is Debian's `chromium` package (`apt-get install chromium`), or
whatever `$CHROMIUM` names; Playwright drives it over its DevTools protocol and
downloads nothing.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = os.environ.get("E2E_CHAPTER", "02_lemma1_density_ratio")
SCREENSHOTS = ROOT / "e2e" / "screenshots"
RUN_TIMEOUT_S = 600
# JupyterLab settings for the test: every cell stays in the page (no windowing, so
# every output can be inspected) and no news pop-up covers the notebook.
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
    # no autosave halfway through the run: the file on disk is the one the test saves at the end
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def chromium() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("No Chromium found. Install Debian's browser (`sudo apt-get install chromium`) "
                    "or set CHROMIUM to a Chrome/Chromium executable.", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving a folder that holds one fresh copy of the chapter."""
    folder = tmp_path_factory.mktemp("lab")
    notebook = jupytext.read(ROOT / "chapters" / f"{CHAPTER}.py")
    notebook.metadata.pop("jupytext", None)          # a plain notebook: saving it writes no .py
    jupytext.write(notebook, folder / f"{CHAPTER}.ipynb")
    for name, values in SETTINGS.items():
        (folder / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "settings" / name).write_text(json.dumps(values))
    port, token = free_port(), "e2e-" + os.urandom(8).hex()
    env = dict(os.environ, ASVAE_PROFILE="quick", ASVAE_RUNS=str(folder / "runs"))
    log = open(folder / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={folder}", f"--LabApp.user_settings_dir={folder / 'settings'}",
         f"--LabApp.workspaces_dir={folder / 'workspaces'}"],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                server.kill()
                pytest.fail(f"JupyterLab did not start; its log:\n{(folder / 'jupyterlab.log').read_text()}")
            time.sleep(0.5)
    yield dict(url=f"{base}/lab/tree/{CHAPTER}.ipynb?reset&token={token}", folder=folder)
    server.terminate()
    server.wait(timeout=30)
    log.close()


def wait_for_last_cell(page, timeout_s: int) -> list:
    """Poll the cells' prompts until the last code cell has an execution count, or
    nothing is running or queued any more (Run All stops at the first error)."""
    prompts = page.locator(".jp-CodeCell .jp-InputArea-prompt")
    deadline, quiet = time.time() + timeout_s, 0
    while time.time() < deadline:
        texts = [t.strip() for t in prompts.evaluate_all("els => els.map(e => e.textContent)")]
        if texts and texts[-1] not in ("", "[ ]:", "[*]:"):
            return texts
        quiet = quiet + 1 if "[*]:" not in texts else 0
        if quiet >= 10:                               # 5 s with no cell running or queued
            return texts
        time.sleep(0.5)
    pytest.fail(f"the chapter did not finish in {timeout_s} s; prompts: {texts}")


def wait_for_saved(path: Path, prompts: list, timeout_s: int = 60) -> None:
    """Wait until the file on disk holds what the page shows: as many executed code
    cells as there are numbered prompts."""
    executed = sum(t not in ("", "[ ]:", "[*]:") for t in prompts)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        cells = json.loads(path.read_text())["cells"]
        if sum(bool(c.get("execution_count")) for c in cells if c["cell_type"] == "code") == executed:
            return
        time.sleep(0.5)
    pytest.fail(f"JupyterLab did not save {path.name} with {executed} executed cells within {timeout_s} s")


def check_saved_run(path: Path) -> None:
    """The notebook as the browser saved it: every code cell executed, none failed."""
    code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"a cell failed in the browser: {errors[0]['ename']}: {errors[0]['evalue']}"
    missing = [i for i, c in enumerate(code) if not c["execution_count"]]
    assert not missing, f"code cells {missing} did not run"
    print(f"saved from the browser: {len(code)} code cells executed, no errors")


def test_chapter_runs_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{CHAPTER}.png"
    shot.unlink(missing_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(lab["url"])
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=120_000)
            start = time.time()
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            prompts = wait_for_last_cell(page, RUN_TIMEOUT_S)
            print(f"{CHAPTER}: Run All Cells finished in {time.time() - start:.0f} s")
            page.get_by_role("menuitem", name="File", exact=True).click()
            page.get_by_role("menuitem", name=re.compile(r"^Save( Notebook)?\b")).first.click()
            wait_for_saved(lab["folder"] / f"{CHAPTER}.ipynb", prompts)
            check_saved_run(lab["folder"] / f"{CHAPTER}.ipynb")

            figures = page.locator(".jp-OutputArea-output img")
            sliders = page.locator(".widget-slider")
            print(f"rendered: {figures.count()} images, {sliders.count()} sliders")
            assert figures.count() >= 1, "no figure was rendered"
            assert sliders.count() >= 1, "no slider widget was rendered"

            # Move the first slider of the last interactive widget and wait for its figure to change.
            widget = page.locator(".widget-interact").last
            widget.scroll_into_view_if_needed()
            picture = widget.locator(".widget-output img").first
            before = picture.get_attribute("src")
            handle = widget.locator(".widget-slider .noUi-handle").first
            handle.focus()
            page.keyboard.press("ArrowRight")
            # The output area replaces its <img> on a redraw: look the picture up afresh each time.
            page.wait_for_function(
                "([w, old]) => { const img = w.querySelector('.widget-output img');"
                " return img !== null && img.getAttribute('src') !== old; }",
                arg=[widget.element_handle(), before], timeout=120_000)
            print("moving a slider redrew the widget's figure")
            time.sleep(1)
            page.screenshot(path=str(shot))

        finally:
            if not shot.exists():
                page.screenshot(path=str(shot))
            browser.close()
    print(f"screenshot: {shot}")

