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

.PHONY: help install demo test lint bench clean

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

demo: install
	$(VENV)/bin/galsearch demo $(if $(filter 1,$(TRAIN)),--train,)

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .

bench: install
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
