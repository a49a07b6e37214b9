"""Incremental apply: move the counters by exactly the events an append really inserted, in its transaction."""
from __future__ import annotations

from collections.abc import Sequence

from django.db import connection
from django.utils import timezone

from activity.projection import InsertedEvent
from stats.counters import COUNTER_FIELDS, deltas_by_user
from stats.models import UserProfileStats
from stats.rows import lock_stats_rows

_TABLE = UserProfileStats._meta.db_table
_SET = ", ".join(f"{f} = {_TABLE}.{f} + v.{f}" for f in COUNTER_FIELDS)
_LAST = (f"last_activity_at = CASE WHEN {_TABLE}.last_activity_at IS NULL OR v.last_at > {_TABLE}.last_activity_at "
         f"THEN v.last_at ELSE {_TABLE}.last_activity_at END")
_PG_UPDATE = (
    f"UPDATE {_TABLE} SET {_SET}, {_LAST}, stats_updated_at = %s "
    f"FROM unnest(%s::bigint[], {', '.join(['%s::bigint[]'] * len(COUNTER_FIELDS))}, %s::timestamptz[]) "
    f"AS v(uid, {', '.join(COUNTER_FIELDS)}, last_at) WHERE {_TABLE}.profile_id = v.uid"
)


def apply_inserted_events(events: Sequence[InsertedEvent]) -> None:
    """One set-based UPDATE for all touched users (deltas aggregated per user first), rows locked in user-id order."""
    deltas = deltas_by_user(events)
    if not deltas:
        return
    last_at: dict[int, object] = {}
    for e in events:
        if e.user_id not in last_at or e.timestamp > last_at[e.user_id]:
            last_at[e.user_id] = e.timestamp
    user_ids = sorted(deltas)
    lock_stats_rows(user_ids)
    now = timezone.now()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            params = [now, user_ids] + [[deltas[u][f] for u in user_ids] for f in COUNTER_FIELDS] + [[last_at[u] for u in user_ids]]
            cursor.execute(_PG_UPDATE, params)
        else:
            ops = connection.ops
            for start in range(0, len(user_ids), 400):
                chunk = user_ids[start:start + 400]
                row = "(" + ", ".join(["%s"] * (len(COUNTER_FIELDS) + 2)) + ")"
                params: list = []
                for u in chunk:
                    params += [u, *(deltas[u][f] for f in COUNTER_FIELDS), ops.adapt_datetimefield_value(last_at[u])]
                cursor.execute(
                    f"WITH v(uid, {', '.join(COUNTER_FIELDS)}, last_at) AS (VALUES {', '.join([row] * len(chunk))}) "
                    f"UPDATE {_TABLE} SET {_SET}, {_LAST}, stats_updated_at = %s FROM v WHERE {_TABLE}.profile_id = v.uid",
                    params + [ops.adapt_datetimefield_value(now)],
                )
