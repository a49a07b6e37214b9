"""What the fold reads, set-based: the game's matches in rating order (from the source Match/Tournament rows) and
each match's outcome as the ledger counts it (match_won / match_lost net of their compensations).

The outcome comes from the ledger, not from Match.state: team entries are already resolved to the members at the
registration's created_at by the derivation rules, a dispute or a deletion is exactly the compensations it
appended, and every change the ratings must follow reaches the ledger (which is what triggers a replay).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from psycopg import adapters, sql
from psycopg.pq import Format

from activity.event_types import EventType as E
from activity.models import UserActivity
from esports.tournaments.models import Match, Tournament
from stats.ratings.fold import RatedMatch
from stats.ratings.rules import NO_MATCH_NUM, ROUND_RANK, OrderKey, Sides, rated_sides

MATCH_SOURCE = "tournaments.match"
OUTCOME_TYPES = (E.MATCH_WON, E.MATCH_LOST, E.MATCH_WON_REVERSED, E.MATCH_LOST_REVERSED)

_ROUND_CASE = sql.SQL("CASE m.round {} ELSE 0 END").format(
    sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.Literal(name), sql.Literal(rank)) for name, rank in ROUND_RANK.items()
    )
)
# The SQL twin of rules.order_key (same fallbacks); the text part in the "C" collation, as Python compares str.
KEY_COLUMNS_SQL = sql.SQL(
    'COALESCE(t.starts_at, m.completed_at, m.created_at) AS key_at, COALESCE(t.external_id, t.id::text) COLLATE "C" '
    "AS key_ext, {round_case} AS key_round, COALESCE(m.match_num, {no_num}) AS key_num, m.id AS match_id, "
    "COALESCE(m.completed_at, t.starts_at, m.created_at) AS at"
).format(round_case=_ROUND_CASE, no_num=sql.Literal(NO_MATCH_NUM))
KEY_COLS = sql.SQL("key_at, key_ext, key_round, key_num, match_id")
_MATCHES = sql.Identifier(Match._meta.db_table)
_TOURNAMENTS = sql.Identifier(Tournament._meta.db_table)
_LEDGER = sql.Identifier(UserActivity._meta.db_table)


_TIMESTAMPTZ_OID = adapters.types["timestamptz"].oid


def memoize_timestamps(cursor: Any) -> None:
    """Make this (Django) cursor parse each distinct timestamptz text once: a game's matches share few dates (their
    tournaments'), and parsing two per match was a fifth of a full replay. The loader memoized is the one Django set
    on the cursor (its time zone), so the values are the same objects it would build, only shared (immutable)."""
    raw = cursor.cursor
    base = raw.adapters.get_loader(_TIMESTAMPTZ_OID, Format.TEXT)
    seen: dict[bytes, Any] = {}

    class MemoTimestamptzLoader(base):  # type: ignore[misc, valid-type]
        def load(self, data: Any) -> Any:
            key = bytes(data)
            value = seen.get(key)
            if value is None:
                value = seen[key] = super().load(data)
            return value

    raw.adapters.register_loader(_TIMESTAMPTZ_OID, MemoTimestamptzLoader)


@dataclass(frozen=True, slots=True)
class Candidate:
    key: OrderKey
    at: datetime


def candidates_after(game: str, after: OrderKey | None) -> list[Candidate]:
    """Every match of the game positioned after `after` (all of them when None), in rating order: one query."""
    where: sql.Composable = sql.SQL("")
    since: sql.Composable = sql.SQL("")
    params: list[Any] = [game]
    if after is not None:
        # Redundant with the key comparison, and what makes a replay's tail cheap: a match after `after` is in a
        # tournament starting at or after it (or one without a start date), so only those tournaments' matches are
        # read (through the match's tournament index), not every match of the game. The replay reads its tail under
        # the game's row lock, which live recordings wait for.
        since = sql.SQL(" AND (t.starts_at IS NULL OR t.starts_at >= %s)")
        params.append(after[0])
        where = sql.SQL("WHERE ({}) > (%s, %s, %s, %s, %s)").format(KEY_COLS)
        params.extend(after)
    query = sql.SQL(
        "SELECT key_at, key_ext, key_round, key_num, match_id, at FROM ("
        "SELECT {cols} FROM {m} m JOIN {t} t ON t.id = m.tournament_id WHERE t.game = %s{since}) k {where} "
        "ORDER BY {key}"
    ).format(cols=KEY_COLUMNS_SQL, m=_MATCHES, t=_TOURNAMENTS, since=since, where=where, key=KEY_COLS)
    with connection.cursor() as cursor:
        memoize_timestamps(cursor)
        cursor.execute(query, params)
        return [Candidate((r[0], r[1], r[2], r[3], r[4]), r[5]) for r in cursor.fetchall()]


def outcomes(match_ids: Sequence[int]) -> dict[int, Sides]:
    """match id -> (winners, losers) as the ledger nets them and rules.rated_sides rates them; matches without both
    sides are left out (never completed, forfeits, fully compensated, one player on both sides)."""
    if not match_ids:
        return {}
    query = sql.SQL(
        "SELECT source_id, user_id, "
        "SUM(CASE event_type WHEN %s THEN 1 WHEN %s THEN -1 ELSE 0 END), "
        "SUM(CASE event_type WHEN %s THEN 1 WHEN %s THEN -1 ELSE 0 END) "
        "FROM {ledger} WHERE source_model = %s AND source_id = ANY(%s) AND event_type = ANY(%s) "
        "GROUP BY source_id, user_id"
    ).format(ledger=_LEDGER)
    params: list[Any] = [
        E.MATCH_WON.value,
        E.MATCH_WON_REVERSED.value,
        E.MATCH_LOST.value,
        E.MATCH_LOST_REVERSED.value,
        MATCH_SOURCE,
        list(match_ids),
        [t.value for t in OUTCOME_TYPES],
    ]
    winners: dict[int, list[int]] = defaultdict(list)
    losers: dict[int, list[int]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        for match_id, user_id, won, lost in cursor.fetchall():
            if won > 0:
                winners[match_id].append(user_id)
            if lost > 0:
                losers[match_id].append(user_id)
    decided = {m: rated_sides(winners[m], losers[m]) for m in winners if m in losers}
    return {m: sides for m, sides in decided.items() if sides is not None}


def rated_matches(candidates: Sequence[Candidate]) -> list[RatedMatch]:
    """The candidates that the ledger counts as decided, in the candidates' order (one query)."""
    decided = outcomes([c.key[4] for c in candidates])
    return [RatedMatch(c.key, c.at, *decided[c.key[4]]) for c in candidates if c.key[4] in decided]


