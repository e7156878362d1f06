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

.PHONY: help lab test lint unit notebooks exercises bench doctor clean system-deps book hub hub-deps workshop-load

help:
	@echo "make lab        open the course in JupyterLab (creates .venv when missing)"
	@echo "make test       run every check: ruff, unit tests, notebooks under nbval (creates .venv when missing)"
	@echo "make notebooks  re-execute and save every notebook in notebooks/ and solutions/"
	@echo "make exercises  regenerate exercises/ from solutions/"
	@echo "make bench      time and measure every notebook (not part of make test)"
	@echo "make doctor     check the environment"
	@echo "make book       build the course website into _build/html (creates .venv-book when missing)"
	@echo "make hub        serve the course to a workshop with JupyterHub (root; see the README)"
	@echo "make workshop-load  measure how many learners this machine holds (root; ~15 min)"

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
lab: $(STAMP)
	$(DET) $(BIN)/jupyter lab $(ROOT_FLAG) $(LAB_ARGS) notebooks/00_start_here.ipynb

test: $(STAMP) system-deps hub-deps
	$(BIN)/ruff check .
	$(DET) $(BIN)/python -m pytest -n $(JOBS) --dist loadscope -rs --nbval-kernel-name $(KERNEL) $(PYTEST_ARGS)

# System packages the tests need, installed with apt when missing and we are root:
# - chromium: tests/test_browser.py drives JupyterLab in Debian's Chromium (never a downloaded
#   browser); without it that test is skipped, and we say so loudly;
# - bubblewrap: the grader's sandbox (bwrap); without it `grade` refuses to run unless
#   --no-sandbox is given, and the adversarial grader tests are skipped.
CHROMIUM := /usr/bin/chromium
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq
system-deps:
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

# --- the workshop hub (README: "Run a workshop on one server") ---------------------------
# Learners' servers and kernels run as their own Unix users, so the hub's environment must be
# reachable by every user: it is built from the system Python (a pyenv or home-directory Python
# usually sits under a private folder such as /root), with the same pins as .venv.
HUB_PYTHON ?= /usr/bin/python3
HUB_VENV   := .venv-hub
HUB_STAMP  := $(HUB_VENV)/.installed
CHP        := deploy/proxy/node_modules/.bin/configurable-http-proxy
HUB_ENV    := COURSE_VENV=$(CURDIR)/$(HUB_VENV)

$(HUB_STAMP): requirements.txt pyproject.toml
	@test -x $(HUB_VENV)/bin/python || $(HUB_PYTHON) -m venv $(HUB_VENV)
	$(HUB_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(HUB_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	$(HUB_VENV)/bin/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "$(KERNEL_DISPLAY)" >/dev/null
	@touch $(HUB_STAMP)

# configurable-http-proxy from npm, into deploy/proxy/ (pinned by its package-lock.json), never globally
$(CHP): deploy/proxy/package.json deploy/proxy/package-lock.json
	npm ci --prefix deploy/proxy --no-audit --no-fund --loglevel=error
	@touch $(CHP)

# Only root can create learner accounts; elsewhere the smoke test in make test is skipped.
hub-deps:
	@if [ "$$(id -u)" != 0 ]; then echo "Not root: tests/test_hub.py (the workshop hub) will be skipped."; \
	elif ! command -v npm >/dev/null; then echo "WARNING: npm not found (apt-get install npm): no proxy, so make hub cannot run and tests/test_hub.py will be skipped."; \
	else $(MAKE) --no-print-directory $(HUB_STAMP) $(CHP); fi

hub: hub-deps
	@test "$$(id -u)" = 0 || { echo "make hub runs as root: it creates a Unix user for each learner"; exit 1; }
	@$(HUB_VENV)/bin/python deploy/workshop_hub.py check-access $(CURDIR) $(HUB_VENV)
	@mkdir -p .hub && chmod 700 .hub
	@for f in workshop-password instructor-password; do test -s .hub/$$f || \
	  (umask 077; $(HUB_VENV)/bin/python -c 'import secrets; print(secrets.token_urlsafe(9))' > .hub/$$f); done
	@echo "Learners log in at http://$${HUB_IP:-127.0.0.1}:$${HUB_PORT:-8000} with any name and the password in .hub/workshop-password: $$(cat .hub/workshop-password)"
	@echo "The instructor logs in as $${WORKSHOP_ADMIN:-instructor} with the password in .hub/instructor-password."
	$(HUB_ENV) $(HUB_VENV)/bin/jupyterhub -f deploy/jupyterhub_config.py

workshop-load: $(STAMP) hub-deps
	$(HUB_ENV) $(BIN)/python deploy/load_test.py $(LOAD_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

unit: $(STAMP)
	$(DET) $(BIN)/python -m pytest -n $(JOBS) --dist loadscope course_utils tests $(PYTEST_ARGS)

notebooks: $(STAMP)
	$(DET) $(BIN)/python -m course_utils regenerate notebooks solutions

exercises: $(STAMP)
	$(DET) $(BIN)/python -m course_utils build

bench: $(STAMP)
	$(DET) $(BIN)/python -m course_utils bench

doctor: $(STAMP)
	$(BIN)/python -m course_utils doctor

# The course as a static website (Sphinx + MyST-NB), in its own environment so that learners
# who only run make lab never install it. Executes nothing: it shows the committed outputs.
BOOK_VENV  := .venv-book
BOOK_STAMP := $(BOOK_VENV)/.installed
$(BOOK_STAMP): requirements-book.txt
	@test -x $(BOOK_VENV)/bin/python || $(PYTHON) -m venv $(BOOK_VENV)
	$(BOOK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-book.txt
	@touch $(BOOK_STAMP)

book: $(BOOK_STAMP)
	$(BOOK_VENV)/bin/python book/build.py

clean:
	rm -rf $(VENV) $(BOOK_VENV) $(HUB_VENV) _build test-output results .pytest_cache .ruff_cache deploy/proxy/node_modules
