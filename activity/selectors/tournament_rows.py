"""A player's tournament history as one row per tournament: the finish, the W-L in that event and its date.

Built from the ledger rows the viewer may see (activity.privacy), so the flags apply by themselves: with
`show_tournament_stats` off others get the tournaments with an official placement only, with `show_match_history`
off no W-L (the matches are not theirs to see).

The finish, in order of authority:
  1. the official placement: tournament_won "W", tournament_runner_up "F", a `tournament_placed` placement
     (1 W, 2 F, 3-4 SF, 5 QF, 9 R16, 17 R32, 33 R64, 65 R128), tournament_top4 "SF";
  2. else the furthest round the player played in the event (out in the QF: "QF"; a round-robin event left in the
     group stage: "RR"), which is also right when the last match was a walkover (no won/lost events to read), or
     "-" (no match: registered only).
Per match, outcomes are netted of compensations first (a flipped result counts as it stands now).

One SQL statement per page: the visible events grouped per match, then per tournament, joined to the tournament for
its date and season; keyset-paginated on (date, tournament id), newest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from activity.cursors import Page, Position, decode_cursor, encode_cursor, page_size
from activity.event_types import REVERSAL_OF
from activity.event_types import EventType as E
from activity.models import UserActivity
from activity.privacy import ViewerRelation, visible_events
from activity.rounds import ROUND_RANK
from activity.selectors.errors import InvalidQueryError
from activity.selectors.match_history import validate_game

DEFAULT_LIMIT = 20
PLACED = E.TOURNAMENT_PLACED
_PLACEMENT_FINISH = {1: "W", 2: "F", 3: "SF", 4: "SF", 5: "QF", 9: "R16", 17: "R32", 33: "R64", 65: "R128"}
_RANK_ROUND = {rank: name for name, rank in ROUND_RANK.items()}
_BASE_TYPES = (
    E.MATCH_PLAYED,
    E.MATCH_WON,
    E.MATCH_LOST,
    E.TOURNAMENT_REGISTERED,
    E.TOURNAMENT_JOINED,
    E.TOURNAMENT_COMPLETED,
    E.TOURNAMENT_WON,
    E.TOURNAMENT_RUNNER_UP,
    E.TOURNAMENT_TOP4,
)
_TYPES = sorted({*_BASE_TYPES, *(REVERSAL_OF[t] for t in _BASE_TYPES), PLACED, REVERSAL_OF[PLACED]})


class InvalidSeasonError(InvalidQueryError):
    code = "invalid_season"


@dataclass(frozen=True, slots=True)
class TournamentRow:
    tournament_id: int
    name: str
    game: str
    season: int | None
    date: datetime
    wins: int
    losses: int
    finish: str
    placement: int | None

    # paginate-compatible names
    @property
    def timestamp(self) -> datetime:
        return self.date

    @property
    def id(self) -> int:
        return self.tournament_id


def _net(kind: str) -> str:
    return f"SUM(CASE WHEN event_type = '{kind}' THEN 1 WHEN event_type = '{REVERSAL_OF[kind]}' THEN -1 ELSE 0 END)"


# Built once from constants (event type names and round ranks), never from input: the input goes in as parameters.
_ROUND_CASE = (
    "CASE (metadata ->> 'round') " + " ".join(f"WHEN '{n}' THEN {r}" for n, r in ROUND_RANK.items()) + " ELSE 0 END"
)
_SQL = f"""
WITH ev AS ({{base}}),
per_match AS (
    SELECT (metadata ->> 'tournament_id')::bigint AS tid, source_id,
           {_net(E.MATCH_PLAYED)} AS played, {_net(E.MATCH_WON)} AS won, {_net(E.MATCH_LOST)} AS lost,
           MAX({_ROUND_CASE}) AS rk
      FROM ev WHERE source_model = 'tournaments.match' GROUP BY 1, 2
),
per_tournament AS (
    SELECT (metadata ->> 'tournament_id')::bigint AS tid, MIN(timestamp) AS first_at,
           MAX(metadata ->> 'tournament') AS name, MAX(metadata ->> 'game') AS game,
           {_net(E.TOURNAMENT_WON)} AS titles, {_net(E.TOURNAMENT_RUNNER_UP)} AS finals,
           {_net(E.TOURNAMENT_TOP4)} AS top4
      FROM ev WHERE metadata ? 'tournament_id' GROUP BY 1
),
placed AS (
    -- The placement as it stands: a corrected one (9 -> 5) is netted of its compensation, value by value.
    SELECT tid, MIN(placement) AS placement FROM (
        SELECT (metadata ->> 'tournament_id')::bigint AS tid, (metadata ->> 'placement')::int AS placement,
               {_net(PLACED)} AS n
          FROM ev WHERE event_type IN ('{PLACED}', '{REVERSAL_OF[PLACED]}') GROUP BY 1, 2
    ) AS per_value WHERE n > 0 GROUP BY tid
),
rows AS (
    SELECT t.tid, t.name, t.game, tt.season, COALESCE(tt.starts_at, t.first_at) AS date, t.titles, t.finals, t.top4,
           p.placement,
           COUNT(*) FILTER (WHERE m.played > 0 AND m.won > 0) AS wins,
           COUNT(*) FILTER (WHERE m.played > 0 AND m.lost > 0) AS losses,
           MAX(m.rk) FILTER (WHERE m.played > 0) AS reached
      FROM per_tournament t
      LEFT JOIN per_match m ON m.tid = t.tid
      LEFT JOIN placed p ON p.tid = t.tid
      LEFT JOIN tournaments_tournament tt ON tt.id = t.tid
     GROUP BY t.tid, t.name, t.game, tt.season, tt.starts_at, t.first_at, t.titles, t.finals, t.top4, p.placement
)
SELECT tid, name, game, season, date, titles, finals, top4, placement, wins, losses, reached
  FROM rows
 WHERE (%s::int IS NULL OR season = %s::int)
   AND (%s::timestamptz IS NULL OR (date, tid) < (%s::timestamptz, %s::bigint))
   AND (titles > 0 OR finals > 0 OR top4 > 0 OR placement IS NOT NULL OR reached IS NOT NULL OR %s)
 ORDER BY date DESC, tid DESC
 LIMIT %s
