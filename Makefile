# Two entry points for a fresh clone (see README): `make study` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install study test docs benchmark clean

$(BIN)/gsimclr: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[test]"
	@touch $@

install: $(BIN)/gsimclr

## The whole study on the embedded digits dataset: autoencoder -> pseudo labels -> SimCLR and
## G-SimCLR -> linear/fine-tune/supervised evaluation -> results/results.md, tracked in MLflow.
## Two stages at a time where there are two cores (`dvc repro` runs the same stages one by one).
study: install
	gsimclr repro
	@cat results/results.md
	@echo "Results table: $(CURDIR)/results/results.md (and results.csv)"
	@grep "^SimCLR and G-SimCLR side by side" results/results.md

## Lint, format check, type check and the docs site first (seconds, warnings are errors), then the tests.
test: install
	$(BIN)/ruff check gsimclr tests benchmarks examples docs tools
	$(BIN)/ruff format --check gsimclr tests benchmarks examples docs tools
	$(BIN)/mypy
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	$(BIN)/python -m pytest -q --durations=15 --doctest-modules gsimclr tests

## The docs site (build/site/index.html): the pages in docs/, the parameter reference generated from the schema.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## Throughput against the bare model step, k-means at CIFAR-10 scale, prepared and streamed data, stage start-up,
## serial against parallel stages
## (each prints the machine; none fails on speed).
benchmark: install
	$(BIN)/python -m benchmarks.pretrain_throughput
	$(BIN)/python -m benchmarks.clustering
	$(BIN)/python -m benchmarks.prepared_data
	$(BIN)/python -m benchmarks.streaming
	$(BIN)/python -m benchmarks.startup
	$(BIN)/python -m benchmarks.repro

## Local state only: models, checkpoints and the MLflow store. The committed reports (metrics/, plots/,
## runs/, results/) stay; `dvc repro` rebuilds what was removed.
clean:
	rm -rf artifacts checkpoints mlruns/mlflow.db mlruns/mlflow.db.lock mlruns/artifacts