_RATED_SQL = sql.SQL(
    "WITH k AS MATERIALIZED (SELECT * FROM (SELECT {cols} FROM {m} m JOIN {t} t ON t.id = m.tournament_id "
    "WHERE t.game = %s) c {where}), "
    "d AS (SELECT source_id, array_agg(user_id) FILTER (WHERE event_type = %s) AS w, "
    "array_agg(user_id) FILTER (WHERE event_type = %s) AS wr, array_agg(user_id) FILTER (WHERE event_type = %s) AS l, "
    "array_agg(user_id) FILTER (WHERE event_type = %s) AS lr FROM {ledger} "
    "WHERE source_model = %s AND event_type = ANY(%s) AND source_id IN (SELECT match_id FROM k) GROUP BY source_id) "
    "SELECT k.key_at, k.key_ext, k.key_round, k.key_num, k.match_id, k.at, d.w, d.wr, d.l, d.lr "
    "FROM k JOIN d ON d.source_id = k.match_id WHERE d.w IS NOT NULL AND d.l IS NOT NULL "
    "ORDER BY k.key_at, k.key_ext, k.key_round, k.key_num, k.match_id"
)


def _net(events: list[int], compensations: list[int] | None) -> tuple[int, ...]:
    """The users an outcome still counts for: each compensation cancels one event of its user."""
    if not compensations:
        return tuple(sorted(set(events)))
    left = Counter(events)
    left.subtract(compensations)
    return tuple(sorted(u for u, n in left.items() if n > 0))


