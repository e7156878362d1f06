# The two commands a newcomer needs:   make lab   |   make test
# Both create .venv first when it is missing (and reuse it afterwards).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
KERNEL := sizing-nn
KERNEL_DISPLAY := Python 3 (sizing-nn course)
JOBS   ?= 2
# Deterministic, thread-count-independent runs for tests, regeneration and benchmarks.
DET    := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0

.PHONY: help lab test check lint unit test-grading notebooks exercises bench doctor clean record deps nbgrader-deps system-deps book hub hub-deps workshop-load

# `make help` prints every target that has a "## " comment on its line, so none can be forgotten.
help: ## this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 22

# The virtual environment: rebuilt only when requirements.txt or pyproject.toml change.
$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10 or newer is needed; found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "$(KERNEL_DISPLAY)" >/dev/null
	@touch $(STAMP)
	@echo "Environment ready in $(VENV)."

# Jupyter refuses to run as root unless told; containers and CI machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
# One thread, as when the notebooks were saved: the lessons' training results (and the asserts
# that keep their prose true) then come out as saved, whatever the laptop's core count.
lab: $(STAMP) ## open the course in JupyterLab (creates .venv when missing)
	$(DET) $(BIN)/jupyter lab $(ROOT_FLAG) $(LAB_ARGS) notebooks/00_start_here.ipynb

test: deps ## run everything, as CI does: ruff, all tests, notebooks under nbval
	$(BIN)/ruff check .
	$(DET) $(BIN)/python -m pytest -n $(JOBS) --dist loadscope -rs --nbval-kernel-name $(KERNEL) $(PYTEST_ARGS)

# System packages the tests need, installed with apt when missing and we are root:
# - chromium: tests/integration/test_browser.py drives JupyterLab in Debian's Chromium (never a downloaded
#   browser); without it that test is skipped, and we say so loudly;
# - bubblewrap: the grader's sandbox (bwrap); without it `grade` refuses to run unless
#   --no-sandbox is given, and the adversarial grader tests are skipped.
CHROMIUM := /usr/bin/chromium
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq
system-deps: ## apt-get the browser and the sandbox the tests use (chromium, bubblewrap; root)
	@missing=""; [ -x $(CHROMIUM) ] || missing="$$missing chromium"; \
	  command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	  if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing$$missing for the tests (apt-get) ..."; \
	    (apt-get update -qq && $(APT_INSTALL) $$missing >/dev/null) \
	      || echo "apt-get could not install$$missing (see the messages above)"; \
	  fi
	@for need in "$(CHROMIUM):chromium:the JupyterLab browser test" "bwrap:bubblewrap:the grader's sandbox tests"; do \
	  path=$${need%%:*}; rest=$${need#*:}; package=$${rest%%:*}; what=$${rest#*:}; \
	  if ! command -v $$path >/dev/null && [ ! -x $$path ]; then \
	    echo ""; \
	    echo "################################################################################"; \
	    echo "#  WARNING: $$package not found: $$what WILL BE SKIPPED."; \
	    echo "#  Install it with:   sudo apt-get install $$package   (then run make test again)"; \
	    echo "################################################################################"; \
	    echo ""; \
	  fi; \
	done

include deploy/hub.mk

lint: $(STAMP) ## ruff over the whole tree
	$(BIN)/ruff check .

unit: $(STAMP) ## the fast tests: doctests and every test not marked slow
	$(DET) $(BIN)/python -m pytest -n $(JOBS) --dist loadscope -m "not slow" course_utils tests $(PYTEST_ARGS)

check: lint unit ## the fast part of make test (ruff, doctests, fast tests): about a minute

test-grading: $(STAMP) system-deps ## the grader's tests, sandbox and kernels included
	$(DET) $(BIN)/python -m pytest -n $(JOBS) --dist loadscope course_utils/grading tests/grading $(PYTEST_ARGS)

# The environments make test needs are independent, so they are built side by side (most of
# their time is spent waiting on downloads and unpacking, one core each); each target's output
# is printed whole when it ends.
deps: ## everything make test installs first, side by side: .venv, apt, hub, nbgrader, website
	@echo "Setting up side by side (each part prints when it is done): .venv, apt packages, hub, nbgrader, website ..."
	@$(MAKE) --no-print-directory -j6 --output-sync=target $(STAMP) system-deps hub-deps nbgrader-deps \
	  $(if $(filter 1,$(COURSE_SKIP_BOOK)),,$(BOOK_STAMP))

# The real nbgrader, for tests/integration/test_nbgrader_compat.py only (its own venv; the
# script uses the standard library, so it needs no .venv). COURSE_SKIP_NBGRADER=1 skips it.
NBGRADER_PY := tests/integration/nbgrader_env.py
nbgrader-deps: ## the nbgrader venv (.venv-nbgrader) that the compatibility test uses
	@if [ "$$COURSE_SKIP_NBGRADER" = 1 ]; then echo "COURSE_SKIP_NBGRADER=1: no nbgrader venv"; \
	else $(PYTHON) $(NBGRADER_PY) >/dev/null && echo "nbgrader ready in .venv-nbgrader."; fi

notebooks: $(STAMP) ## re-execute and save every notebook in notebooks/ and solutions/
	$(DET) $(BIN)/python -m course_utils regenerate notebooks solutions

exercises: $(STAMP) ## regenerate exercises/ from solutions/
	$(DET) $(BIN)/python -m course_utils build

bench: $(STAMP) ## time and measure every notebook and the grader (not part of make test)
	$(DET) $(BIN)/python -m course_utils bench

# Publishing a measurement: the report's figures go into book/measured/, whose tables the
# website renders; commit the two together. The commit named is the checkout measured.
REPORT ?= results/bench.json
record: $(STAMP) ## fold a report into book/measured/ (REPORT=results/bench.json or results/workshop-load.json)
	$(BIN)/python book/build.py --record $(REPORT) --commit "$$(git rev-parse --short HEAD)"

doctor: $(STAMP) ## check the environment
	$(BIN)/python -m course_utils doctor

# The course as a static website (Sphinx + MyST-NB), in its own environment so that learners
# who only run make lab never install it. Executes nothing: it shows the committed outputs.
BOOK_VENV  := .venv-book
BOOK_STAMP := $(BOOK_VENV)/.installed
$(BOOK_STAMP): requirements-book.txt
	@test -x $(BOOK_VENV)/bin/python || $(PYTHON) -m venv $(BOOK_VENV)
	$(BOOK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-book.txt
	@touch $(BOOK_STAMP)

book: $(BOOK_STAMP) ## build the course website into _build/html (creates .venv-book)
	$(BOOK_VENV)/bin/python book/build.py

clean: ## delete the environments and everything the tests and builds wrote
	rm -rf $(VENV) $(BOOK_VENV) $(HUB_VENV) .venv-nbgrader _build test-output results .pytest_cache .ruff_cache deploy/proxy/node_modules
