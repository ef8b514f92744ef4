# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test check demo

run: $(VENV)/.installed
	$(BIN)/grantline init --dev
	$(BIN)/grantline serve

# The audit line end to end: an agent, a person in the browser, an API, `grantline audit trace`.
demo: $(VENV)/.installed
	$(BIN)/python examples/payment_demo/demo.py

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
