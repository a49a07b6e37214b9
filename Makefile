# `make demo` / `make run` / `make test` need no PostgreSQL or Redis on the machine: project/embedded.py starts
# embedded ones under .embedded/ when DATABASE_URL / REDIS_URL are unset (demo, run) or do not answer (test).
PYTHON ?= python3
VENV ?= .venv
PY ?= $(VENV)/bin/python
# `make demo INSTALL=` runs with an already prepared environment (PY=...) instead of installing into $(VENV).
INSTALL ?= $(VENV)/.installed
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/activity
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
ATP_DIR ?= ../shared/data/atp
DEMO_ARGS ?=
# The demo and `make run` are local runs: DEBUG on (dev secret key, static files, plain HTTP).
LOCAL := DEBUG=1 HTTPS_ONLY=0
STACK := $(PY) -m project.embedded
# DATABASE_URL / REDIS_URL from the shell when set, else the embedded servers.
ON_STACK := $(STACK) run --database-url "$$DATABASE_URL" --redis-url "$$REDIS_URL" --

.PHONY: install lint demo run test services stop status migrate worker beat clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

demo: $(INSTALL)
	@$(LOCAL) $(ON_STACK) $(PY) manage.py demo --atp-dir $(ATP_DIR) $(DEMO_ARGS)

# Serve what `make demo` built: migrations and schedules first, to the end (web and worker never start on a
# half-migrated database), then web, worker and beat (scripts/Procfile.dev) under honcho; Ctrl-C stops all three.
# `-e /dev/null`: a production .env in the checkout must not point this local run at its database; `-p`: honcho's
# own default port is 5000, the pages the demo prints are on 8000.
PORT ?= 8000
run: $(INSTALL)
	@$(LOCAL) $(ON_STACK) sh -c '$(PY) manage.py migrate --noinput -v 0 && $(PY) manage.py setup_schedules >/dev/null \
		&& PATH="$(abspath $(dir $(PY))):$$PATH" exec $(PY) -m honcho -e /dev/null -d . -f scripts/Procfile.dev start -p $(PORT)'

services:
	bash scripts/ensure_services.sh

# ruff (lint rules and formatting, pyproject.toml) over everything; mypy with django-stubs over the application
# packages, the tests and the benchmarks (settings are imported by the plugin: DEBUG=1 supplies a throwaway key, no
# server is contacted).
TYPED := activity audit dispatch esports monitoring project stats tasks web tests bench
lint: $(INSTALL)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=1 $(VENV)/bin/mypy $(TYPED)

# The configured TEST_* services when they answer (CI, a developer machine), the embedded ones otherwise. Lint first:
# a style or type error fails in seconds, before the suite's minutes.
test: $(INSTALL) lint services
	@$(PY) -m tests.browser  # the browser tests' Chromium starts, or say what to install and stop
	@$(STACK) run --fallback --database-url $(TEST_DATABASE_URL) --redis-url $(TEST_REDIS_URL) -- \
		env DB_CONN_MAX_AGE=0 SECRET_KEY=test-only-not-secret HTTPS_ONLY=0 $(VENV)/bin/pytest $(PYTEST_ARGS)

stop:
	$(STACK) stop

status:
	$(STACK) status

migrate: $(INSTALL)
	$(LOCAL) $(ON_STACK) $(PY) manage.py migrate

worker: $(INSTALL)
	$(ON_STACK) $(VENV)/bin/celery -A project worker -Q events,maintenance -l info

beat: $(INSTALL)
	$(ON_STACK) $(VENV)/bin/celery -A project beat -l info --scheduler django_celery_beat.schedulers:DatabaseScheduler

clean:
	-$(STACK) stop
	rm -rf $(VENV) .embedded
