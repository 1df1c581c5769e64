# ditkit — `make help` lists the targets. Everything runs from the repo-local .venv made by `make setup`.
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST := $(PY) -m pytest
export PYTHONUNBUFFERED := 1
# every train target takes a trainer preset and extra LightningCLI arguments, e.g.
#   make train-tts PRESET=gpu ARGS="--trainer.max_steps 2000"    (presets: shared/trainer/*.yaml)
FIT_EXTRA = $(if $(PRESET),--config shared/trainer/$(PRESET).yaml) $(ARGS)

.DEFAULT_GOAL := help
.PHONY: help setup test test-slow test-gpu lint format bench bench-core bench-cache bench-students demo check-pretrained train-toy2d sample-toy2d clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_%-]+:.*?## ' $(MAKEFILE_LIST) | sort | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}'

setup: ## system packages, .venv, CPU torch, every package editable (idempotent)
	bash scripts/setup.sh

test: ## the whole fast suite (all packages; slow and gpu tests excluded)
	$(PYTEST) -q

test-slow: ## the heavier tests (training to quality thresholds)
	$(PYTEST) -q -m slow

test-gpu: ## CUDA-only tests
	$(PYTEST) -q -m gpu

lint: ## ruff check and ruff format --check over the monorepo
	$(PY) -m ruff check packages apps tests benchmarks
	$(PY) -m ruff format --check packages apps tests benchmarks

format: ## ruff format + autofix
	$(PY) -m ruff check --fix packages apps tests benchmarks; $(PY) -m ruff format packages apps tests benchmarks

bench: bench-core bench-tts bench-shapes bench-molecules bench-policy bench-sits ## every benchmark (JSON lines)

bench-core: ## DiT vs diffusers, attention backends, solvers, activation checkpointing
	$(PY) benchmarks/core_dit.py
	$(PY) benchmarks/attention.py
	$(PY) benchmarks/solvers.py
	$(PY) benchmarks/checkpointing.py

bench-cache: ## caching vs halving the steps at equal block evaluations, per app's metric (~15 min, one core) [ARGS=--apps tts sits]
	$(PY) benchmarks/cache_vs_steps.py $(ARGS)

bench-students: ## few-step students at 1/2/4 steps vs their teacher at 32, per app's metric (~15 min, one core) [ARGS=--apps tts sits]
	$(PY) benchmarks/few_step.py $(ARGS)

distill-%: ## few-step student of an app (its local run, else its shipped weights) -> outputs/<app>/student [ARGS="--method reflow"]
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m ditkit_core.cli $* distill $(ARGS)

train-toy2d: ## train the toy 2D app (CPU, ~1-2 min) and write sample PNGs to outputs/toy2d
	$(PY) -m ditkit_core.lightning.cli fit --config apps/toy2d/configs/default.yaml $(FIT_EXTRA)

sample-toy2d: ## sample the last toy2d checkpoint into outputs/toy2d/samples
	$(PY) apps/toy2d/sample.py --ckpt outputs/toy2d/checkpoints/last.ckpt

demo: ## every app sampled and scored from its shipped weights (+ a brief toy2d training) -> outputs/demo/index.html [ARGS=--apps tts policy]
	$(PY) -m ditkit_core.cli demo $(ARGS)

check-pretrained: ## the demo, then every app's demo metrics against its shipped weights' figures.json (exit 1 on a mismatch)
	$(PY) -m ditkit_core.cli demo --check-figures $(ARGS)

clean: ## remove run outputs
	rm -rf outputs lightning_logs

-include apps/*/app.mk
