# The two commands a new user needs: `make demo` and `make test`.
# Both create .venv when it is missing and install the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench bench-merge bench-pipeline bench-pr bench-intake bench-queue bench-runs lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m bot demo

test: $(STAMP)
	$(BIN)/python -m pytest

# Webhook intake: a real `gwi serve` (SQLite) against a bare aiohttp handler, then one and two
# `gwi serve --web-only` with a `gwi worker` on a PostgreSQL it starts; one JSON line of figures.
bench-intake: $(STAMP)
	$(BIN)/python bench/intake.py

# Deliveries stored per second by each queue backend: SQLite, and a PostgreSQL server it starts.
bench-queue: $(STAMP)
	$(BIN)/python bench/queue_insert.py

# What a run bundle costs in each run store: the folder store, and a PostgreSQL server it starts.
bench-runs: $(STAMP)
	$(BIN)/python bench/run_store.py

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	$(BIN)/ruff check bot tests
	$(BIN)/mypy

# Resolve the 1,399 shared real conflicts and score them (skips when ../shared is absent).
bench-merge: $(STAMP)
	$(BIN)/python bench/merge_bench.py

# A whole local run (triage to review) on 200 conflicted files, against plain `git merge`.
bench-pipeline: $(STAMP)
	$(BIN)/python bench/pipeline.py

# Whole pull-request runs through `gwi serve` and the fake GitHub: 1, 20, 200 conflicted files;
# then through `gwi serve --web-only` and `gwi worker` on a PostgreSQL it starts.
bench-pr: $(STAMP)
	$(BIN)/python bench/pr_run.py

# Every benchmark in turn, each ending with one JSON line of figures (docs/performance.md).
bench: bench-intake bench-pr bench-pipeline bench-merge

clean:
	rm -rf $(VENV) .gwi build *.egg-info