# Past this many matches after the position, a partial replay reads like a full one (one statement, the outcome
# events hash-joined), not through the ledger's source index: a backfill's marks lie early in the game, and reading
# 100k+ matches' outcomes 5,000 at a time by index took 1.7 s+ per batch at 5M events, which a replay then repeated
# for every mark the backfill kept adding.
INDEXED_MAX = 20000


def rated_after(game: str, after: OrderKey | None, *, limit: int | None = None) -> list[RatedMatch]:
    """The game's matches after `after` (all when None) that the ledger counts as decided, in rating order, with
    their winners and losers. A short tail reads its outcomes through the ledger's source index; anything longer
    is one statement (the positions from the source rows, the outcome events from the ledger, one aggregation per
    match; compensations netted here)."""
    if after is not None:
        after_it = candidates_after(game, after)
        if len(after_it) <= INDEXED_MAX:
            rated: list[RatedMatch] = []
            for start in range(0, len(after_it), 5000):
                rated.extend(rated_matches(after_it[start : start + 5000]))
            return rated if limit is None else rated[:limit]
    where: sql.Composable = sql.SQL("")
    params: list[Any] = [game]
    if after is not None:
        where = sql.SQL("WHERE ({}) > (%s, %s, %s, %s, %s)").format(KEY_COLS)
        params.extend(after)
    params += [
        E.MATCH_WON.value,
        E.MATCH_WON_REVERSED.value,
        E.MATCH_LOST.value,
        E.MATCH_LOST_REVERSED.value,
        MATCH_SOURCE,
        [t.value for t in OUTCOME_TYPES],
    ]
    query = _RATED_SQL.format(cols=KEY_COLUMNS_SQL, m=_MATCHES, t=_TOURNAMENTS, where=where, ledger=_LEDGER)
    found: list[RatedMatch] = []
    with transaction.atomic(), connection.cursor() as cursor:
        # The whole game in one statement: the planner's row estimates of the outcome aggregation are far off (it
        # cannot know two events per match), so it JIT-compiled the statement for more than a second, and its sorts
        # spilled to disk at the default work_mem. Local to this read's transaction.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        memoize_timestamps(cursor)
        cursor.execute(query, params)
        rows = cursor.fetchall()
    for ka, ke, kr, kn, mi, at, w, wr, lo, lr in rows:
        sides = rated_sides(_net(w, wr), _net(lo, lr))
        if sides is not None:
            found.append(RatedMatch((ka, ke, kr, kn, mi), at, *sides))
            if limit is not None and len(found) >= limit:
                break
    return found


def last_position(game: str) -> OrderKey | None:
    """The position of the game's last match now (decided or not): a pass folds up to it, what comes later is the
    tail the pass's end folds under the game's lock."""
    # Only the matches of the latest tournament that has any (and those of tournaments without a start date,
    # positioned by their own dates) can be last: read under the game's row lock, this must not scan the whole game.
    query = sql.SQL(
        "SELECT key_at, key_ext, key_round, key_num, match_id FROM (SELECT {cols} FROM {m} m JOIN {t} t "
        "ON t.id = m.tournament_id WHERE t.game = %s AND (t.starts_at IS NULL OR t.starts_at >= "
        "(SELECT MAX(t2.starts_at) FROM {t} t2 WHERE t2.game = %s AND EXISTS "
        "(SELECT 1 FROM {m} m2 WHERE m2.tournament_id = t2.id)))) k "
        "ORDER BY key_at DESC, key_ext DESC, key_round DESC, key_num DESC, match_id DESC LIMIT 1"
    ).format(cols=KEY_COLUMNS_SQL, m=_MATCHES, t=_TOURNAMENTS)
    with connection.cursor() as cursor:
        cursor.execute(query, [game, game])
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1], row[2], row[3], row[4])
