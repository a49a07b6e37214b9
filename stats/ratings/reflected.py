"""Which replay marks the history already answers, so a replay under live traffic does not rewind for them.

A live recording that waits on the game's row lock while a pass starts has its Match row committed already: the
pass reads its outcome and folds it, yet the mark it leaves lies at or before the cursor and would rewind the next
pass, whose start another recording waits on, and so on forever. A mark is answered only when its match sits in the
history at exactly the mark's position, that position is still the match's, and the history's winners and losers of
it are the ledger's now; anything else (a moved, deleted or corrected match, a date mark of recompute_ratings, a
backfill's mark) keeps it, so dropping one never leaves the history short of a change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from psycopg import sql

from esports.tournaments.models import Match, Tournament
from stats.ratings import source
from stats.ratings.models import RatingHistory
from stats.ratings.rules import OrderKey

# Above this many marks, rewind to the earliest without checking (a backfill's marks): keeping a mark is always exact.
CHECK_MAX = 500

_HISTORY_SQL_TEMPLATE = sql.SQL(
    "SELECT match_id, key_at, key_ext, key_round, key_num, "
    "COALESCE(array_agg(profile_id ORDER BY profile_id) FILTER (WHERE after > before), '{{}}'), "
    "COALESCE(array_agg(profile_id ORDER BY profile_id) FILTER (WHERE after < before), '{{}}'), "
    "bool_or(after = before) FROM {h} WHERE game = %s AND fold = %s AND match_id = ANY(%s) "
    "GROUP BY match_id, key_at, key_ext, key_round, key_num"
)
_HISTORY_SQL = _HISTORY_SQL_TEMPLATE.format(h=sql.Identifier(RatingHistory._meta.db_table))
_POSITIONS_SQL = sql.SQL(
    "SELECT key_at, key_ext, key_round, key_num, match_id FROM (SELECT {cols} FROM {m} m JOIN {t} t "
    "ON t.id = m.tournament_id WHERE t.game = %s AND m.id = ANY(%s)) k"
).format(
    cols=source.KEY_COLUMNS_SQL,
    m=sql.Identifier(Match._meta.db_table),
    t=sql.Identifier(Tournament._meta.db_table),
)


def unanswered(game: str, marks: Sequence[OrderKey], *, fold: int) -> list[OrderKey]:
    """The marks the history of `fold` (the published fold, or the running replay's draft: published + 1) does not
    already reflect (all of them when there are more than CHECK_MAX): three set-based reads, whatever the number of
    marks."""
    if not marks or len(marks) > CHECK_MAX:
        return list(marks)
    ids = sorted({m[4] for m in marks})
    with connection.cursor() as cursor:
        cursor.execute(_HISTORY_SQL, [game, fold, ids])
        # A match with a row of unchanged rating (a delta lost to float rounding) tells no side: never answered.
        history: dict[int, tuple[OrderKey, Any, Any]] = {
            mid: ((ka, ke, kr, kn, mid), tuple(w), tuple(lo))
            for mid, ka, ke, kr, kn, w, lo, flat in cursor.fetchall()
            if not flat
        }
        cursor.execute(_POSITIONS_SQL, [game, list(history)])
        now = {r[4]: (r[0], r[1], r[2], r[3], r[4]) for r in cursor.fetchall()}
    decided = source.outcomes(list(now))
    answered = {
        key
        for mid, (key, winners, losers) in history.items()
        if now.get(mid) == key and decided.get(mid) == (winners, losers)
    }
    return [m for m in marks if m not in answered]
