"""Batched recording (ACTIVITY_ENQUEUE_MODE="batch"): the request path appends "label:pk" to a Redis list and makes
sure one drain task is on its way; the drain records many rows per transaction (one per source label), which is what
makes recording cheap per event (one transaction and one message per event top out near a few hundred events/s).

Keys (on the broker's Redis, beside kombu's queues):
- PENDING_KEY: the list the request path appends to;
- DRAIN_FLAG_KEY: set (NX, short expiry) by the enqueue that publishes a drain; the drain deletes it when it starts,
  so a row arriving while a drain runs schedules the next one (at most one drain waits in the queue at a time);
- INFLIGHT_PREFIX + <drain task id>: the entries one drain is recording right now, moved there atomically; listed in
  the INFLIGHT_INDEX sorted set with the time the batch was taken, so a drain killed mid-batch (SIGKILL, lost
  worker) leaves something the next drain puts back on PENDING_KEY once it is older than INFLIGHT_STALE_SECONDS;
  the same task redelivered (acks_late + reject_on_worker_lost keep its id) records that batch first, at once.

Nothing here is the only copy of anything: the source tables are the outbox and the catch-up sweep re-derives rows
changed recently, so losing Redis' lists delays recording by up to a sweep interval, never loses it.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError
from redis.backoff import NoBackoff
from redis.retry import Retry

from activity.events import InvalidEventError
from activity.recording import record_events_for
from activity.sources import SOURCES, UnknownSourceError
from tasks.recording import _row_id

logger = logging.getLogger(__name__)

# What the drain task retries (the database is unreachable or busy); everything else is about a row, not the moment.
RETRYABLE = (OperationalError, InterfaceError)

PENDING_KEY = "activity:pending"
DRAIN_FLAG_KEY = "activity:drain-scheduled"
INFLIGHT_PREFIX = "activity:inflight:"
INFLIGHT_INDEX = "activity:inflight-index"
# A drain's flag outlives a lost publish or a drain stuck in a long queue by this much at most: the next row saved
# after it expires publishes a fresh drain.
DRAIN_FLAG_SECONDS = 5
# Rows per batch: one batch is one transaction per source label in it; 500 keeps each transaction well under a second.
DRAIN_BATCH_SIZE = 500
# A drain hands over to a fresh task after this long, so one busy drain cannot hold a pool process (and the flag
# logic) for ever; the backlog keeps draining in the next task.
DRAIN_MAX_SECONDS = 2.0
# An in-flight batch older than this belongs to a drain that died (a live batch is recorded in well under a second;
# the database's lock_timeout is 10 s).
INFLIGHT_STALE_SECONDS = 30

# Move up to ARGV[1] entries from the head of the pending list to an in-flight list and index it, atomically. A
# redelivered drain (its pool process died mid-batch; Celery runs the message again with the same task id) finds its
# dead attempt's in-flight list still there: that batch is returned again (recording is idempotent) before anything
# new is taken, so those rows are recorded now instead of being overwritten and left to the catch-up sweep.
_TAKE_BATCH = """
local leftover = redis.call('LRANGE', KEYS[2], 0, -1)
if #leftover > 0 then
  redis.call('ZADD', KEYS[3], ARGV[2], KEYS[2])
  return leftover
