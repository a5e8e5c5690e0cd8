# Two entry points for a fresh clone (see README): `make study` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)
# pip byte-compiles every module it installs (torch's thousands: about half of the install on 2 cores);
# instead the install imports what the stages import, once, and Python caches those .pyc files (and any
# other module on first use: make's commands may write bytecode even where the shell says not to).
export PYTHONDONTWRITEBYTECODE :=
WARM_IMPORTS := import importlib, pkgutil, dvc.repo, gsimclr; \
	[importlib.import_module(m.name) for m in pkgutil.walk_packages(gsimclr.__path__, "gsimclr.") if m.name != "gsimclr.__main__"]

.PHONY: install study test docs docs-check benchmark clean

$(BIN)/gsimclr: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-compile -c constraints.txt -e ".[test]"
	$(BIN)/python -c '$(WARM_IMPORTS)'
	@touch $@

install: $(BIN)/gsimclr

## The whole study on the embedded digits dataset: autoencoder -> pseudo labels -> SimCLR and
## G-SimCLR -> linear/fine-tune/supervised evaluation -> results/results.md, tracked in MLflow.
## Two stages at a time where there are two cores (`dvc repro` runs the same stages one by one).
study: install
	gsimclr repro
	gsimclr figures results/results.csv
	@cat results/results.md
	@echo "Results table: $(CURDIR)/results/results.md (and results.csv)"
	@grep "^SimCLR and G-SimCLR side by side" results/results.md

## Lint, format check, type check and the docs site first (seconds, warnings are errors), then the tests.
test: install
	$(BIN)/ruff check gsimclr tests benchmarks examples docs tools
	$(BIN)/ruff format --check gsimclr tests benchmarks examples docs tools
	$(BIN)/mypy
	$(MAKE) --no-print-directory docs-check
	$(BIN)/python -m pytest -q --durations=15 --doctest-modules gsimclr tests

## The docs site built with every warning an error, its log shown only when it fails (mkdocs's --quiet also hides
## the strict-mode failure: it exits 0 on a broken link). MKDOCS_CONFIG and SITE_DIR let a test build a planted copy.
MKDOCS_CONFIG ?= mkdocs.yml
SITE_DIR ?= build/site
docs-check:
	@mkdir -p $(SITE_DIR)
	@NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --config-file $(MKDOCS_CONFIG) --site-dir $(SITE_DIR) \
		> $(SITE_DIR).log 2>&1 || { cat $(SITE_DIR).log; echo "docs: the site has warnings (above)"; exit 1; }

## The docs site (build/site/index.html): the pages in docs/, the parameter reference generated from the schema.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## Throughput against the bare model step, k-means at CIFAR-10 scale, prepared and streamed data, stage start-up,
## serial against parallel stages, the install at two revisions
## (each prints the machine; none fails on speed).
benchmark: install
	$(BIN)/python -m benchmarks.pretrain_throughput
	$(BIN)/python -m benchmarks.clustering
	$(BIN)/python -m benchmarks.prepared_data
	$(BIN)/python -m benchmarks.streaming
	$(BIN)/python -m benchmarks.startup
	$(BIN)/python -m benchmarks.repro
	$(BIN)/python -m benchmarks.embed
	$(BIN)/python -m benchmarks.install

## Local state only: models, checkpoints and the MLflow store. The committed reports (metrics/, plots/,
## runs/, results/) stay; `dvc repro` rebuilds what was removed.
clean:
	rm -rf artifacts checkpoints mlruns/mlflow.db mlruns/mlflow.db.lock mlruns/artifacts
