# The workshop hub's targets, included by the Makefile (book/workshop.md, "Run a workshop on one server").
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
hub-deps: ## the hub's environment (.venv-hub) and proxy (npm), when root
	@if [ "$$(id -u)" != 0 ]; then echo "Not root: tests/integration/test_hub.py (the workshop hub) will be skipped."; \
	elif ! command -v npm >/dev/null; then echo "WARNING: npm not found (apt-get install npm): no proxy, so make hub cannot run and tests/integration/test_hub.py will be skipped."; \
	else $(MAKE) --no-print-directory $(HUB_STAMP) $(CHP); fi

hub: hub-deps ## serve the course to a workshop with JupyterHub (root; see the website)
	@test "$$(id -u)" = 0 || { echo "make hub runs as root: it creates a Unix user for each learner"; exit 1; }
	@$(HUB_VENV)/bin/python deploy/workshop_hub.py check-access $(CURDIR) $(HUB_VENV)
	@mkdir -p .hub && chmod 700 .hub
	@for f in workshop-password instructor-password; do test -s .hub/$$f || \
	  (umask 077; $(HUB_VENV)/bin/python -c 'import secrets; print(secrets.token_urlsafe(9))' > .hub/$$f); done
	@echo "Learners log in at http://$${HUB_IP:-127.0.0.1}:$${HUB_PORT:-8000} with any name and the password in .hub/workshop-password: $$(cat .hub/workshop-password)"
	@echo "The instructor logs in as $${WORKSHOP_ADMIN:-instructor} with the password in .hub/instructor-password."
	$(HUB_ENV) $(HUB_VENV)/bin/jupyterhub -f deploy/jupyterhub_config.py

workshop-load: $(STAMP) hub-deps ## measure how many learners this machine holds (root; ~15 min)
	$(HUB_ENV) $(BIN)/python deploy/load_test.py $(LOAD_ARGS)
