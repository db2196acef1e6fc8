# The AS-VAE book. `make help` lists the targets.
PY ?= python
CHAPTERS  := $(sort $(wildcard chapters/*.py))
NOTEBOOKS := $(CHAPTERS:.py=.ipynb)
LIBRARY   := $(wildcard asvae_lib/*.py)

.PHONY: help test unit chapters book lab clean
help:
	@echo "make test      unit tests, notebook checks, every chapter under nbval (quick profile)"
	@echo "make book      re-execute changed chapters and store them with outputs"
	@echo "               (ASVAE_PROFILE=full make book for the paper's scale, on a GPU)"
	@echo "make lab       open the chapters in JupyterLab"

test: unit chapters

unit:
	ASVAE_PROFILE=quick $(PY) -m pytest tests

# --nbval-lax runs every cell and fails on any error, so each claim-checking
# cell (an assert) fails the run when its claim is false; outputs are not
# compared, since figures and timings differ from run to run.
# Training chapters keep their runs in .test-runs/ (emptied first), so a test
# always trains afresh and never picks up a reader's checkpoints in runs/.
chapters:
	rm -rf .test-runs
	ASVAE_PROFILE=quick ASVAE_RUNS=.test-runs $(PY) -m pytest --nbval-lax --nbval-cell-timeout=900 chapters

# The .py (percent format) is the source; the .ipynb beside it is stored executed.
book: $(NOTEBOOKS)
chapters/%.ipynb: chapters/%.py $(LIBRARY)
	$(PY) -m jupytext --to ipynb --execute $<

lab:
	$(PY) -m jupyter lab chapters

clean:
	rm -rf .pytest_cache */__pycache__ data/cache
