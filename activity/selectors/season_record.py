"""A player's record per season, for the charts: matches won and lost (net of corrections, per match) and titles and
finals (net official placements), grouped by the tournament's season. Aggregate counters: public like the profile
card's (DESIGN §7), so no visibility filter applies; the list of the matches behind them stays private per flag.

One statement over the player's match and placement rows (the (user, event_type) index) joined to the tournaments.
Until the per-season projection (stats.UserSeasonStats, issue 15) is on main this reads the ledger directly.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from activity.event_types import REVERSAL_OF
from activity.event_types import EventType as E

_TYPES = (E.MATCH_WON, E.MATCH_LOST, E.TOURNAMENT_WON, E.TOURNAMENT_RUNNER_UP)


def _net(kind: str) -> str:
    # Event type names are constants of this codebase, not input.
    return f"SUM(CASE WHEN event_type = '{kind}' THEN 1 WHEN event_type = '{REVERSAL_OF[kind]}' THEN -1 ELSE 0 END)"


_SQL = f"""
WITH per_source AS (
    SELECT (metadata ->> 'tournament_id')::bigint AS tid, source_model, source_id,
           {_net(E.MATCH_WON)} AS won, {_net(E.MATCH_LOST)} AS lost,
           {_net(E.TOURNAMENT_WON)} AS titles, {_net(E.TOURNAMENT_RUNNER_UP)} AS runner_up
      FROM activity_useractivity
     WHERE user_id = %s AND event_type = ANY(%s) AND metadata ? 'tournament_id'
     GROUP BY 1, 2, 3
)
SELECT t.season,
       COUNT(*) FILTER (WHERE p.won > 0) AS wins,
       COUNT(*) FILTER (WHERE p.lost > 0) AS losses,
       COUNT(*) FILTER (WHERE p.titles > 0) AS titles,
       COUNT(*) FILTER (WHERE p.runner_up > 0) AS runner_up
  FROM per_source p JOIN tournaments_tournament t ON t.id = p.tid
 WHERE t.season IS NOT NULL
 GROUP BY t.season
 ORDER BY t.season
"""


@dataclass(frozen=True, slots=True)
class SeasonRecord:
    season: int
    wins: int
    losses: int
    titles: int
    runner_up: int

    @property
    def played(self) -> int:
        return self.wins + self.losses  # completed matches (walkovers are neither)

    @property
    def finals(self) -> int:
        """Finals reached: won or lost."""
        return self.titles + self.runner_up


def season_record(user_id: int) -> list[SeasonRecord]:
    types = sorted({*_TYPES, *(REVERSAL_OF[t] for t in _TYPES)})
    with connection.cursor() as cur:
        cur.execute(_SQL, [user_id, types])
        return [SeasonRecord(*row) for row in cur.fetchall()]
