# Set-up and everyday commands. `make demo` / `make test` create .venv on first use.
#
# torch goes in first and pinned: the CPU wheel 2.13.0 is what this project is tested with, and a bare
# `torch` requirement would pull the newest CUDA build (gigabytes). On a GPU machine, install the CUDA build
# of your choice into .venv first, or set TORCH_SPEC.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m lslo demo

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check lslo training server tests

clean:
	rm -rf $(VENV) .pytest_cache
