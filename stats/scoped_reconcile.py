"""The reconciliation's ledger -> stats pass over the per-game and per-season rows.

For a set of users (stats.user_sets), one statement per scope returns every (user, game[, season]) whose row differs
from the ledger's GROUP BY: a counter differs, the ledger has events but there is no row, or a row remains with no
event behind it.
Like the lifetime comparison it is one statement, so it sees ledger and rows in one snapshot (every writer commits
the scoped rows in the transaction that changes the ledger), and takes no lock. Repair is the caller's: the users
found go through stats.recompute.recompute_stats, which rewrites lifetime and scoped rows under the locks.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from activity.models import UserActivity
from stats.counters import COUNTER_FIELDS, counter_sql, grouped_measure
from stats.scoped import SCOPES, Scope
from stats.user_sets import USER_SETS, UserSet

_LEDGER = UserActivity._meta.db_table
NO_ROW = "no_row"  # pseudo-field: the ledger has events of this scope, the projection no row
EXTRA_ROW = "extra_row"  # pseudo-field: a row with no event of its scope in the ledger

# user id -> field ("game_stats.matches_won", "season_stats.no_row"...) -> (stats value, ledger value)
ScopedDrift = dict[int, dict[str, tuple[object, object]]]


def comparison_sql(scope: Scope, kind: str) -> str:
    """Pre-grouped per (user, scope, event type) on the ledger's (user, game, season, event_type) partial index, then
    pivoted by the one mapping; full-joined with the rows of the range; only differing keys come back."""
    keys = ", ".join(scope.keys)
    pivot = ", ".join(f"{counter_sql(f, measure=grouped_measure(f))} AS {f}" for f in COUNTER_FIELDS)
    join = " AND ".join(["l.uid = s.uid", *(f"l.{k} = s.{k}" for k in scope.keys)])
    both = ", ".join(f"s.{f}, l.{f}" for f in COUNTER_FIELDS)
    where = USER_SETS[kind].where
    differs = " OR ".join(f"s.{f} <> l.{f}" for f in COUNTER_FIELDS)
    return f"""
WITH l AS (
    SELECT user_id AS uid, {keys}, {pivot} FROM (
        SELECT user_id, {keys}, event_type, COUNT(*) AS n, SUM(amount) AS amount_sum, COUNT(amount) AS amount_n
        FROM {_LEDGER}
        WHERE {where("user_id")} AND {scope.ledger_filter()} GROUP BY user_id, {keys}, event_type
    ) AS per_type GROUP BY user_id, {keys}
), s AS (
    SELECT profile_id AS uid, {keys}, {", ".join(COUNTER_FIELDS)} FROM {scope.table}
    WHERE {where("profile_id")}
)
SELECT COALESCE(l.uid, s.uid) AS uid, s.uid IS NULL AS no_row, l.uid IS NULL AS extra_row, {both}
FROM l FULL JOIN s ON {join}
WHERE s.uid IS NULL OR l.uid IS NULL OR {differs}
ORDER BY 1
"""


_COMPARISON_SQL = {(scope.name, kind): comparison_sql(scope, kind) for scope in SCOPES for kind in USER_SETS}


def scoped_drift(users: UserSet) -> ScopedDrift:
    """Users of the set with a per-game or per-season row that differs from the ledger, and how."""
    drift: ScopedDrift = {}
    with connection.cursor() as cursor:
        for scope in SCOPES:
            cursor.execute(_COMPARISON_SQL[scope.name, users.kind], users.params() * 2)
            for row in cursor.fetchall():
                _account(scope, row, drift.setdefault(row[0], {}))
    return drift


def _account(scope: Scope, row: Sequence, fields: dict[str, tuple[object, object]]) -> None:
    no_row, extra_row, values = bool(row[1]), bool(row[2]), row[3:]
    if no_row:  # the ledger has events of the scope, the projection no row: the whole row is the difference
        fields[f"{scope.name}.{NO_ROW}"] = (None, 1)
        return
    if extra_row:
        fields[f"{scope.name}.{EXTRA_ROW}"] = (1, None)
        return
    for i, name in enumerate(COUNTER_FIELDS):
        stats_value, ledger_value = int(values[2 * i]), int(values[2 * i + 1])  # SUM() comes back as a Decimal
        if stats_value != ledger_value:
            fields[f"{scope.name}.{name}"] = (stats_value, ledger_value)
