"""Incremental apply: move the counters by exactly the events an append really inserted, in its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import Any

from django.db import connection
from django.utils import timezone

from activity.phases import phase
from activity.projection import InsertedEvent
from activity.sql_arrays import int_array, timestamp_array
from stats.counters import COUNTER_FIELDS, deltas_of, regrouped, tally_by
from stats.models import UserProfileStats
from stats.rows import lock_stats_rows
from stats.scoped_apply import apply_scoped_events

_TABLE = UserProfileStats._meta.db_table
_SET = ", ".join(f"{f} = {_TABLE}.{f} + v.{f}" for f in COUNTER_FIELDS)
_LAST = (
    f"last_activity_at = CASE WHEN {_TABLE}.last_activity_at IS NULL OR v.last_at > {_TABLE}.last_activity_at "
    f"THEN v.last_at ELSE {_TABLE}.last_activity_at END"
)
_UPDATE_SQL = (
    f"UPDATE {_TABLE} SET {_SET}, {_LAST}, stats_updated_at = %s "
    f"FROM unnest(%s::bigint[], {', '.join(['%s::bigint[]'] * len(COUNTER_FIELDS))}, %s::timestamptz[]) "
    f"AS v(uid, {', '.join(COUNTER_FIELDS)}, last_at) WHERE {_TABLE}.profile_id = v.uid"
)


def apply_inserted_events(events: Sequence[InsertedEvent]) -> None:
    """One set-based UPDATE for all touched users (deltas aggregated per user first), rows locked in user-id order;
    then the per-game and per-season rows. One pass over the events serves both: they are tallied per (user, game,
    season, type) and each projection's deltas are regrouped from the tallies."""
    if not events:
        return
    tallies = tally_by(events, _scoped_key)
    deltas = deltas_of(regrouped(tallies, _user_of))
    last_at: dict[int, datetime] = {}
    for e in events:
        if e.user_id not in last_at or e.timestamp > last_at[e.user_id]:
            last_at[e.user_id] = e.timestamp
    user_ids = sorted(deltas)
    lock_stats_rows(user_ids)
    now = timezone.now()
    params: list[Any] = [
        now,
        int_array(user_ids),
        *(int_array([deltas[u][f] for u in user_ids]) for f in COUNTER_FIELDS),
        timestamp_array([last_at[u] for u in user_ids]),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_UPDATE_SQL, params)
    # The per-game / per-season rows, under the lifetime rows' locks just taken (stats.scoped_apply).
    with phase("stats.scoped_apply.apply_scoped_events"):
        apply_scoped_events(tallies)


_scoped_key = attrgetter("user_id", "game", "season")
_user_of = itemgetter(0)
