"""Stored chapters show their progress bars where they ended.

A tqdm bar in a notebook is an ipywidget. Executing a chapter stores the widget's final
state in the notebook's metadata (JupyterLab draws it from there), but the output's plain
text, which GitHub and other viewers show, is the bar as it was created: 0%. This rewrites
that text from the stored final state, e.g. ``vae: 100%|##########| 600/600 [00:04<00:00]``.

    python -m asvae_lib.book.notebook_outputs chapters/*.ipynb     (make book runs it)
"""
import html
import json
import sys
from pathlib import Path

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def progress_text(model_id: str, state: dict) -> str | None:
    """The text of the tqdm bar whose box widget is ``model_id``, or None if it is not one."""
    box = state.get(model_id)
    if box is None or box["model_name"] != "HBoxModel":
        return None
    children = [state.get(c.removeprefix("IPY_MODEL_")) for c in box["state"].get("children", [])]
    names = [c and c["model_name"] for c in children]
    if names != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    left, bar, right = (c["state"] for c in children)
    filled = round(10 * bar.get("value", 0) / bar["max"]) if bar.get("max") else 0
    bar_text = "#" * filled + " " * (10 - filled)
    return f"{html.unescape(left.get('value', ''))}|{bar_text}|{html.unescape(right.get('value', ''))}"


def finalise(nb: dict) -> int:
    """Rewrite the plain text of every progress bar in ``nb`` from its final widget state; count them."""
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    changed = 0
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            text = view and progress_text(view["model_id"], state)
            if text:
                out["data"]["text/plain"] = [text]
                changed += 1
    return changed


def main(paths) -> int:
    for path in map(Path, paths):
        nb = json.loads(path.read_text())
        n = finalise(nb)
        if n:
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        print(f"{path}: {n} progress bars stored in their final state")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
