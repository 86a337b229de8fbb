# Set-up and everyday commands. `make demo` / `make test` create .venv on first use.
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
STAMP := $(VENV)/.installed

.PHONY: install serve demo demo-bundle test test-fast lint bench-quick fuzz soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,bench]"
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(PY) -m server

demo: $(STAMP)
	$(PY) -m lslo demo

# Rebuild adapters/demo/ from offline data (seeded; the pretraining takes hours on 2 CPU cores and resumes: run it again).
demo-bundle: $(STAMP)
	bash adapters/demo/build.sh

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check lslo training server bench research scripts tests

bench-quick: $(STAMP)
	$(PY) -m bench all --quick --json runs/bench-quick

fuzz: $(STAMP)
	scripts/fuzz.sh 1000

soak: $(STAMP)
	$(PY) scripts/soak.py --minutes 10 --json runs/soak.json

clean:
	rm -rf $(VENV) .pytest_cache
