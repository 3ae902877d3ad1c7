# galsearch: `make demo` and `make test` set up everything they need themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
INSTALL_LOG := $(VENV)/install.log
TRAIN ?= 0
# the labeling app (frontend/, built by Vite into server/static/app/) and the browser its
# end-to-end tests drive (Debian's Chromium; Playwright's own download is not used)
NODE_STAMP := node_modules/.package-lock.json
APP_INDEX := server/static/app/index.html
APP_SOURCES := $(shell find frontend -type f -not -path '*/node_modules/*') vite.config.ts package.json package-lock.json
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help install app demo test lint bench clean

help:
	@echo "make demo   - simulate a survey and run galsearch on it (TRAIN=1 trains the model from scratch)"
	@echo "make test   - install everything and run the test suite"
	@echo "make lint   - ruff"
	@echo "make bench  - run the benchmarks in quick mode"

# The virtual environment, rebuilt when the project's dependencies change.
# pip's output goes to a log; on failure its tail is shown.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing Python dependencies into $(VENV) (log: $(INSTALL_LOG)) ..."
	@$(PIP) install -e '.[dev]' > $(INSTALL_LOG) 2>&1 || { grep -v 'is ignored' $(INSTALL_LOG) | tail -30; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

# npm ci writes node_modules/.package-lock.json; touched so that make sees it as new
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(NODE_STAMP)

$(APP_INDEX): $(NODE_STAMP) $(APP_SOURCES)
	npm run build

app: $(APP_INDEX)

$(CHROMIUM):
	$(SUDO) apt-get install -y chromium || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }

demo: install app
	$(VENV)/bin/galsearch demo $(if $(filter 1,$(TRAIN)),--train,)

test: install app $(CHROMIUM)
	npm run check
	npm test
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .

bench: install
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info node_modules server/static/app
