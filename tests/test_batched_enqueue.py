"""ACTIVITY_ENQUEUE_MODE="batch": saved rows go on a Redis list that drain tasks record many per transaction, through
the real worker and the real Redis; duplicates, garbage and a drain that died mid-batch change nothing, and a dead
broker neither fails nor slows the request."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from celery.signals import before_task_publish
from django.test import override_settings

from activity.models import UserActivity
from activity.recording import record_events_for
from dispatch.publish import broker_paused
from esports.economy.models import DeltaCrownTransaction
from esports.tournaments.models import Match
from monitoring import metrics
from tasks import batching, enqueue, recording
from tests.conftest import wait_until
from tests.factories import MatchFactory, TransactionFactory, UserFactory
from tests.ledger_helpers import counters
from tests.private_services import run_outage_probe

COINS = "economy.deltacrowntransaction"


def _clear_batching_keys() -> None:
    client = batching.redis_client()
    stale = list(client.scan_iter(match=batching.INFLIGHT_PREFIX + "*"))
    client.delete(batching.PENDING_KEY, batching.DRAIN_FLAG_KEY, batching.INFLIGHT_INDEX, *stale)


@pytest.fixture
def batch_mode(settings, monkeypatch):
    """Batch mode in this process and in the in-process worker; the batching keys (this run's own Redis DB) empty."""
    settings.ACTIVITY_ENQUEUE_MODE = "batch"
    _clear_batching_keys()
    yield
    _clear_batching_keys()


@pytest.fixture
def published() -> Iterator[Counter]:
    """Names of the tasks this process publishes while the test runs."""
    names: Counter = Counter()

    def on_publish(sender=None, **kwargs) -> None:
        names[sender] += 1

    before_task_publish.connect(on_publish, weak=False)
    yield names
    before_task_publish.disconnect(on_publish)


def coin_rows(n: int, users: list) -> list[DeltaCrownTransaction]:
    """n coin transactions spread over the users, earned and spent alternately (each saved on its own, autocommit)."""
    return [
        TransactionFactory(wallet=users[i % len(users)].profile.wallet, amount=(i + 1) * (1 if i % 2 else -1))
        for i in range(n)
    ]


def events_per_row(rows) -> Counter:
    return Counter(
        UserActivity.objects.filter(source_model=COINS, source_id__in=[r.pk for r in rows]).values_list(
            "source_id", flat=True
        )
    )


def wait_recorded(rows, timeout: float = 30) -> Counter:
    wait_until(lambda: len(events_per_row(rows)) == len(rows), timeout=timeout, message="every row to be recorded")
    client = batching.redis_client()
    wait_until(
        lambda: client.llen(batching.PENDING_KEY) == 0 and client.zcard(batching.INFLIGHT_INDEX) == 0,
        timeout=timeout,
        message="the pending list and in-flight batches to empty",
    )
    return events_per_row(rows)


def expected_coin_counters(rows, user) -> tuple[int, int]:
    mine = [r.amount for r in rows if r.wallet_id == user.profile.wallet.pk]
    return sum(a for a in mine if a > 0), sum(-a for a in mine if a < 0)


@pytest.mark.integration
def test_many_rows_saved_quickly_are_recorded_exactly_once_with_exact_stats(live_worker, batch_mode, published):
    users = [UserFactory() for _ in range(3)]
    rows = coin_rows(120, users)
    per_row = wait_recorded(rows)
    assert set(per_row.values()) == {1}
    for user in users:
        earned, spent = expected_coin_counters(rows, user)
        assert (counters(user)["total_earned"], counters(user)["total_spent"]) == (earned, spent)
    assert published["tasks.recording.record_source_change"] == 0  # nothing went the per-row way
    assert 1 <= published["tasks.recording.drain_pending"] <= len(rows) + 3  # at most one per saved row (users too)


@pytest.mark.integration
def test_duplicate_entries_on_the_pending_list_record_each_row_once(live_worker, batch_mode, enqueued):
    user = UserFactory()
    rows = coin_rows(10, [user])
    client = batching.redis_client()
    client.rpush(batching.PENDING_KEY, *[batching.entry(COINS, r.pk) for r in rows for _ in range(3)])
    assert recording.schedule_drain()
    assert set(wait_recorded(rows).values()) == {1}
    earned, spent = expected_coin_counters(rows, user)
    assert (counters(user)["total_earned"], counters(user)["total_spent"]) == (earned, spent)


@pytest.mark.integration
def test_an_in_flight_batch_left_by_a_dead_drain_is_requeued_and_recorded(live_worker, batch_mode, enqueued):
    user = UserFactory()
    rows = coin_rows(5, [user])
    client = batching.redis_client()
    dead = batching.INFLIGHT_PREFIX + "drain-killed-mid-batch"
    client.rpush(dead, *[batching.entry(COINS, r.pk) for r in rows])
    client.zadd(batching.INFLIGHT_INDEX, {dead: time.time() - batching.INFLIGHT_STALE_SECONDS - 5})
    assert recording.schedule_drain()  # any later drain looks for dead drains' batches first
    assert set(wait_recorded(rows).values()) == {1}
    assert not client.exists(dead)
    earned, spent = expected_coin_counters(rows, user)
    assert (counters(user)["total_earned"], counters(user)["total_spent"]) == (earned, spent)


@pytest.mark.integration
def test_a_recent_in_flight_batch_is_left_to_its_drain(live_worker, batch_mode, enqueued):
    user = UserFactory()
    working, fresh = coin_rows(2, [user])
    client = batching.redis_client()
    busy = batching.INFLIGHT_PREFIX + "drain-still-working"
    client.rpush(busy, batching.entry(COINS, fresh.pk))
    client.zadd(batching.INFLIGHT_INDEX, {busy: time.time()})
    client.rpush(batching.PENDING_KEY, batching.entry(COINS, working.pk))
    assert recording.schedule_drain()
    wait_until(lambda: events_per_row([working]), message="the pending row to be recorded")
    wait_until(lambda: client.llen(batching.PENDING_KEY) == 0, message="the pending list to empty")
    assert client.lrange(busy, 0, -1) == [batching.entry(COINS, fresh.pk).encode()]
    assert not events_per_row([fresh])


@pytest.mark.integration
def test_garbage_entries_are_logged_and_dropped(live_worker, batch_mode, enqueued, caplog):
    good = TransactionFactory(amount=70)
    garbage = ["nope.model:1", f"{COINS}:abc", f"{COINS}:1.5", f"{COINS}:{2**70}", "no-separator"]
    client = batching.redis_client()
    with caplog.at_level(logging.ERROR, logger="tasks.batching"):
        client.rpush(batching.PENDING_KEY, *garbage[:3], batching.entry(COINS, good.pk), *garbage[3:])
        assert recording.schedule_drain()
        assert set(wait_recorded([good]).values()) == {1}
    dropped = [
        r.getMessage()
        for r in caplog.records
        if r.name == "tasks.batching" and "dropped pending entry" in r.getMessage()
    ]
    for item in garbage:
        assert any(repr(item) in message for message in dropped), (item, dropped)
    assert counters(good.wallet.profile_id)["total_earned"] == 70


@pytest.mark.integration
def test_a_row_that_fails_to_record_is_dropped_and_the_rest_of_its_batch_recorded(
    live_worker, batch_mode, enqueued, monkeypatch, caplog
):
    user = UserFactory()
    rows = coin_rows(6, [user])
    poison = rows[2]

    def record_unless_poisoned(label, ids, **kwargs):
        if poison.pk in ids:
            raise RuntimeError("a derivation bug")
        return record_events_for(label, ids, **kwargs)

    monkeypatch.setattr(recording, "record_events_for", record_unless_poisoned)  # the worker runs in this process
    client = batching.redis_client()
    with caplog.at_level(logging.ERROR, logger="tasks.recording"):
        client.rpush(batching.PENDING_KEY, *[batching.entry(COINS, r.pk) for r in rows])
        assert recording.schedule_drain()
        healthy = [r for r in rows if r is not poison]
        assert set(wait_recorded(healthy).values()) == {1}
    assert not events_per_row([poison])
    assert any(f"dropped pending entry {COINS}:{poison.pk}" in r.getMessage() for r in caplog.records)
    earned, spent = expected_coin_counters(healthy, user)
    assert (counters(user)["total_earned"], counters(user)["total_spent"]) == (earned, spent)


@pytest.mark.django_db(transaction=True)
def test_batch_mode_without_a_broker_fails_fast_logs_the_ids_and_leaves_the_row_to_the_sweep(
    batch_mode, enqueued, caplog
):
    """No in-process fallback: a process with no broker URL fails the push at once, as during an outage."""
    row = TransactionFactory(amount=25)
    failures = metrics.ENQUEUE_FAILURES.labels(source=COINS)._value.get()
    started = time.monotonic()
    with override_settings(CELERY_BROKER_URL=""):  # a web process with no REDIS_URL / CELERY_BROKER_URL
        enqueue.enqueue_source_change(COINS, row.pk)
    assert time.monotonic() - started < 0.1
    assert metrics.ENQUEUE_FAILURES.labels(source=COINS)._value.get() == failures + 1
    assert any(
        f"enqueue failed for {COINS} id={row.pk}" in r.getMessage() and "no broker configured" in r.getMessage()
        for r in caplog.records
    )
    assert broker_paused()  # the next saves skip at once too
    assert not events_per_row([row])


# --- broker down ------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("outage", ["stopped", "hung"])
def test_with_the_broker_down_a_save_in_batch_mode_succeeds_fast_and_logs_the_ids(admin_user, enqueued, capsys, outage):
    """tests/broker_outage_probe.py in batch mode against a private redis-server (the shared Redis is never touched):
    a first save goes on the private server's pending list; with the server stopped or hung (SIGSTOP), a save and an
    admin request both succeed in well under a second and the failed / skipped enqueues are logged with the ids."""
    match = MatchFactory()

    def warm_up_went_the_batch_way(server) -> None:
        # The warm-up save went onto the pending list, plus one drain message in the events queue.
        private = redis.Redis(port=server.port, socket_timeout=2)
        assert private.lrange(batching.PENDING_KEY, 0, -1) == [f"tournaments.match:{match.pk}".encode()]
        assert private.llen("events") == 1
        private.close()

    result, err = run_outage_probe(
        match.pk, admin_user.username, outage, before_outage=warm_up_went_the_batch_way, ACTIVITY_ENQUEUE_MODE="batch"
    )
    with capsys.disabled():
        print(
            f"\n[batch mode, broker {outage}] save+commit {result['save_seconds'] * 1000:.1f} ms, "
            f"admin request {result['request_seconds'] * 1000:.1f} ms (status {result['status']})"
        )
    assert result["saved_state"] == Match.State.COMPLETED and result["save_seconds"] < 1.0
    assert result["status"] == 302 and result["winner_after_request"] == match.participant2_id
    assert result["request_seconds"] < 1.0
    assert err.count(f"enqueue failed for tournaments.match id={match.pk}") == 1, err[-3000:]
    assert err.count(f"enqueue skipped for tournaments.match id={match.pk}") == 1, err[-3000:]
    assert not UserActivity.objects.filter(source_model="tournaments.match", source_id=match.pk).exists()
