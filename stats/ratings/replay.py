"""Replay: refold one game's ratings from a position on, exactly as if the history had always been so.

Serialised per game by a session advisory lock (a second replayer of the same game returns at once); chunked, one
transaction per chunk, each holding the game's RatingGame row lock only for that chunk (the live update waits at
most one chunk); resumable: RatingGame keeps the base (the last published match the replay keeps) and the cursor
(the last match folded), and every committed chunk leaves the draft exact up to the cursor, so a replay killed at
any point continues from the stored cursor after a restart, with nothing redone or lost.

Readers never see a half-replayed game: the chunks fold into the draft (stats.ratings.store), and the replay ends
in one transaction that folds the last short tail into the draft and switches it in (store.publish). Live matches
recorded meanwhile are folded into the published rows at once (readers see them on the previous fold) and leave a
mark, so the replay folds them into the draft too before the switch.
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

# Matches per chunk (one transaction, one commit of the draft and the cursor). A chunk no longer holds the game's
# row while it works, so the size only trades resumability against per-chunk costs (each chunk upserts the draft
# state of every player it met).
CHUNK_SIZE = 20000
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
        store.merge_span(game)  # an earlier partial replay's span, should its replayer have died before merging it
        row = RatingGame.objects.filter(game=game).first()
        if row is None or row.status == RatingGame.Status.IDLE:
            # What an earlier replay left after its switch (should it have died before clearing it), dropped outside
            # the game's lock: only a replayer, serialised by the advisory lock held here, writes a draft.
            store.clear_draft(game, 0 if row is None else row.fold)
        while (horizon := _begin(game, started, result)) is not None:
            result.ran = True
            _run_chunks(game, chunk_size, result, on_chunk, horizon)
            # Loop: a mark that arrived meanwhile (a correction behind the cursor, a match added after the list was
            # read) starts another pass before the game goes back to IDLE.
        if result.ran:
            # The switched draft states and the fold a full replay replaced are garbage now; dropped outside the
            # switch, which they would only lengthen (the next replay's start drops them too, should this process
            # die first).
            store.merge_span(game)
            store.clear_draft(game, RatingGame.objects.values_list("fold", flat=True).get(game=game))
            result.seconds = time.monotonic() - started
            metrics.RATING_REPLAY_SECONDS.observe(result.seconds)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [_LOCK_SPACE, game])
    return result


def _lock_game(game: str) -> RatingGame:
    RatingGame.objects.get_or_create(game=game)
    return RatingGame.objects.select_for_update().get(game=game)


def _key(row: RatingGame, prefix: str, match_field: str) -> OrderKey | None:
    if getattr(row, match_field) is None:
        return None
    at, ext, rnd, num = (getattr(row, f"{prefix}{part}") for part in ("at", "ext", "round", "num"))
    return (at, ext, rnd, num, getattr(row, match_field))


def _set_key(row: RatingGame, prefix: str, match_field: str, key: OrderKey | None) -> None:
    values = key or (None, None, None, None, None)
    for part, value in zip(("at", "ext", "round", "num"), values[:4], strict=True):
        setattr(row, f"{prefix}{part}", value)
    setattr(row, match_field, values[4])


def _cursor(row: RatingGame) -> OrderKey | None:
    return _key(row, "cur_", "cur_match_id")


def _base(row: RatingGame) -> OrderKey | None:
    return _key(row, "base_", "base_match_id")


@transaction.atomic
def _begin(game: str, started: float, result: ReplayResult) -> OrderKey | None:
    """Take the marks; start a replay (IDLE), or rewind the draft to the earliest mark it does not reflect at or
    before the cursor (RUNNING). The position the next pass folds up to (the game's last match now, read under the
    lock: a live match recorded during the pass lies after it and goes to the tail instead of leaving a mark inside
    the pass), or None when done.

    The last pass ends here, under the game's row lock: a short tail (what live recordings added after the cursor
    during the pass) is folded into the draft and the draft is switched in, in this transaction, so no live update
    slips in between, readers go from the previous fold to the new one at its commit, and a replay under steady live
    traffic terminates instead of chasing it pass after pass."""
    row = _lock_game(game)
    marks = store.take_marks(game)
    if row.status == RatingGame.Status.IDLE:
        # Marks whose match the history already holds with its current position and outcome are dropped: a live
        # match recorded while a replay switched may leave one.
        marks = reflected.unanswered(game, marks, fold=row.fold)
        if not marks:
            return None
        row.status, row.replay_started_at, row.replay_chunks = RatingGame.Status.RUNNING, timezone.now(), 0
        position = min(marks)
        base = None if position <= KEY_MIN else store.last_history_key(game, fold=row.fold, before=position)
        _set_key(row, "base_", "base_match_id", base)
        _set_key(row, "cur_", "cur_match_id", base)
        row.save()
        return source.last_position(game) or KEY_MIN
    cursor, base = _cursor(row), _base(row)
    # Marks after the cursor are matches the next pass or the tail reads anyway. Those at or before it rewind,
    # unless the draft (after the base) or the kept published history (up to it) already holds them as they are.
    behind = [m for m in marks if cursor is not None and m <= cursor]
    in_draft = [m for m in behind if base is None or m > base]
    behind = reflected.unanswered(game, in_draft, fold=row.fold + 1) + reflected.unanswered(
        game, [m for m in behind if m not in in_draft], fold=row.fold
    )
    if behind:
        _rewind(row, min(behind))
        row.save()
        return source.last_position(game) or KEY_MIN
    # Counted on the positions alone (no outcome read under the lock): a long tail is the next pass's work.
    after_cursor = source.candidates_after(game, cursor)
    if len(after_cursor) > TAIL_MAX:
        row.save()
        return source.last_position(game) or KEY_MIN
    tail = source.rated_matches(after_cursor)
    result.ran = True
    if tail:
        _fold_chunk(row, tail, {})
        result.matches += len(tail)
    switching = time.monotonic()
    row.fold, row.span_fold = store.publish(game, base, row.fold)
    # IDLE: the published history ends at the cursor; a live update must come after it.
    _set_key(row, "key_", "match_id", _cursor(row))
    _set_key(row, "base_", "base_match_id", None)
    _set_key(row, "cur_", "cur_match_id", None)
    row.status, row.last_replay_seconds = RatingGame.Status.IDLE, time.monotonic() - started
    row.last_switch_seconds = time.monotonic() - switching
    metrics.RATING_SWITCH_SECONDS.observe(row.last_switch_seconds)
    row.save()
    return None


def _fold_chunk(row: RatingGame, part: list[RatedMatch], states: dict[int, PlayerState]) -> None:
    """Fold `part` onto `states` (completed from the draft, then from the published history up to the base), write
    its draft history and states, move the cursor. In the caller's transaction, which holds the game's row lock."""
    unseen = {u for m in part for u in (*m.winners, *m.losers)} - states.keys()
    drafted = store.load_states(row.game, unseen, draft=True)
    states.update(drafted)
    states.update(store.states_at_base(row.game, unseen - drafted.keys(), _base(row), row.fold))
    history = []
    for match in part:
        history.extend(fold_match(states, match))
    store.insert_draft_history(row.game, history, row.fold)
    store.upsert_draft_ratings(row.game, states, (h.profile_id for h in history))
    _set_key(row, "cur_", "cur_match_id", part[-1].key)
    row.replay_chunks += 1


def _rewind(row: RatingGame, position: OrderKey) -> None:
    """Move the replay back to fold again from `position`: within the draft when it lies after the base; otherwise
    the draft starts over from the published history's last match before it."""
    base = _base(row)
    if base is None or position > base:
        store.cut_draft(row.game, position, base, row.fold)
        # The draft holds nothing at or after `position` now: bounded by it, the read is a short window's.
        cursor = store.last_history_key(row.game, fold=row.fold + 1, before=position)
        _set_key(row, "cur_", "cur_match_id", cursor or base)
        return
    store.clear_draft(row.game, row.fold)
    base = None if position <= KEY_MIN else store.last_history_key(row.game, fold=row.fold, before=position)
    _set_key(row, "base_", "base_match_id", base)
    _set_key(row, "cur_", "cur_match_id", base)


