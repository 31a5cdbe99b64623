# Python code completion: corpus -> tokenizer -> model -> completion engine -> HTTP server -> VS Code.
# `make serve` is the main job; `make test` runs every test (what CI runs).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 5000
MODEL ?= checkpoints/default.pt
DATA ?= data
export PYTHONUNBUFFERED := 1

.PHONY: install data train serve eval bench test test-python test-extension test-e2e extension clean

# Idempotent: the stamp is newer than both requirement files, so a second run does nothing.
install: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-nodeps.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# Default corpus: this interpreter's standard library without its tests (offline).
# Options: $(PY) -m dataset build --help
data: install
	$(PY) -m dataset build --out $(DATA)

train: install data
	$(PY) train.py --data $(DATA)

serve: install
	$(PY) server.py --host $(HOST) --port $(PORT) --model $(MODEL)

eval: install data
	$(PY) -m evaluate --model $(MODEL) --data $(DATA)

bench: install
	$(PY) -m benchmarks --model $(MODEL)

test: test-python test-extension test-e2e

# pytest exits 5 when it collects nothing; that is not a failure of the suite.
test-python: install
	$(PY) -m pytest -q tests; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

test-extension:
	@if [ -f vscode-extension/package.json ]; then $(MAKE) -C vscode-extension test; fi

test-e2e: install extension
	@if [ -x tests/e2e/run.sh ]; then tests/e2e/run.sh; fi

extension:
	@if [ -f vscode-extension/package.json ]; then $(MAKE) -C vscode-extension vsix; fi

clean:
	rm -rf $(VENV) runs reports .pytest_cache
