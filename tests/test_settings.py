"""Settings come from the environment only: the embedded default with nothing set, the given PostgreSQL + Redis with
URLs (PostgreSQL only: tests/test_one_sql_dialect.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import json, django; django.setup(); from django.conf import settings; from django.db import connection; "
    "from project.celery import app; "
    "print(json.dumps({'vendor': connection.vendor, 'eager': app.conf.task_always_eager, "
    "'broker': app.conf.broker_url, 'describe': settings.BACKENDS_DESCRIPTION}))"
)
URL_VARS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY", "DEBUG")


def run_settings_probe(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in URL_VARS}
    clean.update(DJANGO_SETTINGS_MODULE="project.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def test_no_environment_gives_the_embedded_postgresql_and_no_broker_never_in_process_tasks(tmp_path):
    result = run_settings_probe(tmp_path)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["vendor"] == "postgresql" and "(embedded)" in probe["describe"]
    assert probe["eager"] is False  # no broker: publishes fail fast (dispatch), tasks never run in the web process
    assert "tasks: no broker configured" in probe["describe"] and "recording:" not in probe["describe"]


def test_urls_in_environment_give_postgresql_and_the_redis_broker(tmp_path):
    result = run_settings_probe(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/activity",
        REDIS_URL="redis://127.0.0.1:6379/9",
        SECRET_KEY="probe-secret",
    )
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["vendor"] == "postgresql"
    assert probe["eager"] is False
    assert probe["broker"] == "redis://127.0.0.1:6379/9"
    assert "postgresql" in probe["describe"] and "tasks: Celery workers via redis://" in probe["describe"]


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path):
    result = run_settings_probe(tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:5432/activity")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize(
    "setting, expected",
    [
        ("task_acks_late", True),
        ("task_reject_on_worker_lost", True),
        ("worker_prefetch_multiplier", 1),
        ("task_create_missing_queues", False),
        ("timezone", "UTC"),
    ],
)
def test_celery_reliability_settings(setting, expected):
    from project.celery import app

    assert app.conf[setting] == expected


def test_celery_has_explicit_queues_routes_and_time_limits():
    from project.celery import app

    assert {q.name for q in app.conf.task_queues} == {"events", "maintenance"}
    assert app.conf.task_routes["tasks.recording.record_source_change"] == {"queue": "events"}
    assert app.conf.task_routes["tasks.maintenance.run_backfill_chunk"] == {"queue": "maintenance"}
    # every task a worker knows is routed (a task missing from dispatch.names would go to the default queue)
    app.loader.import_default_modules()
    ours = {name for name in app.tasks if name.startswith("tasks.")}
    assert ours == set(app.conf.task_routes)
    assert app.conf.task_time_limit and app.conf.task_soft_time_limit < app.conf.task_time_limit
    options = app.conf.broker_transport_options
    assert options["socket_connect_timeout"] < 1 and options["max_retries"] == 0
