"""The Redis transport of batched recording (ACTIVITY_ENQUEUE_MODE="batch"): the request path appends "label:pk" to a
Redis list and makes sure one drain task is on its way; the drain (tasks/recording.py) takes the entries batch by batch
and records many rows per transaction, which is what makes recording cheap per event (one transaction and one message
per event top out near a few hundred events/s). This module only moves entries between lists and parses them: it
knows nothing of recording, of tasks or of the broker's messages.

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

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from activity.sources import SOURCES, UnknownSourceError

logger = logging.getLogger(__name__)

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


class NoBrokerConfigured(redis.ConnectionError):
    """No broker URL: there is no Redis to batch in (a RedisError, so callers handle it as an unreachable Redis)."""


def redis_client() -> redis.Redis:
    """A client of the broker's Redis with the broker's short timeouts and no retries (a dead Redis must cost the
    request one short timeout). One per process and URL: a forked child builds its own instead of sharing sockets."""
    url = settings.CELERY_BROKER_URL
    if not url:
        raise NoBrokerConfigured("no broker configured (REDIS_URL / CELERY_BROKER_URL unset)")
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
    """The pending-list entry of one committed change."""
    return f"{source_label}:{pk}"


def row_id(pk: object) -> int:
    """The primary key an entry or a message carries; anything that is not a 64-bit integer (or its decimal string)
    is garbage (int() alone would truncate 1.5 to row 1, and a key beyond bigint fails in the database instead of
    here)."""
    if isinstance(pk, bool) or not isinstance(pk, (int, str)):
        raise TypeError(f"primary key must be an integer, got {type(pk).__name__}")
    value = int(pk)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"primary key {value} is outside the 64-bit range")
    return value


def parse_entry(item: str | bytes) -> tuple[str, int] | None:
    """("label", pk) from "label:pk"; None (logged with the entry) for garbage: an unknown label or a key that is
    not an integer."""
    text = item.decode() if isinstance(item, bytes) else str(item)
    label, sep, raw_pk = text.rpartition(":")
    try:
        if not sep:
            raise ValueError("expected 'label:pk'")
        if label not in SOURCES:
            raise UnknownSourceError(f"unknown source {label!r}")
        return label, row_id(raw_pk)
    except (UnknownSourceError, TypeError, ValueError) as exc:
        logger.error("dropped pending entry %r: %s", text, exc)
        return None


def push_pending(source_label: str, pk: int) -> bool:
    """Append one committed change to the pending list; returns True when the caller must publish a drain (none was
    scheduled). One round trip. Raises whatever redis-py raises when Redis is unreachable."""
    return push_pending_many([entry(source_label, pk)])


def push_pending_many(entries: list[str]) -> bool:
    """push_pending for many entries at once (tasks/handoff.py's sender): still one round trip."""
    if not entries:
        return False
    pipe = redis_client().pipeline(transaction=False)
    pipe.rpush(PENDING_KEY, *entries)
    pipe.set(DRAIN_FLAG_KEY, "1", nx=True, ex=DRAIN_FLAG_SECONDS)
    _, scheduled_now = pipe.execute()
    return bool(scheduled_now)


def claim_drain_slot() -> bool:
    """For a drain handing over with work left: True when no other drain is scheduled (the caller publishes one)."""
    return bool(redis_client().set(DRAIN_FLAG_KEY, "1", nx=True, ex=DRAIN_FLAG_SECONDS))


def release_drain_slot() -> None:
    """Undo claim_drain_slot when the publish that followed it failed, so the next enqueue tries again."""
    redis_client().delete(DRAIN_FLAG_KEY)


def clear_drain_flag() -> None:
    """A drain starting: from now on a new arrival schedules the next drain."""
    redis_client().delete(DRAIN_FLAG_KEY)


def inflight_key(drain_id: str) -> str:
    return INFLIGHT_PREFIX + drain_id


def take_batch(drain_id: str, batch_size: int = DRAIN_BATCH_SIZE) -> list[str]:
    """Move up to `batch_size` entries from the pending list to this drain's in-flight list, atomically, and return
    them; a redelivered drain (same id) gets its dead attempt's in-flight entries back first. Empty: nothing pending."""
    items = redis_client().eval(
        _TAKE_BATCH, 3, PENDING_KEY, inflight_key(drain_id), INFLIGHT_INDEX, batch_size, time.time()
    )
    return [i.decode() if isinstance(i, bytes) else str(i) for i in items]


def finish_batch(drain_id: str) -> None:
    """The drain recorded its in-flight batch: forget it."""
    redis_client().eval(_FINISH_BATCH, 2, inflight_key(drain_id), INFLIGHT_INDEX)


def return_batch(drain_id: str) -> int:
    """The drain failed with its batch: put the entries back on the pending list for the retry; returns how many."""
    return int(redis_client().eval(_REQUEUE, 3, inflight_key(drain_id), PENDING_KEY, INFLIGHT_INDEX))


def requeue_stale(older_than: float = INFLIGHT_STALE_SECONDS) -> int:
    """Put the in-flight batches of drains that died (older than `older_than` seconds) back on the pending list;
    returns how many entries went back."""
    client = redis_client()
    stale = client.zrangebyscore(INFLIGHT_INDEX, "-inf", time.time() - older_than, start=0, num=100)
    total = 0
    for raw_key in stale:
        key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
        n = int(client.eval(_REQUEUE, 3, key, PENDING_KEY, INFLIGHT_INDEX))
        if n:
            logger.warning("requeued %d entries of %s, left behind by a drain that died", n, key)
        total += n
    return total


def pending_count() -> int:
    """Entries waiting on the pending list."""
    return int(redis_client().llen(PENDING_KEY))
