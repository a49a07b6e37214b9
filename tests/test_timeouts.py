"""No dependency can hang a request: bounded database statements for the web, unbounded for long jobs; /healthz
answers 503 within a second against a hung database and names no host; a hung cache costs one timeout per pause."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import pytest
from django.core.cache import caches
from django.db import OperationalError, connection, transaction

from stats import cache as stats_cache
from tests.factories import UserFactory
from tests.private_services import ROOT, BlackHoleListener, subprocess_database_url

pytestmark = pytest.mark.django_db


def _statement_timeout(cursor) -> str:
    cursor.execute("SHOW statement_timeout")
    return cursor.fetchone()[0]


# --- PostgreSQL timeouts ---------------------------------------------------------------------------------------


def test_web_connections_have_a_connect_timeout_and_a_five_second_statement_timeout():
    options = connection.settings_dict["OPTIONS"]
    assert options["connect_timeout"] == 3
    with connection.cursor() as cursor:
        assert _statement_timeout(cursor) == "5s"


def test_a_statement_longer_than_the_web_timeout_is_cancelled():
    began = time.monotonic()
    with (
        pytest.raises(OperationalError, match="statement timeout"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET LOCAL statement_timeout = 200")  # the same mechanism as the 5 s default, faster
        cursor.execute("SELECT pg_sleep(5)")
    assert time.monotonic() - began < 2


def _run(code: str, *argv: str) -> str:
    env = {**os.environ, "DATABASE_URL": subprocess_database_url(), "DJANGO_SETTINGS_MODULE": "project.settings"}
    return subprocess.run(
        [sys.executable, *argv] if argv else [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout.strip()


SHOW_TIMEOUT = (
    "from django.db import connection\n"
    "c = connection.cursor(); c.execute('SHOW statement_timeout'); print(c.fetchone()[0])"
)


def test_management_commands_run_without_the_web_statement_timeout():
    assert _run("", "manage.py", "shell", "-c", SHOW_TIMEOUT).splitlines()[-1] == "0"


def test_celery_worker_processes_run_without_the_web_statement_timeout():
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "c = connection.cursor(); c.execute('SHOW statement_timeout'); print(c.fetchone()[0])\n"
        "from celery.signals import worker_process_init\n"
        "import project.celery\n"
        "worker_process_init.send(sender=None)\n" + SHOW_TIMEOUT  # what each prefork child receives at start
    )
    assert _run(code).splitlines()[-2:] == ["5s", "0"]


# --- /healthz --------------------------------------------------------------------------------------------------


def test_healthz_answers_503_within_a_second_against_a_database_that_accepts_connections_but_never_answers(
    client, settings, caplog
):
    with BlackHoleListener() as hung:
        settings.HEALTHZ_DATABASE = {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": str(hung.port)}
        began = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="project.health"):
            response = client.get("/healthz")
        elapsed = time.monotonic() - began
    assert response.status_code == 503
    assert elapsed < 1.0, f"healthz took {elapsed:.2f}s against a hung database"
    body = response.json()
    assert body["failed"] == ["database"]
    assert body["checks"]["database"] == {"ok": False, "error": "unavailable"}
    assert "database check failed" in caplog.text  # the detail goes to the log
    # The request's own connection was never involved: it still works.
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def test_public_healthz_errors_name_no_host_or_port(client, settings):
    with BlackHoleListener() as hung:
        settings.HEALTHZ_DATABASE = {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": str(hung.port)}
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{hung.port}/0"
        began = time.monotonic()
        response = client.get("/healthz")
        elapsed = time.monotonic() - began
    text = response.content.decode()
    assert response.status_code == 503 and response.json()["failed"] == ["database", "broker"]
    assert str(hung.port) not in text and "127.0.0.1" not in text
    assert elapsed < 1.0, f"healthz took {elapsed:.2f}s with both dependencies hung"


def test_healthz_is_200_against_the_real_database_through_its_own_connection(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["checks"]["database"] == {"ok": True}


# --- Redis as cache: circuit breaker ---------------------------------------------------------------------------


@pytest.fixture
def hung_cache(settings):
    with BlackHoleListener() as hung:
        settings.CACHES = {"default": dict(settings.CACHES["default"], LOCATION=f"redis://127.0.0.1:{hung.port}/0")}
        yield settings


def test_the_cache_has_short_socket_timeouts_and_no_retries(settings):
    options = settings.CACHES["default"]["OPTIONS"]
    assert options["socket_connect_timeout"] <= 0.25 and options["socket_timeout"] <= 0.25
    assert options["retry_on_timeout"] is False


def test_a_hung_cache_costs_reads_one_timeout_per_pause_not_one_per_request(hung_cache):
    user = UserFactory()
    hung_cache.CACHE_DOWN_PAUSE_SECONDS = 30
    timeout = hung_cache.CACHES["default"]["OPTIONS"]["socket_timeout"]
    loads = []
    began = time.monotonic()
    for _ in range(20):
        assert stats_cache.get_or_load(user.pk, lambda uid: loads.append(uid) or {"user": uid}) == {"user": user.pk}
    elapsed = time.monotonic() - began
    assert loads == [user.pk] * 20  # every read was answered from the database
    assert elapsed < 3 * timeout, f"20 reads took {elapsed:.2f}s against a hung cache (one timeout is {timeout}s)"
    assert stats_cache.cache_paused()


def test_after_the_pause_the_cache_is_tried_again(hung_cache, monkeypatch):
    hung_cache.CACHE_DOWN_PAUSE_SECONDS = 0.3
    calls = []
    backend = caches["default"]
    real_get_many = backend.get_many
    monkeypatch.setattr(backend, "get_many", lambda keys: calls.append(keys) or real_get_many(keys))
    stats_cache.generational_get("k", "g", dict, 10)
    stats_cache.generational_get("k", "g", dict, 10)
    assert len(calls) == 1  # the second read skipped the cache
    time.sleep(0.35)
    stats_cache.generational_get("k", "g", dict, 10)
    assert len(calls) == 2  # the pause is over: one new attempt (which fails again and re-opens the breaker)
