"""The rating-over-time curve of a player (issue 16 item 5, issue 17 item 2): per game, the rating after each rated
match in rating order, downsampled in SQL so a long career never comes into Python row by row.

The downsampling rule: a game with at most `max_points` rated matches keeps every one; a longer one keeps its first
match, the first match that reached the peak, and - splitting matches 1..n into `max_points - 2` equal buckets by
position - the last match of each (so the final rating is always the last point): at most `max_points` points.
Peak, first and last values come from the whole history in the same query (window aggregates), so the text never
depends on what was dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from psycopg import sql

from activity.privacy import ViewerRelation, require
from activity.selectors.match_history import MATCH_HISTORY_PRIVATE
from stats.ratings.models import RatingGame, RatingHistory

MAX_POINTS = 100

# One read per profile: its rows come through rating_history_profile (profile, game), at most a career of them;
# the window numbering and the bucket filter run in the database, only the kept points come back.
_CURVE_SQL = sql.SQL(
    "SELECT game, rn, n, at, after, first_after, peak FROM ("
    " SELECT *, min(rn) FILTER (WHERE after = peak) OVER g AS peak_rn FROM ("
    "  SELECT game, at, after,"
    "   row_number() OVER w AS rn,"
    "   count(*) OVER g AS n,"
    "   first_value(after) OVER w AS first_after,"
    "   max(after) OVER g AS peak"
    "  FROM {h} h WHERE profile_id = %(profile)s"
    # The game's published folds only (a running replay's draft is the next fold).
    "  AND (fold = COALESCE((SELECT g.fold FROM {g} g WHERE g.game = h.game), 0)"
    "   OR fold = (SELECT g.span_fold FROM {g} g WHERE g.game = h.game))"
    "  WINDOW g AS (PARTITION BY game),"
    "   w AS (PARTITION BY game ORDER BY key_at, key_ext, key_round, key_num, match_id)"
    " ) numbered WINDOW g AS (PARTITION BY game)"
    ") c WHERE n <= %(points)s OR rn = 1 OR rn = peak_rn OR rn = n"
    " OR (rn * (%(points)s - 2)) / n <> ((rn - 1) * (%(points)s - 2)) / n"
    " ORDER BY game, rn"
).format(h=sql.Identifier(RatingHistory._meta.db_table), g=sql.Identifier(RatingGame._meta.db_table))


@dataclass(frozen=True, slots=True)
class CurvePoint:
    position: int  # 1-based rated-match number in the game
    at: datetime
    rating: float


@dataclass(frozen=True, slots=True)
class RatingCurve:
    game: str
    matches_rated: int
    first: float  # rating after the first rated match
    last: float
    peak: float  # highest rating after any rated match (over the whole history; its first point is always kept)
    points: list[CurvePoint]


def rating_curves(relation: ViewerRelation, *, max_points: int = MAX_POINTS) -> list[RatingCurve]:
    """Every rated game of the player, by game name, each curve at most `max_points` points; hidden with the match
    history (raises like rating_history does)."""
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 3:
        raise ValueError(f"max_points must be an integer >= 3, got {max_points!r}.")
    require(relation.can_see_match_history, MATCH_HISTORY_PRIVATE)
    with connection.cursor() as cursor:
        cursor.execute(_CURVE_SQL, {"profile": relation.subject_id, "points": max_points})
        rows = cursor.fetchall()
    by_game: dict[str, list] = {}
    for row in rows:
        by_game.setdefault(row[0], []).append(row)
    return [
        RatingCurve(
            game=game,
            matches_rated=kept[0][2],
            first=kept[0][5],
            last=kept[-1][4],
            peak=kept[0][6],
            points=[CurvePoint(rn, at, after) for _g, rn, _n, at, after, _f, _p in kept],
        )
        for game, kept in by_game.items()
    ]
