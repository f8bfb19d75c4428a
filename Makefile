# Every target does its own set-up on a fresh clone: `make demo` and `make test` are all
# a new machine needs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False
export AIRFLOW__CORE__DAGS_FOLDER ?= $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER ?= $(CURDIR)/plugins
export PYTHONPATH := $(CURDIR)/plugins:$(PYTHONPATH)

.PHONY: install demo test test-long lint docs airflow warehouse-down clean bench bench-api chromium api-down cluster-test

DBT_SOURCES := $(shell find dbt/models dbt/macros dbt/tests -type f 2>/dev/null) dbt/dbt_project.yml
MANIFEST := dbt/target/manifest.json

install: $(STAMP) $(MANIFEST)

# Cosmos renders the battery_ledger DAG from this manifest instead of calling dbt ls.
$(MANIFEST): $(STAMP) $(DBT_SOURCES)
	DBT_PROFILES_DIR=dbt $(BIN)/dbt parse --project-dir dbt --quiet

# The data docs' scripts, styles and fonts (Bootstrap, jQuery, Font Awesome, Vega, ...)
# from the npm registry, at the versions package-lock.json pins: served from the docs
# folder instead of public CDNs (include/vbatt/quality/assets.py). Debian's npm if missing.
NODE_STAMP := node_modules/.package-lock.json
$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "npm is missing: install Debian's npm package as root"; exit 1; fi; \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

# uv (a wheel from PyPI, pinned in requirements.txt) installs the same pins as pip in a
# fraction of the time; the set-up is part of `make test`'s ten minutes. Unlike pip, uv
# writes no bytecode, and where PYTHONDONTWRITEBYTECODE is set (as on this project's build
# machine) every dbt, Airflow and vbatt process would compile Airflow, dbt and Great
# Expectations again on import: 12.6 s instead of 7.2 s for the three, `make test` 7:34
# instead of 5:29. compileall writes it once (15 s); as pip does, a module that does not
# compile (aenum's Python 2 one) is left to fail where it would be imported.
UV_VERSION := $(shell sed -n 's/^uv==//p' requirements.txt)

# requirements-codegen.txt: tools installed without their dependencies (see the file).
$(STAMP): requirements.txt requirements-codegen.txt pyproject.toml $(NODE_STAMP)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -r requirements-codegen.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation -e .
	$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib || true
	@touch $(STAMP)

demo: install
	$(BIN)/python -m vbatt.demo

test: install chromium
	$(BIN)/pytest -n 2 -q -m "not long"

# The suites that take minutes each (whole servers started as a user starts them); CI runs
# them after `make test`.
test-long: install chromium
	$(BIN)/pytest -n 2 -q -m long

# The dashboard's browser tests drive Debian's chromium through Playwright (Playwright's
# own browser download cannot work here): installed once, as root or through sudo.
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "chromium is missing: install Debian's chromium package as root"; exit 1; fi; \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# `make demo` leaves the API running (detached, pid file in .api/); this stops it.
api-down: install
	$(BIN)/vbatt serve --stop

lint: install
	$(BIN)/ruff check include plugins dags tests benchmarks
	$(BIN)/ruff format --check include plugins dags tests benchmarks

docs: install
	$(BIN)/vbatt dbt docs generate
	@echo "dbt docs written to dbt/target; browse them with: $(BIN)/vbatt dbt docs serve"

airflow: install
	$(BIN)/python -m vbatt.orchestration.airflow_ui

bench: install
	$(BIN)/python benchmarks/ledger.py

bench-api: install
	$(BIN)/python benchmarks/api.py

# The DAGs on CeleryExecutor (Redis, PostgreSQL metadata, API server, scheduler, DAG
# processor, two workers) as local processes, compared with a single-process run.
# Needs Debian's redis-server (installed here if missing). Not part of `make test`.
CLUSTER_TEST_ARGS ?= --meters 1000
cluster-test: install
	@command -v redis-server >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y redis-server || { $$SUDO apt-get update && $$SUDO apt-get install -y redis-server; }; }
	$(BIN)/python -m vbatt.orchestration.cluster.cluster_test $(CLUSTER_TEST_ARGS)

warehouse-down: install
	$(BIN)/vbatt warehouse down

clean: api-down warehouse-down
	rm -rf $(VENV) .airflow .cluster-test dbt/target dbt/logs .pytest_cache .hypothesis
