# The AS-VAE book. `make help` lists the targets.
PY ?= python
CHAPTERS  := $(sort $(wildcard chapters/*.py))
NOTEBOOKS := $(CHAPTERS:.py=.ipynb)
LIBRARY   := $(wildcard asvae_lib/*.py)

.PHONY: help test lint library unit chapters e2e book lab clean train mnist mnist-parallel bench timings assignments
help:
	@echo "make test      ruff, unit tests, notebook checks, every chapter under nbval (quick profile);"
	@echo "               prints each chapter's time beside its budget (time never fails it)"
	@echo "make library   write asvae_lib's science modules from the chapters' #@save cells (the chapters are the source)"
	@echo "make e2e       run chapter 2 in JupyterLab in headless Chromium (apt-get install chromium)"
	@echo "               (E2E_CHAPTER=07_mnist make e2e for another chapter)"
	@echo "make book      re-execute changed chapters and store them with outputs"
	@echo "               (ASVAE_PROFILE=full make book for the paper's scale, on a GPU)"
	@echo "make lab       open the chapters in JupyterLab (make lab LAB_ARGS=\"--port 9999 --no-browser\")"
	@echo "make train DATASET=mnist METHOD=asvae [PROFILE=full] [MAX_MINUTES=0]"
	@echo "               train, resume or re-score one model; writes results/<dataset>-<method>-<profile>.json"
	@echo "make mnist [MAX_MINUTES=0] [TRAIN_ARGS=--train-only]"
	@echo "               every MNIST run of chapter 7 in the full profile (MNIST_RUNS: each method, both readings"
	@echo "               of (12), the seeds), one after another; each resumes where it stopped"
	@echo "make mnist-parallel DEVICE=cuda MAX_MINUTES=4 [LOGS=DIR] [RESULTS=DIR]"
	@echo "               every MNIST run at once, one process each (on one GPU), each capped at MAX_MINUTES,"
	@echo "               then each scored; resumes like make mnist (ASVAE_SMOKE=1 DEVICE=cpu: a smoke test)"
	@echo "make assignments  student versions of the chapters with exercises -> assignments/"
	@echo "make bench     AS-VAE step vs VAE step, sampling speed, peak memory on this machine -> results/bench-*.json"
	@echo "make smoke-full  every chapter's full-profile code on this CPU, steps capped, fake data where none is here"
	@echo "make timings   the quick start timed on a fresh clone of HEAD, held to the budgets -> results/timings-cpu.json"

test: lint unit chapters

# the science modules are generated from the chapters' #@save cells (asvae_lib/book/library.py);
# tests/test_library.py fails when a module and its chapter disagree
library:
	$(PY) -m asvae_lib.book.library

# the book's lint settings are in pyproject.toml ([tool.ruff])
lint:
	$(PY) -m ruff check .

unit:
	ASVAE_PROFILE=quick $(PY) -m pytest tests

# --nbval-lax runs every cell and fails on any error, so each claim-checking
# cell (an assert) fails the run when its claim is false; outputs are not
# compared, since figures and timings differ from run to run.
# Training chapters keep their runs in .test-runs/ (emptied first), so a test
# always trains afresh and never picks up a reader's checkpoints in runs/.
chapters:
	rm -rf $(CURDIR)/.test-runs
	ASVAE_PROFILE=quick ASVAE_RUNS=$(CURDIR)/.test-runs $(PY) -m pytest --nbval-lax --nbval-cell-timeout=900 chapters

# A chapter run the way a reader runs it: JupyterLab on 127.0.0.1, Run All Cells
# clicked in Debian's Chromium (headless), figure and widget checked, screenshot in
# e2e/screenshots/. See e2e/test_jupyterlab.py.
e2e:
	ASVAE_PROFILE=quick $(PY) -m pytest -s e2e

# The .py (percent format) is the source; the .ipynb beside it is stored executed.
book: $(NOTEBOOKS)
chapters/%.ipynb: chapters/%.py $(LIBRARY)
	$(PY) -m jupytext --to ipynb --execute $<
	$(PY) -m asvae_lib.book.notebook_outputs $@

DATASET ?= mnist
METHOD ?= asvae
PROFILE ?= full
MAX_MINUTES ?= 0
train:
	$(PY) -m asvae_lib.train --dataset $(DATASET) --method $(METHOD) --profile $(PROFILE) --max-minutes $(MAX_MINUTES)

# chapter 7's runs, most important first: each is `--method` and its options (reading B's lambda is
# chapter 6's pick); the VAE and the best AS-VAE get two more seeds
MNIST_RUNS := "vae" "asvae" "asvae --reading B --lam 3" "asvae-r" "asvae-pathwise" "asvae-g" \
	"asvae-g --reading B --lam 3" "vae --seed 1" "vae --seed 2"
TRAIN_ARGS ?=
RESULTS ?= $(CURDIR)/results
mnist:
	for r in $(MNIST_RUNS); do \
	  $(PY) -m asvae_lib.train --dataset mnist --profile full --max-minutes $(MAX_MINUTES) --results $(RESULTS) \
	    $(TRAIN_ARGS) --method $$r || exit $$?; \
	done

# the same runs at once, one process each: for a GPU lent for minutes, where the runs are too small
# to fill it one at a time. Each trains up to MAX_MINUTES (or early stopping), then all are scored.
DEVICE ?= auto
LOGS ?= $(CURDIR)/runs/logs
mnist-parallel:
	mkdir -p $(LOGS)
	i=0; for r in $(MNIST_RUNS); do i=$$((i+1)); \
	  $(PY) -m asvae_lib.train --dataset mnist --profile full --device $(DEVICE) --max-minutes $(MAX_MINUTES) \
	    --train-only --method $$r > $(LOGS)/mnist-$$i.log 2>&1 & \
	done; wait
	for r in $(MNIST_RUNS); do \
	  $(PY) -m asvae_lib.train --dataset mnist --profile full --device $(DEVICE) --results $(RESULTS) \
	    --method $$r || exit $$?; \
	done

bench:
	$(PY) -m asvae_lib.book.bench

# the benchmark that holds the book to its time budgets (conftest.py); run it on an idle machine
timings:
	$(PY) -m asvae_lib.book.timings

assignments:
	$(PY) -m asvae_lib.book.assignments --out assignments

# Jupyter refuses to run as root unless told to (containers often run as root);
# LAB_ARGS passes options through, e.g. make lab LAB_ARGS="--port 9999 --no-browser"
LAB_ARGS ?=
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
lab:
	$(PY) -m jupyter lab chapters $(ALLOW_ROOT) $(LAB_ARGS)

clean:
	rm -rf .pytest_cache */__pycache__ data/cache

# The full profile's code on a CPU, in minutes: ASVAE_SMOKE=1 keeps every full-profile
# branch and network but caps step and sample counts (asvae_lib/profile.py), and stands
# FAKE images in for a data set whose files are not in data/cache (nothing is downloaded),
# so it finds errors, not results (checks of claims about trained models are skipped).
# The chapters' .py sources are run (the stored .ipynb are left as they are), converted
# into .smoke-runs/chapters/, under nbval; the first error stops it (its chapter times are
# printed under conftest.py's quick-profile heading). SMOKE_CHAPTERS=chapters/07_mnist.py runs one.
SMOKE_DIR := $(CURDIR)/.smoke-runs
SMOKE_CHAPTERS ?= $(CHAPTERS)
smoke-full:
	rm -rf $(SMOKE_DIR)
	mkdir -p $(SMOKE_DIR)/chapters
	for f in $(SMOKE_CHAPTERS); do \
	  $(PY) -m jupytext --quiet --to ipynb --output $(SMOKE_DIR)/chapters/$$(basename $$f .py).ipynb $$f || exit $$?; \
	done
	ASVAE_PROFILE=full ASVAE_SMOKE=1 ASVAE_RUNS=$(SMOKE_DIR) MPLBACKEND=Agg \
	  $(PY) -m pytest -x --nbval-lax --nbval-cell-timeout=900 --durations=5 $(SMOKE_DIR)/chapters
