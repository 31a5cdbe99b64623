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

.PHONY: install data data-default train train-cpu serve eval bench bench-server bench-replicas soak nginx-conf test test-python \
	test-extension test-e2e test-tabby extension clean

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

# The shipped default model: the standard library plus these real projects' source distributions
# (exact versions), with four other real projects kept entirely out of training as the test split.
DEFAULT_DATA ?= data/default-model
TRAIN_PYPI := flask==3.1.3 werkzeug==3.1.9 jinja2==3.1.6 rich==15.0.0 pytest==9.2.0 black==26.10.1 \
	tornado==6.6.1 aiohttp==3.14.5 pydantic==2.14.3 docutils==0.23 scrapy==2.19.0 networkx==3.6.1
VALID_PYPI := httpx==0.28.1
TEST_PYPI := requests==2.34.2 click==8.5.1 attrs==26.1.0 toolz==1.2.0
name = pypi/$(firstword $(subst ==, ,$(1)))
RUN ?= runs/default-model

data-default: install
	$(PY) -m dataset build --out $(DEFAULT_DATA) --stdlib \
	  $(foreach p,$(TRAIN_PYPI) $(VALID_PYPI) $(TEST_PYPI),--pypi $(p)) --test-fraction 0 \
	  $(foreach p,$(TEST_PYPI),--test-project $(call name,$(p))) \
	  $(foreach p,$(VALID_PYPI),--valid-project $(call name,$(p)))

# make train SOURCES="DIR [DIR ...]" [TRAIN_STEPS=540 | TRAIN_MINUTES=M] [OUT=checkpoints/personal.pt]: fine-tunes the shipped
# model on your folders (in a git repository the files git would commit: dataset/workspace.py; its tokenizer;
# default corpus replayed when built) and writes OUT atomically
# (scripts/finetune.py, docs/training.md). RESUME=1 continues an interrupted run. TYPING_CHARS=0 skips the typing
# of held-out files with both models that ends the run (evaluate/gain.py).
# Without SOURCES: reproduces checkpoints/default.pt (transformer 4x256, see README) into $(RUN)/default.pt:
# from scratch, fill-in-the-middle on half of the documents from the first step (dataset/fim.py), 6,200 steps
# of 128 x 256 tokens (203M tokens, ~17 passes over the corpus); the best validation checkpoint is shipped.
# 7.5 minutes on one H100 (docs/training.md); on a 2-core CPU the same steps take over a day, so
# `make train-cpu` keeps the CPU recipe of the previous default (TRAIN_MINUTES left to right, then
# FIM_MINUTES with FIM; 145 minutes).
SOURCES ?=
OUT ?= checkpoints/personal.pt
THREADS ?= 2
ifneq ($(strip $(SOURCES)),)
# the recipe's budget grows with your code: 540 steps for a small project, up to 1,620 for a large one within
# 15 minutes at this machine's speed (scripts/finetune.py budget_steps); TRAIN_STEPS= fixes it, TRAIN_MINUTES= on
# the command line gives a wall-clock budget instead
FT_BUDGET = $(if $(filter command line environment,$(origin TRAIN_MINUTES)),--minutes $(TRAIN_MINUTES),\
	$(if $(TRAIN_STEPS),--steps $(TRAIN_STEPS),))
# The recipe replays the default corpus and guards against forgetting with it: built first when absent (~85 s
# and the source distributions' download, once); without it the measured recipe forgot ~4 points of the
# standard test projects, so a failed build only lets the run go on with finetune.py's warning.
train: install
	@test -f $(DEFAULT_DATA)/corpus/meta.json || $(MAKE) --no-print-directory data-default || \
	  echo "warning: could not build $(DEFAULT_DATA) (make data-default); fine-tuning without replay" >&2
	$(PY) scripts/finetune.py $(SOURCES) --init checkpoints/default.pt --out $(OUT) $(FT_BUDGET) \
	  --replay $(DEFAULT_DATA) --threads $(THREADS) $(if $(RESUME),--resume,) \
	  $(if $(TYPING_CHARS),--typing-chars $(TYPING_CHARS),) $(if $(PRIORITY),--priority $(PRIORITY),) \
	  $(if $(IF_CHANGED),--if-changed,) $(if $(WORK),--work $(WORK),)
