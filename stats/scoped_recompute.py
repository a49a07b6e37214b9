"""Recompute of the per-game and per-season rows: replaced by the ledger's GROUP BY, set-based, for a chunk of users.

Called by stats.recompute.recompute_stats for each chunk, under the chunk's lifetime row locks (which every writer
of a user's scoped rows takes first), so a live delta committed meanwhile is either in the aggregate or added after.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.utils import timezone

from activity.models import UserActivity
from stats.counters import COUNTER_FIELDS, counter_sql
from stats.scoped import SCOPES, Scope

_LEDGER = UserActivity._meta.db_table


def aggregate_sql(scope: Scope, user_filter: str) -> str:
    """SELECT user_id, <scope columns>, <every counter> FROM the ledger's rows of this scope for `user_filter`."""
    keys = ", ".join(scope.keys)
    counters = ", ".join(f"{counter_sql(f)} AS {f}" for f in COUNTER_FIELDS)
    return (
        f"SELECT user_id, {keys}, {counters} FROM {_LEDGER} WHERE {user_filter} AND {scope.ledger_filter()} "
        f"GROUP BY user_id, {keys}"
    )


def _replace_sql(scope: Scope) -> tuple[str, str]:
    keys = ", ".join(scope.keys)
    counters = ", ".join(COUNTER_FIELDS)
    delete = f"DELETE FROM {scope.table} WHERE profile_id = ANY(%s)"
    insert = (
        f"INSERT INTO {scope.table} (profile_id, {keys}, {counters}, stats_updated_at) "
        f"SELECT user_id, {keys}, {counters}, %s FROM ({aggregate_sql(scope, 'user_id = ANY(%s)')}) AS agg "
        f"ORDER BY user_id, {keys}"
    )
    return delete, insert


_REPLACE_SQL = {scope.name: _replace_sql(scope) for scope in SCOPES}


def recompute_scoped(user_ids: Sequence[int]) -> None:
    """Set the users' per-game and per-season rows to the ledger's aggregates (rows with no event left go away).
    The caller holds the users' lifetime rows locked (stats.rows.lock_stats_rows)."""
    ids = sorted(set(user_ids))
    if not ids:
        return
    now = timezone.now()
    with connection.cursor() as cursor:
        for scope in SCOPES:
            delete, insert = _REPLACE_SQL[scope.name]
            cursor.execute(delete, [ids])
            cursor.execute(insert, [now, ids])
