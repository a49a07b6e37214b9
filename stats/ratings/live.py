"""The live path: a projector called in the transaction that inserted ledger events (registered in StatsConfig).

A newly decided match that sorts after everything its game has rated is folded right here, O(1): its players'
rating rows locked (profile order), one history insert, one upsert. Anything else - a compensation, more events for
an already rated match, a match sorting before the last rated one, a deleted match, a big batch (backfill), or a
game being replayed - only appends a replay mark (no lock) for the maintenance task.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from psycopg import sql

from activity.event_types import REVERSED_BASE
from activity.models import UserActivity
from activity.projection import InsertedEvent
from dispatch.names import TaskName
from dispatch.publish import publish_on_commit
from esports.tournaments.models import Match, Tournament
from monitoring import metrics
from stats.ratings import source, store
from stats.ratings.fold import RatedMatch, fold_match
from stats.ratings.models import RatingGame, RatingHistory
from stats.ratings.rules import OrderKey

# Above this many decided matches of one game in one recording, mark instead of folding: a backfill chunk is
# ordered by id, not by rating order, and must not serialise on the game's row.
LIVE_BATCH_MAX = 20
OUTCOME_TYPES = frozenset(t.value for t in source.OUTCOME_TYPES)
_REVERSALS = [t for t in OUTCOME_TYPES if t in REVERSED_BASE]


@dataclass(frozen=True, slots=True)
class Touched:
    match_id: int
    game: str
    key: OrderKey | None  # None: the match row is gone
    at: datetime | None
    reversed: bool  # this recording compensated an outcome
    rated_key: OrderKey | None  # the earliest position the match holds in the history, if rated before


def on_events_inserted(events: Sequence[InsertedEvent]) -> None:
    ids = [e.id for e in events if e.event_type in OUTCOME_TYPES]
    if not ids:
        return
    by_game: dict[str, list[Touched]] = defaultdict(list)
    for t in _touched(ids):
        by_game[t.game].append(t)
    for game in sorted(by_game):
        _handle(game, by_game[game])


def _handle(game: str, touched: list[Touched]) -> None:
    if len(touched) > LIVE_BATCH_MAX or any(t.key is None or t.reversed or t.rated_key for t in touched):
        _mark(game, touched)
        return
    new = sorted(touched, key=lambda t: t.key)  # type: ignore[arg-type, return-value]
    RatingGame.objects.get_or_create(game=game)
    row = RatingGame.objects.select_for_update().get(game=game)
    last = None if row.match_id is None else (row.key_at, row.key_ext, row.key_round, row.key_num, row.match_id)
    if row.status != RatingGame.Status.IDLE or (last is not None and new[0].key <= last):  # type: ignore[operator]
        _mark(game, touched)
        return
    decided = source.outcomes([t.match_id for t in new])
    rated = [RatedMatch(t.key, t.at, *decided[t.match_id]) for t in new if t.match_id in decided]  # type: ignore[arg-type]
    if not rated:
        return
    players = {u for m in rated for u in (*m.winners, *m.losers)}
    states = store.load_states(game, players, lock=True)
    history = []
    for match in rated:
        history.extend(fold_match(states, match))
    store.insert_history(game, history)
    store.upsert_ratings(game, states, players)
    row.key_at, row.key_ext, row.key_round, row.key_num, row.match_id = rated[-1].key
    row.save(update_fields=["key_at", "key_ext", "key_round", "key_num", "match_id", "updated_at"])
    metrics.RATING_LIVE_UPDATES.labels(path="live").inc(len(rated))


def _mark(game: str, touched: list[Touched]) -> None:
    positions = [k for t in touched for k in (t.key, t.rated_key) if k is not None]
    store.add_marks(game, [min(positions)])
    metrics.RATING_LIVE_UPDATES.labels(path="marked").inc(len(touched))
    if len(touched) <= LIVE_BATCH_MAX:
        # A live correction: replay now. A big batch (a backfill chunk) leaves it to the minutely job, so a backfill
        # does not start a replay per chunk.
        publish_on_commit(TaskName.REPLAY_RATINGS, recovery="the minutely replay job takes the marks")


_TOUCHED_SQL = sql.SQL(
    "WITH s AS (SELECT source_id, bool_or(event_type = ANY(%s)) AS rev FROM {ledger} "
    "WHERE id = ANY(%s) AND source_model = %s GROUP BY source_id) "
    "SELECT s.source_id, s.rev, COALESCE(k.game, h.game), k.key_at, k.key_ext, k.key_round, k.key_num, k.at, "
    "h.key_at, h.key_ext, h.key_round, h.key_num, h.match_id FROM s "
    "LEFT JOIN LATERAL (SELECT t.game, {cols} FROM {m} m JOIN {t} t ON t.id = m.tournament_id "
    "WHERE m.id = s.source_id) k ON true "
    "LEFT JOIN LATERAL (SELECT game, key_at, key_ext, key_round, key_num, match_id FROM {h} "
    "WHERE match_id = s.source_id LIMIT 1) h ON true"
).format(
    ledger=sql.Identifier(UserActivity._meta.db_table),
    cols=source.KEY_COLUMNS_SQL,
    m=sql.Identifier(Match._meta.db_table),
    t=sql.Identifier(Tournament._meta.db_table),
    h=sql.Identifier(RatingHistory._meta.db_table),
)


def _touched(event_ids: list[int]) -> list[Touched]:
    """The matches of these outcome events, with their game, position and prior history: one query."""
    with connection.cursor() as cursor:
        cursor.execute(_TOUCHED_SQL, [_REVERSALS, event_ids, source.MATCH_SOURCE])
        rows = cursor.fetchall()
    found = []
    for match_id, rev, game, ka, ke, kr, kn, at, ha, he, hr, hn, hm in rows:
        if game is None:
            continue  # deleted before it was ever rated: nothing to undo
        key = None if ka is None else (ka, ke, kr, kn, match_id)
        rated_key = None if hm is None else (ha, he, hr, hn, hm)
        found.append(Touched(match_id, game, key, at, bool(rev), rated_key))
    return found
