# Two commands for a new user: `make demo` and `make test`. Both create .venv on first use.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && { echo $$p; break; }; done)
PYTEST_ARGS ?=

.PHONY: install install-test demo test lint typecheck bench dev constraints clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required (python3.11 not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The stamps depend on pyproject.toml, so an edited dependency list reinstalls.
# The lstm extra (TensorFlow) is part of both: `make demo` and `make test` train the LSTM too.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[exchange,lstm]'
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,exchange,lstm,alerts]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/brain demo

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check brain_assets brain_assets_tests bench

typecheck: install-test
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/store_bench.py
	$(BIN)/python bench/bar_store_bench.py

dev: install
	$(BIN)/brain dev

# constraints.txt: the versions of a tested environment (this .venv after `make test`) for what
# the wheel and its extras need; the Dockerfile installs with `-c constraints.txt`.
constraints: install-test
	$(BIN)/python -m brain_assets_tests.constraints > constraints.txt

clean:
	rm -rf $(VENV) .brain logs .pytest_cache .ruff_cache .mypy_cache
