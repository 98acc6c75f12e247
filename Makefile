# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Exact versions of every dependency; regenerate with `make lock` after editing pyproject.toml.
LOCK := requirements.lock
UV_VERSION := 0.13.8
LOCK_FLAGS := pyproject.toml --extra dev --universal --python-version 3.11 --quiet --no-header

.PHONY: demo test lint run bench soak clean lock lock-upgrade

# PYTHONWARNINGS: setuptools warns at length about every editable install (the flat layout is intended).
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install --quiet -c $(LOCK) -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/watcher demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

run: $(STAMP)
	$(BIN)/watcher run

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# The service for 2,000 scheduler ticks against a loopback farm, with faults (about 5 minutes).
soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak

# Pins what pyproject.toml asks for, keeping the versions already locked where they still fit.
lock: $(STAMP)
	$(BIN)/pip install --quiet "uv==$(UV_VERSION)"
	$(BIN)/uv pip compile $(LOCK_FLAGS) -o $(LOCK) $(UV_ARGS)
	{ printf '%s\n' \
	  '# Exact versions of every dependency of watcher (dev tools included), for reproducible installs.' \
	  '# Generated from pyproject.toml by `make lock` (uv pip compile); do not edit by hand.' \
	  '# After changing dependencies in pyproject.toml: run `make lock` and commit this file with it;' \
	  '# `make lock-upgrade` moves every pin to the newest release that fits.' \
	  '# Used as a constraints file: `pip install -c requirements.lock -e ".[dev]"` (make), and the Dockerfile.'; \
	  cat $(LOCK); } > $(LOCK).new && mv $(LOCK).new $(LOCK)

lock-upgrade:
	$(MAKE) lock UV_ARGS=--upgrade

clean:
	rm -rf $(VENV) data build *.egg-info .pytest_cache .ruff_cache
