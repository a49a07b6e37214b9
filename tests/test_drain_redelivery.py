"""A drain redelivered after its pool process was SIGKILLed mid-batch (same task id) records the dead attempt's batch
itself: no row waits for the catch-up sweep. Through a real prefork worker process, and the Lua script on its own."""

from __future__ import annotations

import json
import os
import signal
import time

import psycopg
import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from activity.models import SweepWatermark, UserActivity
from tasks import batching
from tasks.recording import drain_pending, drain_pending_changes
from tests.conftest import wait_until
from tests.factories import TransactionFactory, UserFactory
from tests.prefork_worker import PreforkWorker
from tests.private_services import subprocess_database_url

COINS = "economy.deltacrowntransaction"


def _clear_batching_keys() -> None:
    client = batching.redis_client()
    client.delete(
        batching.PENDING_KEY,
        batching.DRAIN_FLAG_KEY,
        batching.INFLIGHT_INDEX,
        *client.scan_iter(match=batching.INFLIGHT_PREFIX + "*"),
    )


@pytest.fixture
def clean_batching_keys():
    _clear_batching_keys()
    yield batching.redis_client()
    _clear_batching_keys()


# --- the script against real Redis --------------------------------------------------------------------------------


def test_taking_a_batch_with_a_dead_attempts_in_flight_list_returns_that_batch_first(clean_batching_keys):
    client = clean_batching_keys
    inflight = batching.INFLIGHT_PREFIX + "same-task-id"
    client.rpush(inflight, "a:1", "a:2")
    client.zadd(batching.INFLIGHT_INDEX, {inflight: 1.0})
    client.rpush(batching.PENDING_KEY, "a:3", "a:4")

    taken = client.eval(batching._TAKE_BATCH, 3, batching.PENDING_KEY, inflight, batching.INFLIGHT_INDEX, 10, 500.0)

    assert taken == [b"a:1", b"a:2"]  # the dead attempt's entries, recorded before anything new is taken
    assert client.lrange(inflight, 0, -1) == [b"a:1", b"a:2"]
    assert client.zscore(batching.INFLIGHT_INDEX, inflight) == 500.0  # fresh again: not requeued as stale meanwhile
    assert client.lrange(batching.PENDING_KEY, 0, -1) == [b"a:3", b"a:4"]  # untouched until that batch is done

    client.eval(batching._FINISH_BATCH, 2, inflight, batching.INFLIGHT_INDEX)
    taken = client.eval(batching._TAKE_BATCH, 3, batching.PENDING_KEY, inflight, batching.INFLIGHT_INDEX, 10, 501.0)
    assert taken == [b"a:3", b"a:4"]
    assert client.llen(batching.PENDING_KEY) == 0


def test_taking_a_batch_without_a_leftover_moves_entries_from_the_pending_list(clean_batching_keys):
    client = clean_batching_keys
    inflight = batching.INFLIGHT_PREFIX + "fresh-task-id"
    client.rpush(batching.PENDING_KEY, "a:1", "a:2", "a:3")

    taken = client.eval(batching._TAKE_BATCH, 3, batching.PENDING_KEY, inflight, batching.INFLIGHT_INDEX, 2, 7.0)

    assert taken == [b"a:1", b"a:2"]
    assert client.lrange(inflight, 0, -1) == taken
    assert client.lrange(batching.PENDING_KEY, 0, -1) == [b"a:3"]
    assert client.zscore(batching.INFLIGHT_INDEX, inflight) == 7.0


def test_a_redelivered_drain_in_this_process_records_its_leftover_batch(
    transactional_db, enqueued, clean_batching_keys
):
    client = clean_batching_keys
    user = UserFactory()
    left_behind = [TransactionFactory(wallet=user.profile.wallet, amount=10 + i) for i in range(3)]
    arrived_later = [TransactionFactory(wallet=user.profile.wallet, amount=20 + i) for i in range(2)]
    inflight = batching.INFLIGHT_PREFIX + "task-7"
    client.rpush(inflight, *[batching.entry(COINS, t.pk) for t in left_behind])
    client.zadd(batching.INFLIGHT_INDEX, {inflight: time.time()})  # recent: no stale requeue would pick it up
    client.rpush(batching.PENDING_KEY, *[batching.entry(COINS, t.pk) for t in arrived_later])

    report = drain_pending_changes("task-7")

    assert report.entries == 5 and report.requeued_stale == 0
    recorded = set(UserActivity.objects.filter(source_model=COINS).values_list("source_id", flat=True))
    assert recorded == {t.pk for t in left_behind + arrived_later}
    assert not client.exists(inflight) and client.zcard(batching.INFLIGHT_INDEX) == 0


