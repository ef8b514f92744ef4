# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test check

run: $(VENV)/.installed
	$(BIN)/grantline init --dev
	$(BIN)/grantline serve

test: $(VENV)/.installed
	$(BIN)/ruff check grantline tests examples
	$(BIN)/ruff format --check grantline tests examples
	$(BIN)/mypy
	$(BIN)/pytest --cov --cov-report=term

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@
