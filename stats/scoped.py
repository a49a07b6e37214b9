"""The per-game and per-season scopes of the projection: which rows, which key columns, which events count in them.

One description per scope, read by the incremental apply (stats.scoped_apply), the recompute
(stats.scoped_recompute) and the reconciliation (stats.scoped_reconcile); what each event adds comes from the one
mapping, stats.counters.EFFECTS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stats.scoped_models import UserGameStats, UserSeasonStats


@dataclass(frozen=True, slots=True)
class Scope:
    name: str  # as reported by the reconciliation (game_stats.<counter>)
    table: str
    keys: tuple[str, ...]  # the ledger's (and the row's) scope columns after the user: ("game",) or ("game", "season")
    key_types: tuple[str, ...]  # their SQL array types, for unnest()

    def key_of(self, scoped: tuple[int, str | None, int | None]) -> tuple[Any, ...] | None:
        """(user_id, *scope columns) of an event, given its (user_id, game, season), or None when the event does not
        count in this scope."""
        values = tuple(scoped[1 + SCOPE_COLUMNS.index(k)] for k in self.keys)
        if any(v is None for v in values):
            return None
        return (scoped[0], *values)

    def ledger_filter(self, alias: str = "") -> str:
        """The ledger rows that count in this scope."""
        prefix = f"{alias}." if alias else ""
        return " AND ".join(f"{prefix}{k} IS NOT NULL" for k in self.keys)


# The ledger's scope columns, in the order stats.scoped_apply tallies an event's (user_id, game, season).
SCOPE_COLUMNS = ("game", "season")
GAME = Scope("game_stats", UserGameStats._meta.db_table, ("game",), ("varchar",))
SEASON = Scope("season_stats", UserSeasonStats._meta.db_table, ("game", "season"), ("varchar", "smallint"))
SCOPES: tuple[Scope, ...] = (GAME, SEASON)
assert all(k in SCOPE_COLUMNS for scope in SCOPES for k in scope.keys)
