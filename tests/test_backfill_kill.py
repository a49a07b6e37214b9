"""A real worker process SIGKILLed in the middle of a backfill chunk: the run resumes and ends with the exact ledger."""

from __future__ import annotations

import json
import time
from collections import Counter

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection

from activity import backfill
from activity.models import BackfillLane, BackfillRun, UserActivity
from dispatch.names import Queue, TaskName
from tests.backfill_support import (
    TRANSACTION,
    assert_projection_matches_ledger,
    lane_of,
    ledger_keys,
    make_history,
    projected_counters,
)
from tests.conftest import wait_until
from tests.prefork_worker import PreforkWorker
from tests.private_services import subprocess_database_url

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def only_our_workers_consume_maintenance(celery_session_worker, celery_app):
    """The in-process session worker (if other tests started it) stops taking `maintenance` tasks meanwhile."""
    target = [celery_session_worker.hostname]
    assert celery_app.control.cancel_consumer(Queue.MAINTENANCE.value, destination=target, reply=True, timeout=5)
    yield
    celery_app.control.add_consumer(Queue.MAINTENANCE.value, destination=target, reply=True, timeout=5)


def waiting_backends() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return [pid for (pid,) in cursor.fetchall()]


def backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None


def forget_unacked_chunks(run_id: int) -> None:
    """Drop the killed worker's unacked message from our Redis DB: Redis would hand it back only after the visibility
    timeout (an hour), long after this test database is gone."""
    import redis

    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    for tag, payload in client.hgetall("unacked").items():
        message = json.loads(payload)[0]
        headers = message.get("headers", {})
        if headers.get("task") == TaskName.RUN_BACKFILL_CHUNK.value and f"({run_id}," in headers.get("argsrepr", ""):
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


def test_a_worker_killed_mid_chunk_leaves_a_run_that_resumes_and_ends_exactly_right(
    history_mode, transactional_db, only_our_workers_consume_maintenance, settings, tmp_path
):
    history = make_history(players=10, matches=60, coin_users=12, coins_each=5)
    expected = Counter(history.expected.keys)
    # Hold back one event of a late chunk (the transactions of the 7th coin user): an uncommitted ledger row with its
    # key, as a concurrent recorder would have. The worker's INSERT .. ON CONFLICT waits on it, mid-chunk, having
    # written part of that chunk in its open transaction.
    held = history.transactions[6 * 5 + 3]
    amount = abs(held.amount)
    event_type = "coins_earned" if held.amount > 0 else "coins_spent"
    blocker = psycopg.connect(subprocess_database_url().replace("postgres://", "postgresql://"), autocommit=False)
    blocker.execute(
        "INSERT INTO activity_useractivity (user_id, event_type, timestamp, recorded_at, amount, metadata,"
        " source_model, source_id, seq, visibility) VALUES (%s, %s, now(), now(), %s, '{}', %s, %s, 1, 'private')",
        [held.wallet.profile_id, event_type, amount, TRANSACTION, held.pk],
    )

    first = PreforkWorker(tmp_path / "worker1.log", queue=Queue.MAINTENANCE.value, DB_LOCK_TIMEOUT_MS="120000")
    second = run = None
    try:
        run = backfill.start_backfill(None, batch_size=5)  # about 35 chunks; the first is enqueued on commit
        waiting = wait_until(waiting_backends, timeout=60, interval=0.05, message="the worker to block mid-chunk")
        run.refresh_from_db()
        assert run.status == BackfillRun.Status.RUNNING and run.current_source == TRANSACTION
        lane = lane_of(run)
        assert 0 < run.chunks_done == lane.chunks_done and lane.cursor < held.pk and lane.source == TRANSACTION

        first.kill()  # the whole worker, as when its host dies: no one rejects or redelivers the chunk task
        blocker.rollback()  # the dead worker's server session now fails on its next read and rolls back
        wait_until(
            lambda: not any(backend_alive(pid) for pid in waiting),
            timeout=30,
            message="the killed worker's database session to end",
        )

        # Stuck: nothing moves, and what is committed is exactly what the run's progress says.
        stuck = BackfillRun.objects.get(pk=run.pk)
        time.sleep(1.5)
        run.refresh_from_db()
        assert (run.status, run.chunks_done) == (BackfillRun.Status.RUNNING, stuck.chunks_done)
        assert UserActivity.objects.count() == run.events_created < len(expected)
        assert lane_of(run).events_created == run.events_created  # the lane row committed with the run, nothing more
        assert not UserActivity.objects.filter(source_model=TRANSACTION, source_id__gt=lane_of(run).cursor).exists()

        # A new worker alone would wait an hour for Redis to hand back the unacked task; the stale-run resume (beat)
        # re-enqueues the run from its committed cursor.
        second = PreforkWorker(tmp_path / "worker2.log", queue=Queue.MAINTENANCE.value)
        settings.BACKFILL_STALE_SECONDS = 1
        wait_until(
            lambda: backfill.resume_stale_backfills() == [run.pk],
            timeout=10,
            interval=0.2,
            message="the stalled run to be resumed",
        )
        wait_until(
            lambda: not BackfillRun.objects.get(pk=run.pk).is_active,
            timeout=90,
            interval=0.2,
            message="the resumed run to end",
        )
    except BaseException:
        for worker in (first, second):
            if worker is not None:
                print(f"--- {worker.log.name}\n{worker.log.read_text()[-4000:]}")
        raise
    finally:
        blocker.close()
        first.stop()
        if second is not None:
            second.stop()
        if run is not None:
            forget_unacked_chunks(run.pk)

    run.refresh_from_db()
    assert run.status == BackfillRun.Status.SUCCEEDED, run.last_error
    assert run.resumes == 1
    assert lane_of(run).status == BackfillLane.Status.DONE and lane_of(run).events_created == len(expected)
    assert ledger_keys() == expected  # nothing missing, nothing doubled
    assert run.events_created == len(expected)  # the killed chunk was counted once: when it was redone
    assert projected_counters() == history.expected.user_counters()
    assert_projection_matches_ledger(history.expected.counters)
