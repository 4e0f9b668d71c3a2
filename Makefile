# Two commands: `make demo` (install pinned deps, sample data -> full graph -> KPIs)
# and `make test` (the whole suite). Both create and use .venv/ in this checkout.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9

ABACO_DATA ?= $(CURDIR)/data
DAGSTER_HOME ?= $(ABACO_DATA)/dagster_home
export ABACO_DATA DAGSTER_HOME

.PHONY: setup demo run test dev manifest lock clean

setup: $(VENV)/.installed

# Reinstall whenever the lock or the project metadata changes. Byte-code is compiled at install:
# with PYTHONDONTWRITEBYTECODE set (common in containers and CI) every process would otherwise
# re-compile dagster and dbt from source, about 4 s per `abaco` or `dbt` start.
$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip install --python $(PY) --require-hashes --compile-bytecode -r requirements.lock
	$(UV) pip install --python $(PY) --no-deps -e .
	$(PY) -m compileall -q abaco_assets contracts bench > /dev/null
	touch $@

manifest: setup
	$(PY) -c "from pathlib import Path; from abaco_assets.lib.dbt_manifest import ensure_manifest; ensure_manifest(Path('$(ABACO_DATA)'))"

demo: setup manifest
	$(VENV)/bin/abaco demo

test: setup manifest
	$(PY) -m pytest

dev: setup manifest
	mkdir -p "$(DAGSTER_HOME)" && cp -n dagster.yaml "$(DAGSTER_HOME)/dagster.yaml" || true
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# Re-resolve the pins (only when requirements.in changes).
lock: setup
	$(UV) pip compile requirements.in -o requirements.lock --python-version 3.11 --generate-hashes

clean:
	rm -rf $(VENV) dbt_project/target dbt_project/logs