end
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return items end
redis.call('LTRIM', KEYS[1], #items, -1)
redis.call('RPUSH', KEYS[2], unpack(items))
redis.call('ZADD', KEYS[3], ARGV[2], KEYS[2])
return items
"""
# Put an in-flight list back on the pending list (in bounded chunks: unpack has a stack limit) and forget it.
_REQUEUE = """
local n = 0
while true do
  local items = redis.call('LRANGE', KEYS[1], 0, 499)
  if #items == 0 then break end
  redis.call('RPUSH', KEYS[2], unpack(items))
  redis.call('LTRIM', KEYS[1], #items, -1)
  n = n + #items
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], KEYS[1])
return n
"""
# A drain done with its in-flight batch.
_FINISH_BATCH = """
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], KEYS[1])
return 1
"""

_clients: dict[tuple[int, str], redis.Redis] = {}
_clients_lock = threading.Lock()


def redis_client() -> redis.Redis:
    """A client of the broker's Redis with the broker's short timeouts and no retries (a dead Redis must cost the
    request one short timeout). One per process and URL: a forked child builds its own instead of sharing sockets."""
    url = settings.CELERY_BROKER_URL
    key = (os.getpid(), url)
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
                client = redis.Redis.from_url(
                    url,
                    socket_connect_timeout=options.get("socket_connect_timeout", 0.25),
                    socket_timeout=options.get("socket_timeout", 0.25),
                    retry_on_timeout=False,
                    retry=Retry(NoBackoff(), 0),
                )
                _clients[key] = client
    return client


def entry(source_label: str, pk: int) -> str:
    return f"{source_label}:{pk}"


def push_pending(source_label: str, pk: int) -> bool:
    """Append one committed change to the pending list; returns True when the caller must publish a drain (none was
    scheduled). One round trip. Raises whatever redis-py raises when Redis is unreachable."""
    pipe = redis_client().pipeline(transaction=False)
    pipe.rpush(PENDING_KEY, entry(source_label, pk))
    pipe.set(DRAIN_FLAG_KEY, "1", nx=True, ex=DRAIN_FLAG_SECONDS)
    _, scheduled_now = pipe.execute()
    return bool(scheduled_now)


def claim_drain_slot() -> bool:
    """For a drain handing over with work left: True when no other drain is scheduled (the caller publishes one)."""
    return bool(redis_client().set(DRAIN_FLAG_KEY, "1", nx=True, ex=DRAIN_FLAG_SECONDS))


def release_drain_slot() -> None:
    """Undo claim_drain_slot when the publish that followed it failed, so the next enqueue tries again."""
    redis_client().delete(DRAIN_FLAG_KEY)


@dataclass
class DrainReport:
    batches: int = 0
    entries: int = 0
    events: int = 0
    dropped: int = 0
    requeued_stale: int = 0
    more_pending: bool = False
    by_label: dict[str, int] = field(default_factory=dict)


def drain_pending_changes(drain_id: str, *, max_seconds: float = DRAIN_MAX_SECONDS,
                          batch_size: int = DRAIN_BATCH_SIZE) -> DrainReport:
    """Record what the pending list holds, batch by batch, for up to `max_seconds`; `more_pending` says whether the
    caller must hand over to a fresh drain. On any exception the current batch goes back to the pending list and
    the exception propagates (the task retries)."""
    client = redis_client()
    client.delete(DRAIN_FLAG_KEY)  # from now on a new arrival schedules the next drain
    report = DrainReport()
    report.requeued_stale = requeue_stale_inflight()
    inflight = INFLIGHT_PREFIX + drain_id
    started = time.monotonic()
    while True:
        items = client.eval(_TAKE_BATCH, 3, PENDING_KEY, inflight, INFLIGHT_INDEX, batch_size, time.time())
        if not items:
            break
        try:
            _record_batch([i.decode() if isinstance(i, bytes) else str(i) for i in items], report)
        except BaseException:
            requeued = client.eval(_REQUEUE, 3, inflight, PENDING_KEY, INFLIGHT_INDEX)
            logger.warning("drain %s failed; %d pending entries put back for the retry", drain_id, requeued)
            raise
        client.eval(_FINISH_BATCH, 2, inflight, INFLIGHT_INDEX)
        report.batches += 1
        if time.monotonic() - started >= max_seconds:
            report.more_pending = bool(client.llen(PENDING_KEY))
            break
    return report


def requeue_stale_inflight(older_than: float = INFLIGHT_STALE_SECONDS) -> int:
    """Put the in-flight batches of drains that died (older than `older_than` seconds) back on the pending list;
    returns how many entries went back."""
    client = redis_client()
    stale = client.zrangebyscore(INFLIGHT_INDEX, "-inf", time.time() - older_than, start=0, num=100)
    total = 0
    for key in stale:
        key = key.decode() if isinstance(key, bytes) else key
        n = int(client.eval(_REQUEUE, 3, key, PENDING_KEY, INFLIGHT_INDEX))
        if n:
            logger.warning("requeued %d entries of %s, left behind by a drain that died", n, key)
        total += n
    return total


def _record_batch(items: Iterable[str], report: DrainReport) -> None:
    by_label: dict[str, set[int]] = defaultdict(set)
    for item in items:
        parsed = _parse(item)
        if parsed is None:
            report.dropped += 1
            continue
        by_label[parsed[0]].add(parsed[1])
        report.entries += 1
    for label in sorted(by_label):
        ids = sorted(by_label[label])
        report.events += _record_group(label, ids, report)
        report.by_label[label] = report.by_label.get(label, 0) + len(ids)


def _record_group(label: str, ids: list[int], report: DrainReport) -> int:
    """One transaction for the whole group. Database trouble (OperationalError, InterfaceError) propagates: the batch
    goes back and the task retries. Anything else is a bad row failing the whole group, so the group is then recorded
    row by row and only the failing rows are dropped, logged with their ids, as a failed per-row task would be:
    put back, one poison row would block the pending list for good."""
    try:
        return len(record_events_for(label, ids).inserted)
    except RETRYABLE:
        raise
    except Exception as exc:  # noqa: BLE001 - isolated below
        logger.warning("batch of %d %s rows failed (%s: %s); recording them one by one", len(ids), label,
                       type(exc).__name__, exc)
    inserted = 0
    for pk in ids:  # error path only: isolates the bad rows of the group
        try:
            inserted += len(record_events_for(label, [pk]).inserted)
        except RETRYABLE:
            raise
        except InvalidEventError as exc:
            report.dropped += 1
            logger.error("dropped pending entry %s:%s: %s", label, pk, exc)
        except Exception:  # noqa: BLE001 - logged with its traceback; the sweep / reconciliation see the row again
            report.dropped += 1
            logger.exception("dropped pending entry %s:%s: recording it failed", label, pk)
    return inserted


def _parse(item: str) -> tuple[str, int] | None:
    """("label", pk) from "label:pk"; None (logged) for garbage: an unknown label or a key that is not an integer."""
    label, sep, raw_pk = item.rpartition(":")
    try:
        if not sep:
            raise ValueError("expected 'label:pk'")
        if label not in SOURCES:
            raise UnknownSourceError(f"unknown source {label!r}")
        return label, _row_id(raw_pk)
    except (UnknownSourceError, TypeError, ValueError) as exc:
        logger.error("dropped pending entry %r: %s", item, exc)
        return None
