# The two commands README.md promises: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo test lint typecheck bench clean help

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/ —/'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)  ## install, then build the sample store in ./agentlab.db (about 400 runs from sample_traces/, one left waiting for approval), verify it and explain its bad run
	$(BIN)/agentlab demo --auto-approve

lint: $(STAMP)  ## import layering and style
	$(BIN)/lint-imports
	$(BIN)/ruff check agentlab tests benchmarks

typecheck: $(STAMP)  ## strict mypy over the package
	$(BIN)/mypy

test: lint typecheck  ## the whole test suite (PostgreSQL tests need AGENTLAB_TEST_PG_URL)
	$(BIN)/pytest -q

bench: $(STAMP)  ## run the benchmarks and print their figures
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
