"""Incremental apply of the per-game and per-season rows, in the recording transaction, after the lifetime rows.

Called by stats.apply.apply_inserted_events once it holds the touched users' lifetime rows locked (user-id order):
every writer of a user's scoped rows (this, the recompute) holds that user's lifetime row lock first, so scoped
writers of one user are serialised by it and cannot deadlock on the scoped rows. Still, rows are written in key order.
"""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.utils import timezone

from activity.sql_arrays import int_array, text_array
from stats.counters import COUNTER_FIELDS, Tallies, deltas_of, regrouped
from stats.scoped import SCOPES, Scope


def upsert_sql(scope: Scope) -> tuple[str, str]:
    """(create, add) for any number of (user, scope) keys: create the missing rows at zero, then add the deltas.

    Not one INSERT .. ON CONFLICT DO UPDATE: PostgreSQL checks the proposed row's CHECK constraints before it finds
    the conflict, so a compensation's negative delta to an existing row would fail the non-negative checks. And not
    one statement either: an UPDATE does not see the rows a CTE of its own statement inserted."""
    keys = ", ".join(scope.keys)
    v_keys = ", ".join(f"v.{k}" for k in scope.keys)
    key_arrays = ", ".join(["%s::bigint[]", *[f"%s::{t}[]" for t in scope.key_types]])
    counters = ", ".join(COUNTER_FIELDS)
    create = (
        f"INSERT INTO {scope.table} (profile_id, {keys}, {counters}) "
        f"SELECT v.uid, {v_keys}, {', '.join(['0'] * len(COUNTER_FIELDS))} FROM unnest({key_arrays}) AS v(uid, {keys}) "
        f"ORDER BY v.uid, {v_keys} ON CONFLICT (profile_id, {keys}) DO NOTHING"
    )
    adds = ", ".join(f"{f} = s.{f} + v.{f}" for f in COUNTER_FIELDS)
    match = " AND ".join(["s.profile_id = v.uid", *(f"s.{k} = v.{k}" for k in scope.keys)])
    add = (
        f"UPDATE {scope.table} AS s SET {adds}, stats_updated_at = %s "
        f"FROM unnest({key_arrays}, {', '.join(['%s::bigint[]'] * len(COUNTER_FIELDS))}) AS v(uid, {keys}, {counters}) "
        f"WHERE {match}"
    )
    return create, add


_UPSERT_SQL = {scope.name: upsert_sql(scope) for scope in SCOPES}


def _combined(statements: list[str]) -> str:
    """Several data-modifying statements as one (all but the last as CTEs): one round trip for every scope."""
    *first, last = statements
    if not first:
        return last
    return "WITH " + ", ".join(f"s{i} AS ({sql})" for i, sql in enumerate(first)) + " " + last


def apply_scoped_events(tallies: Tallies[tuple[int, str | None, int | None]]) -> None:
    """Deltas per (user, game[, season]), regrouped from the inserted events' tallies per (user, game, season,
    type), then two set-based statements for every scope together: create the missing rows, add the deltas. The
    caller holds the lifetime rows of every touched user (stats.rows.lock_stats_rows)."""
    now = timezone.now()
    creates: list[str] = []
    adds: list[str] = []
    create_params: list[Any] = []
    add_params: list[Any] = []
    for scope in SCOPES:
        deltas = deltas_of(regrouped(tallies, scope.key_of))
        if not deltas:
            continue
        keys = sorted(deltas)
        key_columns = [int_array([k[0] for k in keys])] + [
            (text_array if sql_type == "varchar" else int_array)([k[i] for k in keys])
            for i, sql_type in enumerate(scope.key_types, start=1)
        ]
        create, add = _UPSERT_SQL[scope.name]
        creates.append(create)
        adds.append(add)
        create_params += key_columns
        add_params += [now, *key_columns, *(int_array([deltas[k][f] for k in keys]) for f in COUNTER_FIELDS)]
    if not creates:
        return
    with connection.cursor() as cursor:
        cursor.execute(_combined(creates), create_params)
        cursor.execute(_combined(adds), add_params)
