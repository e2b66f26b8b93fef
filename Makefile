# The commands the README names. Each installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.lock | cut -c1-12)

.PHONY: run test bench lint check lock

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

## test: the whole test suite on real PostgreSQL and Redis (embedded ones when DATABASE_URL/REDIS_URL are unset)
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## bench: the budgets of PRODUCT.md section 9, written to bench-results/
bench: $(STAMP)
	$(PY) manage.py bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

check: $(STAMP)
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

## lock: re-pin dependencies after editing pyproject.toml
lock:
	uv pip compile pyproject.toml --extra dev -o requirements.lock --python-version 3.11
