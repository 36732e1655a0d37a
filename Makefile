# The two commands a new user needs: `make demo` and `make test`.
# Both create .venv when it is missing and install the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench bench-merge bench-pipeline bench-intake lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m bot demo

test: $(STAMP)
	$(BIN)/python -m pytest

# Webhook intake: a real `gwi serve` against a bare aiohttp handler; one JSON line of figures.
bench-intake: $(STAMP)
	$(BIN)/python bench/intake.py

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	$(BIN)/ruff check bot tests
	$(BIN)/mypy

# Resolve the 1,399 shared real conflicts and score them (skips when ../shared is absent).
bench-merge: $(STAMP)
	$(BIN)/python bench/merge_bench.py

clean:
	rm -rf $(VENV) .gwi build *.egg-info
