# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint install clean bench

$(STAMP): pyproject.toml setup.py
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Trains the default model on the built-in synthetic benchmark and prints Rank-1/mAP.
demo: $(STAMP)
	$(BIN)/bireid train --output-dir runs/demo

test: $(STAMP)
	$(BIN)/ruff check bireid tests benchmarks
	$(BIN)/python -m pytest tests

lint: $(STAMP)
	$(BIN)/ruff check bireid tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info runs
