# The commands the README names. Each installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.lock | cut -c1-12)

.PHONY: run test faults chromium bench lint check lock

$(STAMP): requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

PORT ?= 8000

## run: migrate, demo site and content with 30 days of history, logins; engine on 127.0.0.1:$(PORT) with
## worker and beat, and the demo shop on 127.0.0.1:$(PORT)+1
run: $(STAMP)
	$(PY) manage.py launch --port $(PORT)

## test: the whole test suite on real PostgreSQL and Redis (embedded ones when DATABASE_URL/REDIS_URL are unset),
## with keys of its own (tests/environment.py, loaded by `python -m pytest`)
test: chromium $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## faults: the fault suite (tests/faults) with the issue's full durations: Redis stopped 30 s, PostgreSQL
## stopped 15 s, erase racing traffic 30 s, on servers of its own (make test runs it with short ones)
faults: $(STAMP)
	FAULT_REDIS_DOWN_SECONDS=30 FAULT_REDIS_FROZEN_SECONDS=10 FAULT_POSTGRES_DOWN_SECONDS=15 FAULT_ERASE_RACE_SECONDS=30 \
	  $(PY) -m pytest tests/faults -m faults $(PYTEST_ARGS)

# The browser tests' Chromium: CHROMIUM_PATH, else the chromium on PATH, else where apt-get puts it.
ifndef CHROMIUM_PATH
CHROMIUM_PATH := $(or $(shell command -v chromium 2>/dev/null),$(shell command -v chromium-browser 2>/dev/null),/usr/bin/chromium)
endif
export CHROMIUM_PATH

## chromium: make sure the browser tests can start Chromium, before anything runs: installs it when
## missing and it can (as root with apt-get, as in CI), else stops with the command to run
chromium:
	@if [ ! -x "$(CHROMIUM_PATH)" ] && [ "$(CHROMIUM_PATH)" = /usr/bin/chromium ] \
	    && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "The browser tests need Chromium; installing it: apt-get install chromium"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null || true; \
	fi
	@if [ ! -x "$(CHROMIUM_PATH)" ]; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo "sudo "); \
	  echo "make test: the browser tests need Chromium, and there is none at $(CHROMIUM_PATH). Install it with"; \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "    $${sudo}apt-get update && $${sudo}apt-get install -y chromium"; \
	  elif command -v dnf >/dev/null 2>&1; then \
	    echo "    $${sudo}dnf install -y chromium"; \
	  else \
	    echo "    your system's package manager (the package is usually called chromium)"; \
	  fi; \
	  echo "or name one that is installed: make test CHROMIUM_PATH=/path/to/chromium"; \
	  exit 1; \
	fi

## bench: the budgets of PRODUCT.md section 9, written to bench-results/
bench: $(STAMP)
	$(PY) manage.py bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

## check: Django's system checks with the deployment ones (warnings fail), and no missing migration
check: $(STAMP)
	$(PY) manage.py check --deploy --fail-level WARNING
	$(PY) manage.py makemigrations --check --dry-run

## lock: re-pin dependencies after editing pyproject.toml
lock:
	uv pip compile pyproject.toml --extra dev -o requirements.lock --python-version 3.11
