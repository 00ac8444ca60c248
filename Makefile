# Two commands set up everything on a fresh machine: `make serve` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PY := $(BIN)/python
# dvc stages run `python -m ...`, and `mlflow models serve` execs uvicorn: both need the venv first.
export PATH := $(BIN):$(PATH)

HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= 2
UI_PORT ?= 5001

.PHONY: help setup spark system-deps data train serve ui test test-fast lint format batch bench clean plots-template promote v2-stubs

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/$$(HOST)/$(HOST)/; s/$$(PORT)/$(PORT)/' \
		| awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.lock pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

data/raw/train.csv data/raw/test.csv &: data/raw.dvc | $(VENV)/.installed
	$(BIN)/dvc pull --quiet data/raw.dvc
	touch data/raw/train.csv data/raw/test.csv

setup: $(VENV)/.installed data/raw/train.csv ## Create .venv (pinned), install, pull the raw data

# The Spark engine is an optional extra (PySpark and Spark's jars, about 490 MB, and a Java
# runtime): `make test` installs it, `make serve` does not.
$(VENV)/.spark-installed: requirements-spark.lock requirements.lock | $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-spark.lock \
		-c requirements.lock
	touch $@

spark: setup $(VENV)/.spark-installed ## Install the Spark engine (PySpark, pinned; Spark needs Java 17)
	@command -v java >/dev/null || echo "spark: no java on PATH; Spark needs a Java runtime:" \
		"apt-get install openjdk-17-jre-headless (make system-deps)"

data: setup ## Pull the raw CSVs from the DVC remote

train: setup ## Run the DVC pipeline (a no-op when nothing changed)
	$(BIN)/dvc repro

serve: setup ## Train if no champion exists, then serve it on $(HOST):$(PORT)
	$(PY) -m training.champion
	$(PY) -m serving --host $(HOST) --port $(PORT) --workers $(WORKERS)

# The embedded store at the repo root, whatever the working directory: runs and registry in
# mlflow.db, artifacts in mlruns/ (where training logs them: training/tracking.py). New experiments
# created from the UI put theirs there too, and artifacts it proxies live there as well.
ui: setup ## Browse runs and models: MLflow's UI on $(HOST):$(UI_PORT), on the repo root's store
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db \
		--default-artifact-root $(CURDIR)/mlruns --artifacts-destination $(CURDIR)/mlruns \
		--host $(HOST) --port $(UI_PORT) --workers 1

# Debian packages the tests need: chromium renders /docs in the docs test; Spark runs on Java 17;
# promtool (of the prometheus package) checks monitoring/'s alert rules and config.
system-deps:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	command -v java >/dev/null || (apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless)
	command -v promtool >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus)

test: setup spark system-deps .venv-kserve/.installed ## Run the whole test suite (real dvc, MLflow, Granian, Spark, chromium, KServe's client)
	$(BIN)/pytest

test-fast: setup ## Run the tests that start no processes
	$(BIN)/pytest -m "not slow"

lint: setup ## ruff check, format check, and the import direction (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: setup ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

INPUT ?= data/raw/test.csv
OUTPUT ?= predictions.parquet
ENGINE ?= pandas
batch: setup $(if $(filter spark,$(ENGINE)),spark) ## Score a file with the champion: make batch INPUT=x.csv OUTPUT=y.parquet [ENGINE=spark]
	$(PY) -m training.champion
	$(PY) -m serving.batch --input $(INPUT) --output $(OUTPUT) --engine $(ENGINE)

PROMOTE_FLAGS ?=
promote: setup ## Shadow evidence of the server on $(HOST):$(PORT) vs the registry; PROMOTE_FLAGS=--apply moves champion
	$(PY) -m training.promote --server http://$(HOST):$(PORT) $(PROMOTE_FLAGS)

# MLServer and BentoML, benchmarked beside us, live in venvs of their own (bench/*.lock).
.venv-%/.installed: bench/%.lock
	python3 -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	touch $@

# KServe's SDK, whose client a test drives our V2 REST with (tests/e2e/kserve_client.py), lives in
# one of its own too: its pins (pandas<3, psutil<6) cannot sit beside requirements.lock's. Its lock
# (tests/*.lock) is the whole closure, so pip installs it without resolving, then checks it.
.venv-%/.installed: tests/%.lock
	python3 -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r $<
	.venv-$*/bin/python -m pip check
	touch $@

bench: setup .venv-mlserver/.installed .venv-bentoml/.installed ## Benchmark against mlflow, MLServer, BentoML
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) -m training.champion
	$(PY) -m bench.run

# `dvc plots show`'s page template (.dvc/config: plots.html_template) with Vega, Vega-Lite and
# vega-embed inlined, so the page it writes opens without a network. Committed; this target
# rebuilds it from the npm registry (the versions DVC's own page loads from a CDN).
VEGA_PACKAGES := vega@5.20.2 vega-lite@5.2.0 vega-embed@6.18.2
plots-template: ## Rebuild .dvc/plots/offline.html (needs npm and the npm registry)
	rm -rf .dvc/tmp/vega && mkdir -p .dvc/tmp/vega .dvc/plots
	cd .dvc/tmp/vega && npm pack --silent $(VEGA_PACKAGES) >/dev/null && \
		for f in *.tgz; do mkdir -p "$${f%-*}" && tar xzf "$$f" -C "$${f%-*}" --strip-components=1; done
	{ printf '<!DOCTYPE html>\n<html>\n<head>\n{refresh_tag}\n<title>DVC Plot</title>\n'; \
	  printf '<!-- inlined from npm: %s (BSD-3-Clause) -->\n' "$(VEGA_PACKAGES)"; \
	  for js in vega/build/vega.min.js vega-lite/build/vega-lite.min.js \
	            vega-embed/build/vega-embed.min.js; do \
	    printf '<script>\n'; cat ".dvc/tmp/vega/$$js"; printf '\n</script>\n'; done; \
	  printf '<style>table { border-spacing: 15px; }</style>\n</head>\n<body>\n{plot_divs}\n'; \
	  printf '</body>\n</html>\n'; } > .dvc/plots/offline.html
	rm -rf .dvc/tmp/vega

clean: ## Remove the venv, pipeline outputs and the embedded MLflow store
	rm -rf $(VENV) .venv-mlserver .venv-bentoml .venv-kserve data/prepared models metrics/registration.json mlflow.db
	find mlruns -mindepth 1 ! -name .gitkeep -exec rm -rf {} +

.PHONY: container-test
container-test: setup ## Build the image with podman and test it (root; slow; not in make test)
	$(BIN)/pytest -m container tests/container

# The V2 gRPC messages beside the proto, generated by grpcio-tools (pinned in requirements.lock)
# and committed; tests/serving/test_v2_grpc.py fails if they differ from what this generates.
v2-stubs: setup ## Regenerate serving/v2/proto/open_inference_pb2.py(i) from the proto
	$(PY) -m grpc_tools.protoc -I . --python_out=. --pyi_out=. serving/v2/proto/open_inference.proto
