"""`make test`'s backend detection and the embedded stack itself: a configured server that answers is used, one that
does not is replaced by an embedded PostgreSQL / Redis started (once) under the given folder."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from project.embedded import EmbeddedStack, choose, choose_backends, postgres_answers, redis_answers
from tests.private_services import free_port, subprocess_database_url

ROOT = Path(__file__).resolve().parent.parent


def embedded_dir() -> str:
    """A folder for an embedded stack outside pytest's basetemp: pytest resets /tmp/pytest-of-<user> to mode 0700 at
    every session start (other sessions run in parallel), which would lock PostgreSQL's own user out of its data."""
    return tempfile.mkdtemp(prefix="embedded-stack-", dir="/tmp")


@pytest.fixture
def stack():
    base = Path(embedded_dir())
    yield EmbeddedStack(base / "embedded", pg_port=free_port(), redis_port=free_port())
    shutil.rmtree(base, ignore_errors=True)


def test_configured_servers_that_answer_are_used_and_nothing_embedded_starts(stack):
    database, redis = choose_backends(os.environ["DATABASE_URL"], os.environ["REDIS_URL"], fallback=True, stack=stack)
    assert (database.origin, database.url) == ("configured", os.environ["DATABASE_URL"])
    assert (redis.origin, redis.url) == ("configured", os.environ["REDIS_URL"])
    assert not stack.base.exists()


def test_configured_servers_that_do_not_answer_are_replaced_by_embedded_ones_started_once(stack):
    closed_db, closed_redis = f"postgres://postgres@127.0.0.1:{free_port()}/x", f"redis://127.0.0.1:{free_port()}/0"
    assert not postgres_answers(closed_db) and not redis_answers(closed_redis)
    try:
        database, redis = choose_backends(closed_db, closed_redis, fallback=True, stack=stack)
        assert (database.origin, database.url) == ("embedded", stack.database_url)
        assert (redis.origin, redis.url) == ("embedded", stack.redis_url)
        assert postgres_answers(database.url) and redis_answers(redis.url)
        pids = (stack._postgres_pid(), stack._redis_pid())
        assert stack.start() == (stack.database_url, stack.redis_url)  # a second start reuses the running servers
        assert (stack._postgres_pid(), stack._redis_pid()) == pids
    finally:
        stopped = stack.stop()
    assert sorted(stopped) == ["postgresql", "redis"]
    assert not postgres_answers(stack.database_url) and not redis_answers(stack.redis_url)


def test_without_fallback_a_configured_url_is_taken_as_given():
    def never(*_args):
        raise AssertionError("not probed, not started")

    assert choose("database", "postgres://db.internal/x", never, never, fallback=False).origin == "configured"


@pytest.mark.parametrize("role", ["worker", "beat"])
def test_worker_and_beat_refuse_to_start_without_a_broker_url(role, transactional_db):
    # transactional_db: beat writes its built-in entries before refusing; the flush afterwards keeps them out of
    # the tests that count periodic tasks.
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL", "CACHE_URL")}
    env["DATABASE_URL"] = subprocess_database_url()  # beat reads its schedule tables before it checks
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "project", role, "-l", "warning"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "no broker configured" in result.stderr