"""


def finish_of(titles: int, finals: int, top4: int, placement: int | None, reached: int | None) -> str:
    if titles > 0 or placement == 1:
        return "W"
    if finals > 0 or placement == 2:
        return "F"
    if placement is not None and placement in _PLACEMENT_FINISH:
        return _PLACEMENT_FINISH[placement]
    if top4 > 0:
        return "SF"
    if reached:
        return _RANK_ROUND.get(reached, "-")
    return "-"


def validate_season(season) -> int | None:
    if season in (None, ""):
        return None
    try:
        value = int(season)
    except (TypeError, ValueError):
        raise InvalidSeasonError("season must be a year, e.g. 2023.") from None
    if not 1900 <= value <= 2999:
        raise InvalidSeasonError("season must be a year between 1900 and 2999.")
    return value


def tournament_rows(
    relation: ViewerRelation,
    *,
    cursor: str | None = None,
    limit: int | None = None,
    game: str | None = None,
    season: int | str | None = None,
) -> Page:
    """One page of tournaments (default 20, at most 50), newest first; raises InvalidCursorError,
    InvalidPageSizeError, InvalidGameError, InvalidSeasonError."""
    size = page_size(limit, DEFAULT_LIMIT)
    game = validate_game(game)
    season_value = validate_season(season)
    scope = f"tournament-rows:{relation.subject_id}:{game or ''}:{season_value or ''}"
    position = decode_cursor(cursor, scope)
    base = UserActivity.objects.filter(visible_events(relation), event_type__in=_TYPES)
    if game is not None:
        base = base.filter(metadata__game=game)
    base_sql, base_params = base.values(
        "event_type", "source_model", "source_id", "timestamp", "metadata"
    ).query.sql_with_params()
    at = position.timestamp if position else None
    after_id = position.id if position else None
    # A tournament the player only registered for is a row too (with "-") when participation is visible.
    params = [
        *base_params,
        season_value,
        season_value,
        at,
        at,
        after_id,
        relation.can_see_tournament_participation,
        size + 1,
    ]
    with connection.cursor() as cur:
        cur.execute(_SQL.replace("{base}", base_sql), params)
        fetched = cur.fetchall()
    rows = [
        TournamentRow(
            tournament_id=tid,
            name=name or "Tournament",
            game=game_name or "",
            season=season_of,
            date=date,
            wins=wins,
            losses=losses,
            finish=finish_of(titles, finals, top4, placement, reached),
            placement=placement,
        )
        for (
            tid,
            name,
            game_name,
            season_of,
            date,
            titles,
            finals,
            top4,
            placement,
            wins,
            losses,
            reached,
        ) in fetched
    ]
    items = rows[:size]
    next_cursor = encode_cursor(Position(items[-1].date, items[-1].tournament_id), scope) if len(rows) > size else None
    return Page(items, next_cursor)
