"""The live path: a projector called in the transaction that inserted ledger events (registered in StatsConfig).

A newly decided match that sorts after everything its game has published is folded right here, O(1): its players'
rating rows locked (profile order), one history insert, one upsert - also while the game is being replayed (the
replay works on a draft; readers see the live match on the previous fold until the switch), when it also leaves a
mark so the replay folds the match into its draft. Anything else - a compensation, more events for an already rated
match, a match sorting before the last published one, a deleted match, a big batch (backfill) - only appends a
replay mark (no lock) for the maintenance task.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from psycopg import sql

from activity.event_types import REVERSED_BASE
from activity.event_types import EventType as E
from activity.models import UserActivity
from activity.native_timestamps import load_timestamps_natively
from activity.projection import InsertedEvent, is_history
from activity.sql_arrays import int_array
from dispatch.names import TaskName
from dispatch.publish import publish_on_commit
from esports.tournaments.models import Match, Tournament
from monitoring import metrics
from stats.ratings import source, store
from stats.ratings.fold import RatedMatch, fold_match
from stats.ratings.models import RatingGame, RatingHistory
from stats.ratings.rules import OrderKey, rated_sides

# Above this many matches in one recording (all its games together), mark instead of folding: a backfill chunk is
# ordered by id, not by rating order, and must not serialise on the game's row. A live drain of the batch enqueue
# mode records up to 500 rows (tasks.batching.DRAIN_BATCH_SIZE) and, behind a backlog, does: such a batch of new
# latest matches is folded, not left to the minutely replay job (a minute of rating lag just when the worker is
# catching up).
LIVE_BATCH_MAX = 500
OUTCOME_TYPES = frozenset(t.value for t in source.OUTCOME_TYPES)
_REVERSALS = [t for t in OUTCOME_TYPES if t in REVERSED_BASE]


@dataclass(frozen=True, slots=True)
class Touched:
    match_id: int
    game: str
    key: OrderKey | None  # None: the match row is gone
    at: datetime | None
    reversed: bool  # this recording compensated an outcome
    rated_key: OrderKey | None  # the position the match holds in the history, if rated before
    winners: tuple[int, ...]  # as the ledger nets them now and rules.rated_sides rates them (empty: rates nobody)
    losers: tuple[int, ...]


def on_events_inserted(events: Sequence[InsertedEvent]) -> None:
    outcomes = [e for e in events if e.event_type in OUTCOME_TYPES]
    if not outcomes:
        return
    if is_history() or len({e.source_id for e in outcomes}) > LIVE_BATCH_MAX:
        _mark_bulk(outcomes)
        return
    by_game: dict[str, list[Touched]] = defaultdict(list)
    for t in _touched([e.id for e in outcomes]):
        by_game[t.game].append(t)
    for game in sorted(by_game):
        _handle(game, by_game[game])


def _mark_bulk(outcomes: list[InsertedEvent]) -> None:
    """A recording of history (a backfill chunk or a reconciliation's repair, whatever its size: the last chunk of
    a backfill lane can be small) or of more than LIVE_BATCH_MAX matches only marks each game it touched, once,
    before its earliest match there: found from the matches' positions alone (one query), without netting every
    match's outcome in the ledger as _touched does, which cost a backfill chunk more than its insert. No replay is
    published: the minutely job takes the marks, so a backfill does not start replays on its own workers (at 5M
    events, a lane's small last chunk of matches published one, and both lanes stalled behind full replays)."""
    matches = sorted({e.source_id for e in outcomes if e.source_id is not None})
    earliest: dict[str, OrderKey] = {}
    with connection.cursor() as cursor:
        load_timestamps_natively(cursor)  # a position per match: tens of thousands of timestamps per chunk
        cursor.execute(_POSITIONS_SQL, [int_array(matches)])
        for match_id, game, ka, ke, kr, kn, ha, he, hr, hn, hm in cursor.fetchall():
            if game is None:
                continue  # deleted before it was ever rated: nothing to undo
            keys = [k for k in ((ka, ke, kr, kn, match_id), (ha, he, hr, hn, hm)) if k[0] is not None and k[4]]
            if keys:
                first = min(keys)
                earliest[game] = min(first, earliest.get(game, first))
    for game in sorted(earliest):
        ka, ke, kr, kn, _ = earliest[game]
        store.add_marks(game, [(ka, ke, kr, kn, 0)])  # match id 0: no match's mark, never dropped as answered
    metrics.RATING_LIVE_UPDATES.labels(path="marked").inc(len(matches))


def _handle(game: str, touched: list[Touched]) -> None:
    if any(t.key is None or t.reversed or t.rated_key for t in touched):
        _mark(game, touched)
        return
    first = min(t.key for t in touched if t.key is not None)
    status, last, fold = _lock_game(game)
    if last is not None and first <= last:
        _mark(game, touched)
        return
    rated = sorted(
        (RatedMatch(t.key, t.at, t.winners, t.losers) for t in touched if t.key and t.at and t.winners and t.losers),
        key=lambda m: m.key,
    )
    if not rated:
        return
    players = {u for m in rated for u in (*m.winners, *m.losers)}
    states = store.load_states(game, players, lock=True)
    history = []
    for match in rated:
        history.extend(fold_match(states, match))
    store.write_live(game, history, states, rated[-1].key, fold)
    metrics.RATING_LIVE_UPDATES.labels(path="live").inc(len(rated))
    if status != RatingGame.Status.IDLE:
        # The replay's pass may have read these matches before their outcome was recorded: the marks make it fold
        # them into its draft (its tail, or a short rewind of the draft) before it switches. No task: the replay
        # running takes them, or the minutely job resumes it.
        store.add_marks(game, [m.key for m in rated])


def _mark(game: str, touched: list[Touched]) -> None:
    """A live correction: one mark per match, at the earlier of its position now and in the history (a replay may
    drop a mark its history already answers, stats.ratings.reflected, so a mark must speak for its own match only),
    and a replay now."""
    store.add_marks(game, [min(k for k in (t.key, t.rated_key) if k is not None) for t in touched])
    metrics.RATING_LIVE_UPDATES.labels(path="marked").inc(len(touched))
    publish_on_commit(TaskName.REPLAY_RATINGS, recovery="the minutely replay job takes the marks")


_LOCK_GAME_SQL = sql.SQL(
    "INSERT INTO {g} (game, status, replay_chunks, fold, updated_at) VALUES (%s, %s, 0, 0, now()) "
    "ON CONFLICT (game) DO UPDATE SET game = EXCLUDED.game "
    "RETURNING status, key_at, key_ext, key_round, key_num, match_id, fold"
).format(g=sql.Identifier(RatingGame._meta.db_table))


def _lock_game(game: str) -> tuple[str, OrderKey | None, int]:
    """The game's state row, created if missing and locked (ON CONFLICT DO UPDATE locks it), in one statement:
    its status, last published position and published fold."""
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_GAME_SQL, [game, RatingGame.Status.IDLE.value])
        status, ka, ke, kr, kn, mi, fold = cursor.fetchone()
    return status, None if mi is None else (ka, ke, kr, kn, mi), fold