else
TRAIN_STEPS ?= 6200
train: data-default
	$(PY) train.py --data $(DEFAULT_DATA) --model transformer --d-model 256 --layers 4 --heads 8 \
	  --seq-len 256 --batch-size 128 --lr 1.5e-3 --warmup 200 --fim-rate 0.5 --steps $(TRAIN_STEPS) \
	  --eval-every 1000 --threads 4 --out $(RUN) --resume
	$(PY) -m models.export $(RUN)/best.pt $(RUN)/default.pt
endif
TRAIN_MINUTES ?= 100
FIM_MINUTES ?= 45
train-cpu: data-default
	$(PY) train.py --data $(DEFAULT_DATA) --model transformer --d-model 256 --layers 4 --heads 8 \
	  --seq-len 256 --batch-size 16 --minutes $(TRAIN_MINUTES) --threads 2 --out $(RUN)-cpu --resume
	$(PY) train.py --data $(DEFAULT_DATA) --init $(RUN)-cpu/best.pt --fim-rate 0.5 --lr 5e-4 --warmup 100 \
	  --minutes $(FIM_MINUTES) --eval-every 500 --threads 2 --out $(RUN)-cpu/fim --resume
	$(PY) -m models.export $(RUN)-cpu/fim/last.pt $(RUN)-cpu/default.pt

# SERVE_ARGS: more server.py options, e.g. "--workers 0" (the single in-process engine) or "--device cuda".
# MODELS_DIR: also serve every DIR/NAME.pt to requests naming "model": "NAME" (a model per project,
# serving/models.py), e.g. MODELS_DIR=checkpoints after make train SOURCES=~/code/billing OUT=checkpoints/billing.pt
SERVE_ARGS ?=
MODELS_DIR ?=
serve: install
	$(PY) server.py --host $(HOST) --port $(PORT) --model $(MODEL) $(if $(MODELS_DIR),--models-dir $(MODELS_DIR)) $(SERVE_ARGS)

eval: install data-default
	$(PY) -m evaluate --model $(MODEL) --data $(DEFAULT_DATA) --protocol lines project

bench: install data
	$(PY) -m benchmarks --model $(MODEL)

# Serving benchmarks alone (docs/server.md): load with 1/4/16 clients for each server configuration, the
# memory soak (SOAK_MINUTES, 30 for the documented figures; reports/soak.md + .csv), nginx in front of
# replicas (needs nginx), and the nginx configuration for REPLICAS="HOST:PORT ...".
SOAK_MINUTES ?= 30
REPLICAS ?= 127.0.0.1:5001 127.0.0.1:5002
bench-server: install
	$(PY) -m benchmarks.server_load --model $(MODEL) --data $(DEFAULT_DATA)
bench-replicas: install
	$(PY) -m benchmarks.replicas --model $(MODEL) --data $(DEFAULT_DATA)
soak: install
	$(PY) -m benchmarks.soak --model $(MODEL) --data $(DEFAULT_DATA) --minutes $(SOAK_MINUTES) --out reports/soak.md
nginx-conf: install
	@$(PY) -m serving.nginx --listen $(HOST):$(PORT) $(REPLICAS)

test: test-python test-extension test-e2e test-tabby

# pytest exits 5 when it collects nothing; that is not a failure of the suite.
test-python: install
	$(PY) -m pytest -q tests; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

test-extension:
	@if [ -f vscode-extension/package.json ]; then $(MAKE) -C vscode-extension test; fi

test-e2e: install extension
	@if [ -x tests/e2e/run.sh ]; then tests/e2e/run.sh; fi

# Tabby's agent (npm tabby-agent, fetched into .e2e/) against a real server: its language server, its JSON-lines
# protocol, Neovim's LSP client when nvim is installed (scripts/tabby_agent_check.py).
test-tabby: install
	$(PY) scripts/tabby_agent_check.py

extension:
	@if [ -f vscode-extension/package.json ]; then $(MAKE) -C vscode-extension vsix; fi

clean:
	rm -rf $(VENV) runs reports .pytest_cache
