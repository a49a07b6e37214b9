"""Replay: refold one game's ratings from a position on, exactly as if the history had always been so.

Serialised per game by a session advisory lock (a second replayer of the same game returns at once); chunked, one
transaction per chunk, each holding the game's RatingGame row lock only for that chunk (the live update waits at
most one chunk); resumable: RatingGame keeps the cursor (the last match folded), and every committed chunk leaves
RatingHistory and PlayerRating exact up to it, so a replay killed at any point continues from the stored cursor
after a restart, with nothing redone or lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from monitoring import metrics
from stats.ratings import reflected, source, store
from stats.ratings.fold import PlayerState, RatedMatch, fold_match
from stats.ratings.models import RatingGame
from stats.ratings.rules import KEY_MIN, OrderKey

CHUNK_SIZE = 5000
# A pass ends by folding what is left after the cursor under the game's lock when it is at most this many matches.
TAIL_MAX = 500
_LOCK_SPACE = 1717  # advisory lock space of rating replays (pg_advisory_lock(space, hashtext(game)))


@dataclass
class ReplayResult:
    game: str
    ran: bool = False  # False: nothing to replay, or another process is replaying this game
    matches: int = 0  # rated matches folded
    chunks: int = 0
    seconds: float = 0.0


def request_replay(game: str, position: OrderKey = KEY_MIN) -> None:
    """Ask for a replay of `game` from `position` (the start by default); run_replay carries it out."""
    store.add_marks(game, [position])


def run_replay(
    game: str, *, chunk_size: int = CHUNK_SIZE, on_chunk: Callable[[ReplayResult], None] | None = None
) -> ReplayResult:
    """Carry out the game's pending replay (marks, or a RUNNING state left by a killed replayer) to the end."""
    result = ReplayResult(game)
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", [_LOCK_SPACE, game])
        (locked,) = cursor.fetchone()
    if not locked:
        return result
    try:
        while (horizon := _begin(game, started, result)) is not None:
            result.ran = True
            _run_chunks(game, chunk_size, result, on_chunk, horizon)
            # Loop: a mark that arrived meanwhile (a correction behind the cursor, a match added after the list was
            # read) starts another pass before the game goes back to IDLE.
        if result.ran:
            result.seconds = time.monotonic() - started
            metrics.RATING_REPLAY_SECONDS.observe(result.seconds)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [_LOCK_SPACE, game])
    return result


def _lock_game(game: str) -> RatingGame:
    RatingGame.objects.get_or_create(game=game)
    return RatingGame.objects.select_for_update().get(game=game)


def _cursor(row: RatingGame) -> OrderKey | None:
    if row.match_id is None:
        return None
    return (row.key_at, row.key_ext, row.key_round, row.key_num, row.match_id)  # type: ignore[return-value]


def _set_cursor(row: RatingGame, key: OrderKey | None) -> None:
    row.key_at, row.key_ext, row.key_round, row.key_num, row.match_id = key or (None, None, None, None, None)


@transaction.atomic
def _begin(game: str, started: float, result: ReplayResult) -> OrderKey | None:
    """Take the marks; rewind to the earliest one when it lies at or before the cursor. The position the next pass
    folds up to (the game's last match now, read under the lock: a live match recorded during the pass lies after
    it and goes to the tail instead of leaving a mark inside the pass), or None when done.

    The last pass ends here, under the game's row lock: a short tail (what live recordings added after the cursor
    during the pass) is folded in this transaction and the game goes IDLE in it, so no live update slips in between
    and a replay under steady live traffic terminates instead of chasing it pass after pass."""
    row = _lock_game(game)
    # Marks whose match the history already holds with its current position and outcome are dropped: a live match
    # recorded while this pass started is read and folded by it, and its mark must not rewind the next pass.
    marks = reflected.unanswered(game, store.take_marks(game))
    mark = min(marks) if marks else None
    if row.status == RatingGame.Status.IDLE:
        if mark is None:
            return None
        row.status, row.replay_started_at, row.replay_chunks = RatingGame.Status.RUNNING, timezone.now(), 0
        _rewind(row, mark)
        row.save()
        return source.last_position(game) or KEY_MIN
    cursor = _cursor(row)
    if mark is not None and (cursor is None or mark <= cursor):
        _rewind(row, mark)
        row.save()
        return source.last_position(game) or KEY_MIN
    tail = source.rated_after(game, cursor)  # marks after the cursor are matches not folded yet: in the tail
    if len(tail) > TAIL_MAX:
        row.save()
        return source.last_position(game) or KEY_MIN
    result.ran = True
    if tail:
        _fold_chunk(row, tail, {})
        result.matches += len(tail)
    # Done. IDLE: the cursor now means "the last match folded"; a live update must come after it.
    row.status, row.last_replay_seconds = RatingGame.Status.IDLE, time.monotonic() - started
    row.save()
    return None


def _fold_chunk(row: RatingGame, part: list[RatedMatch], states: dict[int, PlayerState]) -> None:
    """Fold `part` onto `states` (completed from the stored rows first), write its history and players, move the
    cursor. In the caller's transaction, which holds the game's row lock."""
    unseen = {u for m in part for u in (*m.winners, *m.losers)} - states.keys()
    states.update(store.load_states(row.game, unseen))
    history = []
    for match in part:
        history.extend(fold_match(states, match))
    store.insert_history(row.game, history)
    store.upsert_ratings(row.game, states, (h.profile_id for h in history))
    _set_cursor(row, part[-1].key)
    row.replay_chunks += 1


def _rewind(row: RatingGame, position: OrderKey) -> None:
    if position <= KEY_MIN:
        store.clear_game(row.game)
    else:
        store.cut_history(row.game, position)
    _set_cursor(row, store.last_history_key(row.game))


def _run_chunks(
    game: str,
    chunk_size: int,
    result: ReplayResult,
    on_chunk: Callable[[ReplayResult], None] | None,
    horizon: OrderKey,
) -> None:
    """One pass: the rated matches after the cursor read once (outcomes included), folded chunk by chunk. An
    outcome changed meanwhile leaves a mark at or before the pass's last match, which rewinds the next pass."""
    row = RatingGame.objects.get(game=game)
    rated = [m for m in source.rated_after(game, _cursor(row)) if m.key <= horizon]
    states: dict[int, PlayerState] = {}  # exact as of the cursor: only this replayer writes ratings while RUNNING
    for start in range(0, len(rated), chunk_size):
        part = rated[start : start + chunk_size]
        with transaction.atomic():
            row = _lock_game(game)
            _fold_chunk(row, part, states)
            row.save()
        result.matches += len(part)
        result.chunks += 1
        if on_chunk is not None:
            on_chunk(result)
