"""Readers never see a half-replayed game (issue 17): a replay folds into a draft and switches it in with one
transaction, so a reader sampling on its own connection while the replay's chunks commit sees only the whole
previous fold or the whole new one; a live match recorded during the replay shows at once (on the previous fold)
and ends folded into the new one."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Subquery

from esports.tournaments.models import Registration
from stats.ratings.models import PlayerRating, RatingDraftRating, RatingGame, RatingHistory, RatingReplayMark
from stats.ratings.replay import run_replay
from stats.ratings.selectors import rating_leaderboard
from tests.factories import UserFactory, complete_match
from tests.ledger_helpers import record
from tests.ratings_support import assert_close, entries, play, settle, solo_fold, stored, tournament

pytestmark = pytest.mark.django_db(transaction=True)

JAN = datetime(2024, 1, 1, tzinfo=UTC)


def history(days: int, users: list) -> list:
    matches = []
    for day in range(days):
        t = tournament(starts_at=JAN + timedelta(days=day), external_id=f"T{day:02}")
        e = entries(t, users)
        for i, rnd in enumerate(["R16", "QF", "SF", "F"]):
            matches.append(play(t, e[(day + i) % 6], e[(day + 2 * i + 1) % 6], round=rnd))
    return matches


def flip(match) -> None:
    match.refresh_from_db()
    complete_match(match, Registration.objects.get(pk=match.loser_id))
    record(match)


def view() -> tuple:
    """What the readers read, in one snapshot: every rating row, every history row, the board."""
    with connection.cursor() as cursor:
        cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        try:
            ratings = frozenset(
                PlayerRating.objects.filter(game="chess").values_list(
                    "profile_id", "rating", "peak", "peak_at", "matches_rated"
                )
            )
            # The published fold's rows, as every reader reads them (a running replay drafts the next fold).
            fold = Subquery(RatingGame.objects.filter(game="chess").values("fold")[:1])
            rows = frozenset(
                RatingHistory.objects.filter(game="chess", fold=fold).values_list(
                    "profile_id", "match_id", "before", "after"
                )
            )
            board = tuple(rating_leaderboard("chess"))
        finally:
            cursor.execute("COMMIT")
    return ratings, rows, board


def test_a_reader_sampling_during_a_replay_sees_only_the_whole_previous_or_the_whole_new_fold():
    users = [UserFactory() for _ in range(6)]
    matches = history(12, users)
    settle()
    before = view()
    flip(matches[1])  # an old result overturned: every rating after it changes
    assert RatingReplayMark.objects.exists()

    samples: list[tuple] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                samples.append(view())
            samples.append(view())
        finally:
            connection.close()

    def slow_chunk(_result) -> None:
        time.sleep(0.05)  # widens the window between chunks, where a partial replay would be visible

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        result = run_replay("chess", chunk_size=4, on_chunk=slow_chunk)
    finally:
        done.set()
        thread.join()
    after = view()

    assert result.chunks >= 10 and RatingGame.objects.get(game="chess").status == RatingGame.Status.IDLE
    assert_close(stored("chess"), solo_fold("chess"))
    assert before != after
    partial = [s for s in samples if s not in (before, after)]
    assert not partial, f"{len(partial)} of {len(samples)} samples saw a half-replayed game"
    assert samples.count(before) > result.chunks  # the reader sampled all along the replay, then the new fold
    assert samples[-1] == after
    # The draft is emptied after the switch: no history row outside the published fold, no draft state.
    assert not RatingHistory.objects.exclude(fold=RatingGame.objects.get(game="chess").fold).exists()
    assert not RatingDraftRating.objects.exists()


def test_a_live_match_during_a_replay_shows_at_once_and_ends_folded_into_the_new_fold():
    users = [UserFactory() for _ in range(6)]
    matches = history(6, users)
    settle()
    live_cup = tournament(starts_at=JAN + timedelta(days=365), external_id="LIVE")
    live = entries(live_cup, users[:2])
    flip(matches[0])
    seen: list[tuple[float, float] | None] = []

    def live_match(result) -> None:
        if result.chunks == 2:
            match = play(live_cup, live[0], live[1], round="F")
            # Published on the previous fold in the recording itself, while the replay is still running.
            assert RatingGame.objects.get(game="chess").status == RatingGame.Status.RUNNING
            seen.append(
                RatingHistory.objects.filter(match_id=match.pk, profile_id=users[0].pk).values_list("before", "after")[
                    0
                ]
            )

    run_replay("chess", chunk_size=4, on_chunk=live_match)
    assert len(seen) == 1 and seen[0][1] > seen[0][0]
    assert RatingGame.objects.get(game="chess").status == RatingGame.Status.IDLE
    settle()
    assert not RatingReplayMark.objects.exists()
    assert_close(stored("chess"), solo_fold("chess"))  # the live match folded again on the corrected ratings
    assert RatingHistory.objects.filter(match_id__in=live_cup.matches.values("id")).count() == 2
