"""recompute_stats: set each user's counters to the ledger's aggregates, set-based and chunked by user id."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.db import connection, transaction
from django.utils import timezone

from activity.models import UserActivity
from stats.cache import invalidate_on_commit
from stats.counters import COUNTER_FIELDS, counter_sql
from stats.models import UserProfileStats
from stats.rows import lock_stats_rows
from stats.scoped_recompute import recompute_scoped

_STATS = UserProfileStats._meta.db_table
_LEDGER = UserActivity._meta.db_table
CHUNK = 2000


def ledger_aggregate_sql(user_filter: str) -> str:
    """SELECT user_id, <every counter>, last_at FROM the ledger for the users matched by `user_filter`."""
    counters = ", ".join(f"{counter_sql(f)} AS {f}" for f in COUNTER_FIELDS)
    return f"SELECT user_id, {counters}, MAX(timestamp) AS last_at FROM {_LEDGER} WHERE {user_filter} GROUP BY user_id"


def recompute_stats(user_ids: Iterable[int], *, progress: Callable[[int, int], None] | None = None) -> int:
    """Recompute the given users' stats (lifetime, per-game and per-season rows) from the ledger alone; returns how
    many lifetime rows were written. `progress(users done, lifetime rows written)` is called after each chunk.

    Each chunk locks its stats rows first, then aggregates: an append that committed before the lock is counted by
    the aggregate, one that commits after it adds its delta on top, so a concurrent live recording is never lost.
    """
    ids = sorted({int(u) for u in user_ids})
    written = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        with transaction.atomic():
            lock_stats_rows(chunk)
            written += _write_aggregates(chunk)
            recompute_scoped(chunk)  # the per-game / per-season rows, under the same locks
            invalidate_on_commit(chunk)  # cached lifetime stats of these users are stale once this commits
        if progress is not None:
            progress(start + len(chunk), written)
    return written


def _write_aggregates(user_ids: list[int]) -> int:
    now = timezone.now()
    placeholders = ", ".join(["%s"] * len(user_ids))
    aggregate = ledger_aggregate_sql(f"user_id IN ({placeholders})")
    sets = ", ".join(f"{f} = COALESCE(agg.{f}, 0)" for f in COUNTER_FIELDS)
    sql = (
        f"UPDATE {_STATS} SET {sets}, last_activity_at = agg.last_at, stats_updated_at = %s "
        f"FROM (SELECT p.profile_id AS uid, a.* FROM {_STATS} p LEFT JOIN ({aggregate}) a ON a.user_id = p.profile_id "
        f"WHERE p.profile_id IN ({placeholders})) AS agg WHERE {_STATS}.profile_id = agg.uid"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, *user_ids, *user_ids])
        return cursor.rowcount