# A match's published history position: the rows of its game's published folds (RatingGame.fold, and span_fold while
# a partial replay's span is not merged), never a running replay's draft. Shared by both position reads below.
_PUBLISHED_POSITION = sql.SQL(
    "SELECT h.game, h.key_at, h.key_ext, h.key_round, h.key_num, h.match_id FROM {h} h "
    "JOIN {g} g ON g.game = h.game AND (h.fold = g.fold OR h.fold = g.span_fold)"
).format(h=sql.Identifier(RatingHistory._meta.db_table), g=sql.Identifier(RatingGame._meta.db_table))


_TOUCHED_SQL = sql.SQL(
    "WITH s AS (SELECT source_id, bool_or(event_type = ANY(%s)) AS rev FROM {ledger} "
    "WHERE id = ANY(%s) AND source_model = %s GROUP BY source_id), "
    "o AS (SELECT source_id, user_id, SUM(CASE event_type WHEN %s THEN 1 WHEN %s THEN -1 ELSE 0 END) AS won, "
    "SUM(CASE event_type WHEN %s THEN 1 WHEN %s THEN -1 ELSE 0 END) AS lost FROM {ledger} "
    "WHERE source_model = %s AND source_id IN (SELECT source_id FROM s) AND event_type = ANY(%s) "
    "GROUP BY source_id, user_id) "
    "SELECT s.source_id, s.rev, COALESCE(k.game, h.game), k.key_at, k.key_ext, k.key_round, k.key_num, k.at, "
    "h.key_at, h.key_ext, h.key_round, h.key_num, h.match_id, "
    "ARRAY(SELECT user_id FROM o WHERE o.source_id = s.source_id AND won > 0 ORDER BY user_id), "
    "ARRAY(SELECT user_id FROM o WHERE o.source_id = s.source_id AND lost > 0 ORDER BY user_id) FROM s "
    "LEFT JOIN LATERAL (SELECT t.game, {cols} FROM {m} m JOIN {t} t ON t.id = m.tournament_id "
    "WHERE m.id = s.source_id) k ON true "
    "LEFT JOIN LATERAL ({published} WHERE h.match_id = s.source_id LIMIT 1) h ON true"
).format(
    ledger=sql.Identifier(UserActivity._meta.db_table),
    cols=source.KEY_COLUMNS_SQL,
    m=sql.Identifier(Match._meta.db_table),
    t=sql.Identifier(Tournament._meta.db_table),
    published=_PUBLISHED_POSITION,
)


