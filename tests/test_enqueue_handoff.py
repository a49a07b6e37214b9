"""Batch mode's hand-off (tasks/handoff.py): the request thread does no Redis I/O, every handed-off row reaches the
pending list exactly once, a failed push is handled as the request path handled it, a normal exit pushes what is left,
and a forked child starts with its own empty list and thread."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
import redis

from dispatch.publish import broker_paused
from monitoring import metrics
from tasks import batching, enqueue, handoff
from tests.conftest import wait_until
from tests.private_services import ROOT, PrivateRedis, subprocess_database_url

COINS = "economy.deltacrowntransaction"


@pytest.fixture
def batch_keys(settings):
    settings.ACTIVITY_ENQUEUE_MODE = "batch"
    client = batching.redis_client()
    enqueue.flush_handed_off()
    client.delete(batching.PENDING_KEY, batching.DRAIN_FLAG_KEY)
    yield client
    enqueue.flush_handed_off()
    client.delete(batching.PENDING_KEY, batching.DRAIN_FLAG_KEY)


def pending(client: redis.Redis) -> Counter:
    return Counter(i.decode() if isinstance(i, bytes) else str(i) for i in client.lrange(batching.PENDING_KEY, 0, -1))


def test_the_caller_returns_while_the_push_is_blocked_and_the_push_runs_on_another_thread(batch_keys, monkeypatch):
    release, pushed_on, pushed = threading.Event(), [], []
    real_push = batching.push_pending_many

    def blocked_push(entries: list[str]) -> bool:
        pushed_on.append(threading.get_ident())
        release.wait(5)
        scheduled = real_push(entries)
        pushed.extend(entries)  # (a live worker of an earlier test may drain the real list at once)
        return scheduled

    monkeypatch.setattr(batching, "push_pending_many", blocked_push)
    started = time.perf_counter()
    enqueue.enqueue_source_change(COINS, 7001)
    elapsed = time.perf_counter() - started
    release.set()
    wait_until(lambda: pushed == [f"{COINS}:7001"], message="the row pushed to the pending list")
    assert elapsed < 0.05  # a push in the caller would have waited for `release`
    assert pushed_on and threading.get_ident() not in pushed_on


def test_rows_handed_off_by_four_threads_at_once_reach_the_pending_list_exactly_once(batch_keys, monkeypatch):
    real_push, pushes, pushed = batching.push_pending_many, [], Counter()

    def counted_push(entries: list[str]) -> bool:
        scheduled = real_push(entries)
        pushes.append(len(entries))
        pushed.update(entries)
        return scheduled

    monkeypatch.setattr(batching, "push_pending_many", counted_push)
    start = threading.Barrier(4)

    def save_many(t: int) -> None:
        start.wait()
        for i in range(250):
            enqueue.enqueue_source_change(COINS, t * 1000 + i)

    threads = [threading.Thread(target=save_many, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    enqueue.flush_handed_off()
    assert pushed == Counter({f"{COINS}:{t * 1000 + i}": 1 for t in range(4) for i in range(250)})
    assert sum(pushes) == 1000 and len(pushes) <= 1000  # several rows share a push when they arrive together


def test_a_failed_push_on_the_sender_is_logged_with_the_ids_counted_and_starts_the_pause(batch_keys, settings, caplog):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1: the connection is refused
    failures = metrics.ENQUEUE_FAILURES.labels(source=COINS)._value.get()
    started = time.perf_counter()
    enqueue.enqueue_source_change(COINS, 7101)
    enqueue.enqueue_source_change(COINS, 7102)
    assert time.perf_counter() - started < 0.05
    enqueue.flush_handed_off()
    assert metrics.ENQUEUE_FAILURES.labels(source=COINS)._value.get() == failures + 2
    messages = [r.getMessage() for r in caplog.records]
    for pk in (7101, 7102):
        assert any(
            f"enqueue failed for {COINS} id={pk}" in m or f"enqueue skipped for {COINS} id={pk}" in m for m in messages
        )
    assert broker_paused()
    assert not pending(batch_keys)


PROBE = """
import sys, time
sys.path.insert(0, {root!r})
import django
django.setup()
from tasks import batching, enqueue
real_push = batching.push_pending_many
def slow_push(entries):
    time.sleep(0.3)  # the sender thread is mid-delivery when the interpreter starts exiting
    return real_push(entries)
batching.push_pending_many = slow_push
enqueue.enqueue_source_change("economy.deltacrowntransaction", 7201)
time.sleep(0.05)
enqueue.enqueue_source_change("economy.deltacrowntransaction", 7202)
"""


def test_a_process_exiting_right_after_its_saves_pushes_what_it_handed_off():
    with PrivateRedis() as server:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DATABASE_URL": subprocess_database_url(),
            "REDIS_URL": server.url,
            "CELERY_BROKER_URL": server.url,
            "ACTIVITY_ENQUEUE_MODE": "batch",
            "SECRET_KEY": "test-only",
        }
        result = subprocess.run(
            [sys.executable, "-c", PROBE.format(root=str(ROOT))],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        client = redis.Redis(port=server.port, socket_timeout=2)
        assert sorted(client.lrange(batching.PENDING_KEY, 0, -1)) == [
            f"{COINS}:7201".encode(),
            f"{COINS}:7202".encode(),
        ]
        client.close()


def test_a_forked_child_starts_with_an_empty_list_and_its_own_thread():
    release, delivered = threading.Event(), []

    def deliver(items: list[tuple[str, int]]) -> None:
        if os.getpid() == parent:
            release.wait(5)  # the parent's thread holds its delivery lock across the fork
        delivered.extend(items)

    parent = os.getpid()
    sender = handoff.Sender(deliver, name="test-handoff")
    sender.hand_off("a", 1)
    wait_until(lambda: sender.pending() == 0, message="the parent's thread to take its first entry")
    sender.hand_off("a", 2)  # waits in the parent's list
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report what it inherited and whether its own delivery works, then leave at once
        try:
            inherited = sender.pending()
            sender.hand_off("b", 3)
            wait_until(lambda: delivered == [("b", 3)], timeout=5, message="the child's delivery")
            os.write(write_end, f"{inherited} {delivered}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    report = os.read(read_end, 1000).decode()
    os.close(read_end)
    os.waitpid(child, 0)
    release.set()
    sender.flush()
    assert report == "0 [('b', 3)]"
    assert delivered == [("a", 1), ("a", 2)]


def test_with_a_gather_window_what_is_handed_off_meanwhile_goes_in_the_same_push():
    pushes: list[list[tuple[str, int]]] = []
    sender = handoff.Sender(pushes.append, name="test-handoff", gather_seconds=0.2)
    sender.hand_off("a", 1)
    sender.hand_off("a", 2)  # within the window opened by the first
    wait_until(lambda: pushes, message="the sender thread's push")
    sender.hand_off("a", 3)  # after it: the next round
    wait_until(lambda: len(pushes) == 2, message="the second push")
    assert pushes == [[("a", 1), ("a", 2)], [("a", 3)]]
