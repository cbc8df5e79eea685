# One Makefile for humans and CI. `make run` and `make test` are the two set-up commands.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO   ?= demo

.PHONY: run test lint typecheck pytest bench clean env bytecode

env: $(STAMP)

# Bytecode for rarebird's own modules (only those changed since the last time are compiled).
# Without it, an environment with PYTHONDONTWRITEBYTECODE=1 (CI images, containers) compiles
# every module at every start of every rarebird process and worker: 0.1 s each.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q src/rarebird

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Generate two weeks of fleet telemetry, replay it through the job, show the anomaly records.
run: bytecode
	mkdir -p $(DEMO)
	$(BIN)/rarebird generate --days 14 --seed 7 --file $(DEMO)/fleet.ndjson
	rm -f $(DEMO)/rarebird.db
	$(BIN)/rarebird job run --store $(DEMO)/rarebird.db $(DEMO)/fleet.ndjson
	$(BIN)/rarebird results --store $(DEMO)/rarebird.db --type record --min-score 1

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: bytecode
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

bench: bytecode
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
