# Two commands matter: `make demo` (embedded default, no servers needed) and `make test` (PostgreSQL + Redis).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/activity
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
ATP_DIR ?= ../shared/data/atp

.PHONY: install demo test services migrate run worker beat bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

# The embedded default: SQLite file and in-process tasks, whatever the environment says.
demo: install
	env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL $(PY) manage.py demo --atp-dir $(ATP_DIR)

services:
	bash scripts/ensure_services.sh

test: install services
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) DB_CONN_MAX_AGE=0 SECRET_KEY=test-only-not-secret HTTPS_ONLY=0 \
		$(VENV)/bin/pytest $(PYTEST_ARGS)

migrate: install
	$(PY) manage.py migrate

# Serve what `make demo` built (same embedded default), with DEBUG on for static files.
run: install
	env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL DEBUG=1 $(PY) manage.py runserver

worker: install
	$(VENV)/bin/celery -A project worker -Q events,maintenance -l info

beat: install
	$(VENV)/bin/celery -A project beat -l info --scheduler django_celery_beat.schedulers:DatabaseScheduler

clean:
	rm -rf $(VENV) db.sqlite3