_POSITIONS_SQL = sql.SQL(
    "SELECT x.id, COALESCE(k.game, h.game), k.key_at, k.key_ext, k.key_round, k.key_num, "
    "h.key_at, h.key_ext, h.key_round, h.key_num, h.match_id FROM unnest(%s::bigint[]) AS x(id) "
    "LEFT JOIN LATERAL (SELECT t.game, {cols} FROM {m} m JOIN {t} t ON t.id = m.tournament_id "
    "WHERE m.id = x.id) k ON true "
    "LEFT JOIN LATERAL ({published} WHERE h.match_id = x.id LIMIT 1) h ON true"
).format(
    cols=source.KEY_COLUMNS_SQL,
    m=sql.Identifier(Match._meta.db_table),
    t=sql.Identifier(Tournament._meta.db_table),
    published=_PUBLISHED_POSITION,
)


def _touched(event_ids: list[int]) -> list[Touched]:
    """The matches of these outcome events, with their game, position, prior history and the ledger's net outcome:
    one query."""
    params: list[Any] = [
        _REVERSALS,
        event_ids,
        source.MATCH_SOURCE,
        E.MATCH_WON.value,
        E.MATCH_WON_REVERSED.value,
        E.MATCH_LOST.value,
        E.MATCH_LOST_REVERSED.value,
        source.MATCH_SOURCE,
        sorted(OUTCOME_TYPES),
    ]
    with connection.cursor() as cursor:
        cursor.execute(_TOUCHED_SQL, params)
        rows = cursor.fetchall()
    found = []
    for match_id, rev, game, ka, ke, kr, kn, at, ha, he, hr, hn, hm, winners, losers in rows:
        if game is None:
            continue  # deleted before it was ever rated: nothing to undo
        key = None if ka is None else (ka, ke, kr, kn, match_id)
        rated_key = None if hm is None else (ha, he, hr, hn, hm)
        sides = rated_sides(winners, losers) or ((), ())  # as every path rates a match (rules.rated_sides)
        found.append(Touched(match_id, game, key, at, bool(rev), rated_key, *sides))
    return found
