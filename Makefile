# Two commands do everything (see README.md):
#   make demo   install into .venv and run the whole workflow on the built-in demo city
#   make test   install into .venv and run the test suite
#   make test-large  the large cases (real datasets end to end, Slurm), by .ci/run when they fit
#   make test-fast   the same without the tests marked slow
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
PYTEST_ARGS ?=

.PHONY: demo test test-large test-fast install lint report clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,slurm]"
	touch $@

demo: install
	$(BIN)/snakemake --cores $(CORES)

test: install
	$(BIN)/python -m pytest -n 2 -m "not large" --durations=15 $(PYTEST_ARGS)

# the large cases: whole real datasets (the ten-year NAIP series, Canberra as printed) and the Slurm cluster run
test-large: install
	$(BIN)/python -m pytest -n 2 -m large --durations=15 $(PYTEST_ARGS)

# the fast lane: every test not marked slow (no end-to-end workflow run, no wheel build)
test-fast: install
	$(BIN)/python -m pytest -n 2 -m "not slow" --durations=15 $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests workflow/scripts benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules/
	$(BIN)/snakemake --lint

clean:
	rm -rf results resources logs .snakemake