# --- a real prefork worker, its pool process SIGKILLed mid-batch -----------------------------------------------------


def _backends_waiting_on_a_lock() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return [pid for (pid,) in cursor.fetchall()]


def _backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None


def _forget_drain_messages(task_id: str) -> None:
    """Drop our drain's message if a failed run left it unacked in this run's Redis DB (hidden for an hour)."""
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    for tag, payload in client.hgetall("unacked").items():
        if json.loads(payload)[0].get("headers", {}).get("id") == task_id:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


@pytest.mark.integration
@pytest.mark.slow
def test_a_drain_killed_mid_batch_is_redelivered_and_records_every_row_without_a_sweep(
    transactional_db, enqueued, clean_batching_keys, only_our_worker_consumes_events, tmp_path
):
    client = clean_batching_keys
    users = [UserFactory() for _ in range(3)]
    first_batch = [TransactionFactory(wallet=users[i % 3].profile.wallet, amount=5 + i) for i in range(6)]
    arrived_later = [TransactionFactory(wallet=users[i % 3].profile.wallet, amount=50 + i) for i in range(4)]
    assert not SweepWatermark.objects.exists()

    # The ledger row of one entry of the batch, inserted and not committed, as a concurrent recorder would hold it:
    # the drain's INSERT .. ON CONFLICT waits on it with the whole batch in its open transaction.
    held = first_batch[3]
    blocker = psycopg.connect(subprocess_database_url().replace("postgres://", "postgresql://"), autocommit=False)
    blocker.execute(
        "INSERT INTO activity_useractivity (user_id, event_type, timestamp, recorded_at, amount, metadata,"
        " source_model, source_id, seq, visibility)"
        " VALUES (%s, 'coins_earned', now(), now(), %s, '{}', %s, %s, 1, 'private')",
        [held.wallet.profile_id, held.amount, COINS, held.pk],
    )

    client.rpush(batching.PENDING_KEY, *[batching.entry(COINS, t.pk) for t in first_batch])
    task_id = drain_pending.apply_async(retry=False).id
    inflight = batching.INFLIGHT_PREFIX + task_id
    worker = PreforkWorker(tmp_path / "worker.log", DB_LOCK_TIMEOUT_MS="120000")
    try:
        waiting = wait_until(
            _backends_waiting_on_a_lock, timeout=60, interval=0.05, message="the drain to block mid-batch"
        )
        assert client.llen(inflight) == len(first_batch) and client.llen(batching.PENDING_KEY) == 0
        # More rows arrive while the drain is stuck: the redelivered drain will find them on the pending list.
        client.rpush(batching.PENDING_KEY, *[batching.entry(COINS, t.pk) for t in arrived_later])

        (pool_process,) = worker.pool_processes()
        os.kill(pool_process, signal.SIGKILL)
        blocker.rollback()  # the dead process's server session now fails and rolls back its uncommitted batch
        wait_until(
            lambda: not any(_backend_alive(pid) for pid in waiting),
            timeout=30,
            message="the killed drain's database session to end",
        )

        # Celery rejects the message (acks_late + reject_on_worker_lost) and the restarted pool process runs it again,
        # with the same task id. Well before INFLIGHT_STALE_SECONDS, and with no sweep: every row is recorded.
        expected = {t.pk for t in first_batch + arrived_later}
        wait_until(
            lambda: (
                set(UserActivity.objects.filter(source_model=COINS).values_list("source_id", flat=True)) == expected
            ),
            timeout=20,
            interval=0.1,
            message="every row to be recorded by the redelivered drain",
        )
        wait_until(lambda: client.zcard(batching.INFLIGHT_INDEX) == 0, timeout=10, message="the batch to be finished")
    except BaseException:
        print(f"--- worker log\n{worker.log.read_text()[-6000:]}")
        raise
    finally:
        blocker.close()
        worker.stop()
        _forget_drain_messages(task_id)

    log = worker.log.read_text()
    assert "WorkerLostError" in log or "SIGKILL" in log  # the first attempt really died
    assert log.count(f"[{task_id}] received") == 2  # and the same task id was delivered again
    assert UserActivity.objects.filter(source_model=COINS).count() == len(expected)  # each row once
    assert not SweepWatermark.objects.exists()  # no catch-up sweep ran
    assert "tasks.sweeps.catch_up[" not in log  # (the banner lists the task; a run would log it with its id)
    assert not client.exists(inflight) and client.llen(batching.PENDING_KEY) == 0