def _run_chunks(
    game: str,
    chunk_size: int,
    result: ReplayResult,
    on_chunk: Callable[[ReplayResult], None] | None,
    horizon: OrderKey,
) -> None:
    """One pass: the rated matches after the cursor read once (outcomes included), folded into the draft chunk by
    chunk. An outcome changed meanwhile leaves a mark at or before the pass's last match, which rewinds the next
    pass."""
    row = RatingGame.objects.get(game=game)
    rated = [m for m in source.rated_after(game, _cursor(row)) if m.key <= horizon]
    states: dict[int, PlayerState] = {}  # exact as of the cursor: only this replayer writes the draft
    for start in range(0, len(rated), chunk_size):
        part = rated[start : start + chunk_size]
        with transaction.atomic():
            # The chunk's draft is written before the game's row is touched: the live update waits on that row, so
            # the chunk locks it only with its last statement, the cursor's move, committed with the draft (a kill
            # leaves both or neither). Unlocked read: only this replayer (advisory lock) changes the replay's fields.
            row = RatingGame.objects.get(game=game)
            _fold_chunk(row, part, states)
            RatingGame.objects.filter(game=game).update(
                cur_at=row.cur_at,
                cur_ext=row.cur_ext,
                cur_round=row.cur_round,
                cur_num=row.cur_num,
                cur_match_id=row.cur_match_id,
                replay_chunks=row.replay_chunks,
                updated_at=timezone.now(),
            )
        result.matches += len(part)
        result.chunks += 1
        if on_chunk is not None:
            on_chunk(result)
