"""Lifetime stats cached per user (Django's cache: Redis in production) for STATS_TTL, invalidated after commit.

Invalidation must never let a stale value survive. A plain "delete the key after commit" loses a race: a reader
that missed, read the database just before the writer committed, and stores its (old) value just after the writer
deleted the key would serve it for the whole TTL. So each user has a *generation* key, and a cached value is only
valid under the generation it was computed under:

* read: one MGET of (value, generation); a hit needs both and matching generations. On a miss the reader takes the
  current generation (creating one if there is none) *before* reading the database and stores the value tagged with it;
* invalidate: delete the generation keys (one DEL). Any value computed before, even one stored after, is now
  tagged with a generation that no longer exists, so it is never served.

Writers: the stats projector runs in the ledger's transaction; `invalidate_touched_users` (registered as a projector
in stats/apps.py) schedules the invalidation of exactly the users it touched with transaction.on_commit, and
stats.recompute does the same for every chunk it rewrites. The cache is an accelerator only: if it is unreachable,
reads go to the database and the failure is logged.

Circuit breaker (the write path's broker-down pause, tasks/enqueue.py, applied to reads): after one failed cache call
this process skips the cache for CACHE_DOWN_PAUSE_SECONDS and reads the database directly. A hung Redis (accepting
connections, never answering) so costs one socket timeout per pause and process, not one per request. Invalidations
ignore the pause (they run after commit, off the request path, and a skipped one would let a stale value live for its
TTL); their failure opens it too.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import TypeVar

from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.db import transaction

from activity.projection import InsertedEvent

logger = logging.getLogger(__name__)

STATS_TTL = 300
GENERATION_TTL = 24 * 3600
_VERSION = "v2"  # v2: the stats dict gained average_placement and its two counters (issue 15)
T = TypeVar("T")

try:  # the Redis client is a dependency, but keep this module importable without it (LocMem cache)
    from redis.exceptions import RedisError

    CACHE_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)
except ImportError:  # pragma: no cover
    CACHE_ERRORS = (OSError,)


_cache_down_until = 0.0


def cache_paused() -> bool:
    """True while the breaker is open: a cache call failed under CACHE_DOWN_PAUSE_SECONDS ago in this process."""
    return time.monotonic() < _cache_down_until


def reset_breaker() -> None:
    """Close the breaker (tests; an operator's shell after fixing Redis)."""
    global _cache_down_until
    _cache_down_until = 0.0


def _close_breaker_on_new_caches(*, setting: str, **kwargs) -> None:
    # A different cache configuration (tests switch servers and key prefixes) starts with a closed breaker.
    if setting in ("CACHES", "CACHE_DOWN_PAUSE_SECONDS"):
        reset_breaker()


setting_changed.connect(_close_breaker_on_new_caches, dispatch_uid="stats.cache.breaker")


def _cache_failed(exc: BaseException, consequence: str, *, level: int = logging.WARNING) -> None:
    global _cache_down_until
    _cache_down_until = time.monotonic() + settings.CACHE_DOWN_PAUSE_SECONDS
    logger.log(
        level,
        "cache unavailable (%s: %s); %s; skipping the cache for %gs",
        type(exc).__name__,
        exc,
        consequence,
        settings.CACHE_DOWN_PAUSE_SECONDS,
    )


def value_key(user_id: int) -> str:
    return f"stats:{_VERSION}:value:{user_id}"


def generation_key(user_id: int) -> str:
    return f"stats:{_VERSION}:gen:{user_id}"


def get_or_load(user_id: int, load: Callable[[int], dict]) -> dict:
    """The user's stats dict from the cache, or from `load(user_id)` (then cached)."""
    return generational_get(value_key(user_id), generation_key(user_id), lambda: load(user_id), STATS_TTL)


def generational_get(vkey: str, gkey: str, load: Callable[[], T], ttl: int) -> T:
    """`load()`'s result, cached under `vkey` and valid while generation key `gkey` keeps the value it had when
    the result was computed (see the module docstring). One round trip on a hit; none while the breaker is open."""
    if cache_paused():
        return load()
    try:
        found = cache.get_many([vkey, gkey])
        generation = found.get(gkey)
        cached = found.get(vkey)
        if generation is not None and isinstance(cached, tuple) and len(cached) == 2 and cached[0] == generation:
            return cached[1]
        if generation is None:
            # add() keeps a generation another reader created meanwhile: ours when it was added (one round trip),
            # else read back the one that won.
            created = uuid.uuid4().hex
            generation = created if cache.add(gkey, created, GENERATION_TTL) else cache.get(gkey)
    except CACHE_ERRORS as exc:
        _cache_failed(exc, f"reading {vkey} from the database")
        return load()
    value = load()  # after taking the generation: see the module docstring
    if generation is not None:
        try:
            cache.set(vkey, (generation, value), ttl)
        except CACHE_ERRORS as exc:
            _cache_failed(exc, f"{vkey} not cached")
    return value


def invalidate(user_ids: Iterable[int]) -> None:
    """Make the cached stats of these users stale now (one round trip). Never raises."""
    keys = [generation_key(u) for u in sorted(set(user_ids))]
    if not keys:
        return
    try:
        cache.delete_many(keys)
    except CACHE_ERRORS as exc:
        # The value expires by itself within STATS_TTL; say which users may read stale figures until then.
        _cache_failed(
            exc,
            f"stats cache invalidation failed for {len(keys)} user(s): {sorted(set(user_ids))[:20]}",
            level=logging.ERROR,
        )


def invalidate_on_commit(user_ids: Iterable[int]) -> None:
    """Invalidate after the current transaction commits (at once outside a transaction); nothing on rollback."""
    ids = sorted(set(user_ids))
    if ids:
        transaction.on_commit(partial(invalidate, ids), robust=True)


def invalidate_touched_users(inserted: Sequence[InsertedEvent]) -> None:
    """Projector (activity.projection): invalidate the users whose events this append inserted, after commit."""
    invalidate_on_commit(e.user_id for e in inserted)


# Leaderboards: cached per (board, game) for a short TTL under one shared generation, so an
# erasure can drop every cached board at once (a board must not keep showing an erased player's name).
LEADERBOARD_GENERATION_KEY = f"leaderboards:{_VERSION}:gen"


def invalidate_leaderboards() -> None:
    """Drop every cached leaderboard now. Never raises."""
    try:
        cache.delete(LEADERBOARD_GENERATION_KEY)
    except CACHE_ERRORS as exc:
        _cache_failed(exc, "leaderboard cache invalidation failed", level=logging.ERROR)
