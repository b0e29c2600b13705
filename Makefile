# Care: the two commands are `make run` (the app with demo data) and `make test` (what CI runs).
# Services come from tools/devservices.py: see docs/deploy.md. `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN_DIR := $(or $(CARE_RUN_DIR),.run)
# Only folders that exist: git does not keep empty ones, and ruff fails on a missing path.
LINT_PATHS := $(wildcard care config tests bench tools)
PYTEST_ARGS ?=
PIP_FLAGS := --disable-pip-version-check $(if $(CI),--progress-bar off)
# The browser tests drive this Chromium (Debian's package; Playwright's own download is never used).
CHROMIUM := $(or $(CARE_CHROMIUM),/usr/bin/chromium)

# Find or start PostgreSQL and Redis ($(1) is run or test) and put their URLs in the environment.
define services
$(PY) tools/devservices.py up --mode $(1)
source $(RUN_DIR)/services.env
endef

# Settings for checks and tests: no debug, a throwaway key (config/settings.py requires one).
define test_settings
export DJANGO_SECRET_KEY=test-not-secret DJANGO_DEBUG=0
endef

.PHONY: help venv install browser run test lint fmt migrate manage shell bench services-down lock messages clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(firstword $(MAKEFILE_LIST)) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Care needs Python >= 3.11; $(PYTHON) is " + sys.version.split()[0] + " (make PYTHON=python3.12 ...)")'
	$(PYTHON) -m venv $(VENV)

venv: $(PY) ## create .venv with python3 (3.11 or newer; PYTHON=...) if missing

# Reinstalls only when requirements.lock is newer than the stamp; `rm .venv/.installed` forces it.
$(STAMP): requirements.lock | $(PY)
	$(PY) -m pip install $(PIP_FLAGS) --require-hashes -r requirements.lock
	touch $@

install: $(STAMP) .env ## install the locked dependencies into .venv

# A developer's settings for plain `manage.py` commands (git-ignored; real environment variables win).
.env:
	printf '# Local development settings (see docs/deploy.md). Environment variables override these.\nDJANGO_DEBUG=1\n' > $@

# apt-get needs root; anyone else is told the command (the browser tests fail without it).
browser: ## make sure Chromium is there for the browser tests (as root: apt-get install chromium)
	@if [[ -x "$(CHROMIUM)" ]]; then exit 0; fi
	if [[ "$(CHROMIUM)" == /usr/bin/chromium && $$(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		echo "==> apt-get install chromium (for the browser tests)"
		export DEBIAN_FRONTEND=noninteractive
		# A fresh container has no package lists yet: update them only when the install needs it.
		apt-get install -y --no-install-recommends chromium \
			|| { apt-get update && apt-get install -y --no-install-recommends chromium; }
	else
		echo "The browser tests need Chromium at $(CHROMIUM). Install it as root:" >&2
		echo "    apt-get install --no-install-recommends chromium    (Debian: installs /usr/bin/chromium)" >&2
		echo "or point CARE_CHROMIUM at another Chromium or Chrome binary (e.g. /snap/bin/chromium on Ubuntu)." >&2
		exit 1
	fi

run: install ## start services, migrate, seed demo data, Celery worker + beat, and the web app (PORT=8000)
	tools/run.sh

test: install browser ## what CI runs: ruff, mypy, migrations check, pytest (PYTEST_ARGS=...), quick benchmarks
	@$(call services,test)
	$(test_settings)
	echo "==> ruff check $(LINT_PATHS)"
	$(VENV)/bin/ruff check $(LINT_PATHS)
	echo "==> mypy care config"
	$(VENV)/bin/mypy care config
	echo "==> makemigrations --check"
	$(PY) manage.py makemigrations --check --dry-run
	echo "==> pytest $(PYTEST_ARGS)"
	$(PY) -m pytest $(PYTEST_ARGS)
	if [[ -f bench/__main__.py ]]; then
		echo "==> bench all --quick"
		$(PY) -m bench all --quick
	else
		echo "==> bench: skipped, bench/__main__.py does not exist yet"
	fi

lint: install ## ruff check and mypy
	@$(test_settings)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/mypy care config

fmt: install ## ruff format, then ruff check --fix
	$(VENV)/bin/ruff format $(LINT_PATHS)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)

migrate: install ## apply migrations to the `make run` database
	@$(call services,run)
	export DJANGO_DEBUG="$${DJANGO_DEBUG:-1}"
	$(PY) manage.py migrate

manage: install ## any manage.py command on the `make run` services: make manage CMD="ingest_email --json mail.eml"
	@$(call services,run)
	export DJANGO_DEBUG="$${DJANGO_DEBUG:-1}"
	$(PY) manage.py $(CMD)

shell: install ## Django shell on the `make run` database
	@$(call services,run)
	export DJANGO_DEBUG="$${DJANGO_DEBUG:-1}"
	$(PY) manage.py shell

bench: install ## all benchmarks, full size, on the test services
	@$(call services,test)
	$(test_settings)
	$(PY) -m bench all

services-down: ## stop the embedded PostgreSQL and Redis (data stays in .run/)
	@if [[ -x $(PY) ]]; then $(PY) tools/devservices.py down; fi

lock: | $(PY) ## regenerate requirements.lock from pyproject.toml with uv
	@if [[ ! -x $(VENV)/bin/uv ]]; then $(PY) -m pip install $(PIP_FLAGS) uv; fi
	$(VENV)/bin/uv pip compile --quiet pyproject.toml --extra dev --extra embedded -o requirements.lock \
		--python-version 3.11 --generate-hashes --no-header

messages: install ## update locale/de from the source (needs GNU gettext) and compile it; commit both files
	export DJANGO_DEBUG=1
	$(PY) manage.py makemessages -l de --ignore '.venv/*' --ignore 'bench/*' --ignore 'tests/*' --ignore 'tools/*' --ignore '.run/*'
	$(PY) manage.py compilemessages -l de --ignore '.venv/*'

clean: services-down ## stop the embedded servers, delete .run/ (their data too) and caches; keeps .venv
	rm -rf $(RUN_DIR) .mypy_cache .ruff_cache .pytest_cache
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
