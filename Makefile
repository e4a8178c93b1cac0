# Threadline: the two commands are `make run` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format bench clean

$(BIN)/threadline: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

run: $(BIN)/threadline
	$(BIN)/threadline db upgrade
	$(BIN)/threadline bootstrap
	$(BIN)/threadline serve --host $(HOST) --port $(PORT)

test: $(BIN)/threadline
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(BIN)/threadline
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(BIN)/threadline
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: $(BIN)/threadline
	$(BIN)/python bench/ingest_inprocess.py
	$(BIN)/python bench/http_batch.py
	$(BIN)/python bench/profile_read.py

clean:
	rm -rf $(VENV) threadline.db threadline.db-wal threadline.db-shm
