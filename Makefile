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
# nginx in front of gunicorn in production (server/front.py); its tests run a real one
NGINX := /usr/sbin/nginx
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help install app demo test lint bench clean check-reliability

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

$(NGINX):
	$(SUDO) apt-get install -y --no-install-recommends nginx || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends nginx; }

demo: install app
	$(VENV)/bin/galsearch demo $(if $(filter 1,$(TRAIN)),--train,)

test: install app $(CHROMIUM) $(NGINX)
	npm run check
	npm test
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .

bench: install $(NGINX)
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b --quick || exit 1; done

# Everything of issue 9 at full length: schemathesis with 100 examples per operation plus its
# coverage phase (make test runs 5), the fault and security tests, the browser tests (the app
# under its Content-Security-Policy), and the load benchmark in quick mode.
RELIABILITY_TESTS := tests/server/test_faults.py tests/server/test_probe_faults.py \
	tests/server/test_security.py tests/server/test_authorization.py tests/server/test_campaign_isolation.py \
	tests/server/test_bad_input.py tests/server/test_api_seeds.py tests/server/test_exports.py \
	tests/server/test_errors.py tests/server/test_gunicorn.py tests/ml/ingest \
	tests/ml/test_survey.py tests/ml/index/test_bundle.py
check-reliability: install app $(CHROMIUM) $(NGINX)
	@rm -f benchmarks/results/fuzz.json
	GALSEARCH_FUZZ_EXAMPLES=100 GALSEARCH_FUZZ_REPORT=benchmarks/results/fuzz.json \
		$(PY) -m pytest -q tests/server/test_api_fuzz.py -p no:cacheprovider
	$(PY) -m pytest -q $(RELIABILITY_TESTS)
	$(PY) -m pytest -q tests/e2e
	$(PY) benchmarks/load.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info node_modules server/static/app
