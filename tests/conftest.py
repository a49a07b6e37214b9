"""Shared fixtures. `make test` points the suite at real PostgreSQL and Redis (DATABASE_URL, REDIS_URL)."""

from __future__ import annotations

import functools
import tempfile
import time
from collections.abc import Callable

import pytest
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connections
from django.test import TransactionTestCase

from dispatch.publish import reset_pause

# The modules that define shared fixtures, registered once for the whole suite: a test module names a fixture as an
# argument and never imports it (an import would shadow the fixture and hide which one a test gets).
pytest_plugins = [
    "tests.backfill_support",
    "tests.ledger_helpers",
    "tests.prefork_worker",
    "tests.read_side",
]


# Fixtures that mean "this test talks to PostgreSQL or the broker". A test without any of them (the derivation rules,
# the settings probes, the import-graph checks) runs with nothing installed: `pytest tests/test_derivation_rules.py`.
# The teardown flush of transactional tests TRUNCATEs every table; the audit trail refuses that unless the session opts
# in (audit/migrations/0001_initial.py). Set before any connection is opened.
settings.DATABASES["default"]["OPTIONS"]["options"] += " -c audit.allow_truncate=on"

FLUSH_ATTEMPTS = 3


def flush_retrying_deadlocks(flush: Callable[[TransactionTestCase], None]) -> Callable[[TransactionTestCase], None]:
    """A transactional test's teardown TRUNCATEs every table while the session worker may still be recording that
    test's last events (it locks ledger and stats rows; TRUNCATE wants every table): PostgreSQL then aborts one of the
    two as a deadlock. When the flush is the one aborted, flushing again succeeds once the worker's transaction ends
    (a worker aborted instead retries its task on its own). Any other flush error fails the test as before."""

    @functools.wraps(flush)
    def teardown(self: TransactionTestCase) -> None:
        for attempt in range(1, FLUSH_ATTEMPTS + 1):
            try:
                flush(self)
                return
            except CommandError as exc:
                if attempt == FLUSH_ATTEMPTS or "deadlock detected" not in str(exc.__cause__):
                    raise

    return teardown


TransactionTestCase._fixture_teardown = flush_retrying_deadlocks(TransactionTestCase._fixture_teardown)  # type: ignore[attr-defined]

SERVICE_FIXTURES = {"db", "transactional_db", "django_db_setup", "live_worker", "celery_session_worker"}


def needs_services(item: pytest.Item) -> bool:
    fixtures = set(getattr(item, "fixturenames", ()))  # a test function's item has them; other item kinds do not
    return item.get_closest_marker("django_db") is not None or bool(SERVICE_FIXTURES & fixtures)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test that needs the services fails with what to do, not with a connection error deep in a fixture."""
    if needs_services(item) and not settings.CELERY_BROKER_URL:
        pytest.fail(
            "this test runs against real PostgreSQL and Redis: use `make test`, or set DATABASE_URL and REDIS_URL "
            f"(now: {settings.BACKENDS_DESCRIPTION}).",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _no_broker_pause():
    """dispatch's broker-down pause is per process: a test that broke the broker must not make the next one skip its
    publishes. Batch mode's pushes run on a sender thread (tasks/handoff.py): the ones a test handed off land (or fail)
    before the pause is reset, so none fails into the next test."""
    from tasks.enqueue import flush_handed_off

    flush_handed_off()
    reset_pause()
    yield
    flush_handed_off()
    reset_pause()


@pytest.fixture(autouse=True)
def _no_leaderboard_from_another_test():
    """Cached boards are global keys (per board, game, season), and their generation moves after a commit, which a
    test's rolled-back transaction never makes: without this, a board cached by one test (say, empty) is what the
    next test reads for up to a minute."""
    from stats.cache import invalidate_leaderboards

    invalidate_leaderboards()


@pytest.fixture(autouse=True, scope="session")
def _static_files_without_collectstatic():
    """Production links the hashed files that the release step's `collectstatic` wrote (a manifest); the suite renders
    pages without running it, so it links the plain names. tests/test_production_start.py runs the real thing."""
    from django.test.utils import override_settings

    plain = {**settings.STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    # An empty STATIC_ROOT: whitenoise warns once per request handler when the directory does not exist.
    with tempfile.TemporaryDirectory() as static_root, override_settings(STORAGES=plain, STATIC_ROOT=static_root):
        yield


@pytest.fixture(scope="session")
def celery_app():
    from project.celery import app

    return app


@pytest.fixture(scope="session")
def celery_session_worker(celery_app, django_db_setup, django_db_blocker):
    """A real Celery worker (solo pool, in a thread of this process) consuming both queues from the real Redis."""
    from celery.contrib.testing.worker import start_worker

    celery_app.control.purge()  # leftovers of an earlier interrupted run must not leak into this one
    with django_db_blocker.unblock():
        with start_worker(
            celery_app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30
        ) as worker:
            yield worker
        connections.close_all()


@pytest.fixture
def live_worker(celery_session_worker, transactional_db):
    """Use in integration tests: the worker sees committed data only, so the test runs without a wrapping
    transaction."""
    return celery_session_worker


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns a truthy value; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
