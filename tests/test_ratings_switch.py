"""Readers never see a half-replayed game (issue 17): a replay folds into a draft and switches it in with one
transaction, so a reader sampling on its own connection while the replay's chunks commit sees only the whole
previous fold or the whole new one; a live match recorded during the replay shows at once (on the previous fold)
and ends folded into the new one."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection
from django.db.models import Q, Subquery

from esports.tournaments.models import Registration
from stats.ratings import source
from stats.ratings.models import PlayerRating, RatingDraftRating, RatingGame, RatingHistory, RatingReplayMark
from stats.ratings.replay import request_replay, run_replay
from stats.ratings.selectors import rating_leaderboard
from tests.conftest import wait_until
from tests.factories import UserFactory, complete_match
from tests.ledger_helpers import record
from tests.private_services import subprocess_database_url
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
            games = RatingGame.objects.filter(game="chess")
            published = Q(fold=Subquery(games.values("fold")[:1])) | Q(fold=Subquery(games.values("span_fold")[:1]))
            rows = frozenset(
                RatingHistory.objects.filter(published, game="chess").values_list(
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


def test_a_full_replays_switch_publishes_the_rows_it_drafted_without_copying_them():
    users = [UserFactory() for _ in range(6)]
    matches = history(6, users)
    settle()
    flip(matches[0])
    request_replay("chess")  # from the start: a full replay
    drafted: set[int] = set()

    def note_draft(_result) -> None:
        drafted.update(RatingHistory.objects.filter(fold=1).values_list("id", flat=True))

    run_replay("chess", chunk_size=4, on_chunk=note_draft)
    game = RatingGame.objects.get(game="chess")
    assert game.status == RatingGame.Status.IDLE and game.fold == 1
    published = set(RatingHistory.objects.values_list("id", flat=True))
    # The very rows the chunks wrote are the published ones (a copying switch would have inserted new rows, under
    # the game's lock), and nothing of the replaced fold is left.
    assert drafted and published == drafted
    assert not RatingHistory.objects.exclude(fold=1).exists()
    assert_close(stored("chess"), solo_fold("chess"))


def _lock_waiters() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return [pid for (pid,) in cursor.fetchall()]


def test_a_live_match_is_published_while_a_replay_chunk_is_stuck_writing_its_draft():
    users = [UserFactory() for _ in range(6)]
    history(12, users)
    settle()
    live_cup = tournament(starts_at=JAN + timedelta(days=365), external_id="LIVE")
    live = entries(live_cup, users[:2])
    request_replay("chess")
    # An uncommitted draft row of the 23rd match (the next fold's) makes the replay's fifth chunk of five wait on the
    # unique index in the middle of its write, as a slow write would.
    held = source.candidates_after("chess", None)[22]
    winners, _ = source.outcomes([held.key[4]])[held.key[4]]
    blocker = psycopg.connect(subprocess_database_url().replace("postgres://", "postgresql://"), autocommit=False)
    blocker.execute(
        f"INSERT INTO {RatingHistory._meta.db_table} (profile_id, game, key_at, key_ext, key_round, key_num, "
        "match_id, at, before, after, fold) VALUES (%s, 'chess', %s, %s, %s, %s, %s, %s, 0, 0, 1)",
        [winners[0], *held.key, held.at],
    )
    errors: list[BaseException] = []

    def replay() -> None:
        try:
            run_replay("chess", chunk_size=5)
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=replay)
    thread.start()
    try:
        wait_until(_lock_waiters, timeout=60, interval=0.05, message="the replay's chunk to block mid-write")
        assert RatingGame.objects.get(game="chess").status == RatingGame.Status.RUNNING
        with connection.cursor() as cursor:
            # The live update must not wait for the stuck chunk: it would if the chunk held the game's row.
            cursor.execute("SET lock_timeout = '2s'")
        try:
            match = play(live_cup, live[0], live[1], round="F")
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        # Published at once, while the chunk is still stuck (had the live update waited for the chunk's lock, it
        # would have returned only once the chunk's statement gave up).
        assert RatingHistory.objects.filter(match_id=match.pk, fold=0).count() == 2
        assert thread.is_alive() and _lock_waiters(), "the live update waited for the replay's chunk"
    finally:
        blocker.rollback()
        blocker.close()
        thread.join()
    assert not errors, errors
    settle()
    assert RatingGame.objects.get(game="chess").status == RatingGame.Status.IDLE
    assert_close(stored("chess"), solo_fold("chess"))  # the live match refolded on the replayed ratings
