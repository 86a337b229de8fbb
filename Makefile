# Set-up and everyday commands. `make serve` / `make test` create .venv on first use (serving installs the
# project alone; the test, lint and benchmark targets add the dev and bench extras).
#
# torch goes in first and pinned (2.13.0 is what this project is tested with). It comes from PyPI unless
# TORCH_INDEX names another index: PyPI's Linux wheel is the CUDA build; on a CPU-only machine use
#     make test TORCH_INDEX=https://download.pytorch.org/whl/cpu
# and on a GPU machine the default, or the index of your CUDA version (.../whl/cu126).

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
SERVE_STAMP := $(VENV)/.installed-serve
STAMP := $(VENV)/.installed
LINTED := lslo training server bench research scripts tests adapters/demo/out_of_domain.py

.PHONY: install serve demo demo-bundle test test-fast lint format bench-quick fuzz soak clean

# Serving: torch and the project alone (what `pip install .` gives; no test, benchmark or training tooling).
$(SERVE_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(PIP) -e .
	touch $(SERVE_STAMP)

# Developing: the tests, lint, type checks, benchmarks and training on top (extras dev and bench).
$(STAMP): $(SERVE_STAMP)
	$(PIP) -e ".[dev,bench]"
	touch $(STAMP)

install: $(STAMP)

serve: $(SERVE_STAMP)
	$(PY) -m server

demo: $(SERVE_STAMP)
	$(PY) -m lslo demo

# Rebuild adapters/demo/ from offline data (seeded; the pretraining takes hours on 2 CPU cores and resumes: run it again).
demo-bundle: $(STAMP)
	bash adapters/demo/build.sh

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# The gates CI runs (also .pre-commit-config.yaml): lint, formatting, types.
lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix $(LINTED)
	$(VENV)/bin/ruff format $(LINTED)

bench-quick: $(STAMP)
	$(PY) -m bench all --quick --json runs/bench-quick

fuzz: $(STAMP)
	scripts/fuzz.sh 1000

soak: $(STAMP)
	$(PY) scripts/soak.py --minutes 10 --json runs/soak.json

clean:
	rm -rf $(VENV) .pytest_cache
