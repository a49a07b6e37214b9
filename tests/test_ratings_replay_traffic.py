"""A replay under live traffic ends (issue 17): a mark whose match the pass already folded with the outcome the
ledger has now does not rewind the next pass; a mark whose match changed since still does."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from esports.tournaments.models import Registration
from stats.ratings import replay, source
from stats.ratings.models import RatingGame, RatingReplayMark
from stats.ratings.replay import request_replay, run_replay
from tests.conftest import wait_until
from tests.factories import UserFactory, complete_match
from tests.ledger_helpers import record
from tests.ratings_support import assert_close, entries, play, settle, solo_fold, stored, tournament

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


@pytest.mark.django_db
def test_a_match_flipped_and_flipped_back_during_every_pass_does_not_rewind_it():
    users = [UserFactory() for _ in range(6)]
    first = history(3, users)[0]
    request_replay("chess")
    calls = []

    def flip_twice(_result) -> None:  # the pass read `first` before: its two marks leave the outcome it folded
        calls.append(1)
        if len(calls) <= 20:  # bounded: a replay that rewinds for them pass after pass fails here, not hangs
            flip(first)
            flip(first)

    run_replay("chess", chunk_size=4, on_chunk=flip_twice)
    assert len(calls) == 3  # one pass of three chunks, no rewind
    assert not RatingReplayMark.objects.exists()
    assert RatingGame.objects.get(game="chess").status == RatingGame.Status.IDLE
    assert_close(stored("chess"), solo_fold("chess"))


@pytest.mark.django_db
def test_a_match_changed_during_the_pass_is_still_replayed():
    users = [UserFactory() for _ in range(6)]
    matches = history(3, users)
    request_replay("chess")
    calls = []

    def change(_result) -> None:
        calls.append(1)
        if len(calls) == 1:
            flip(matches[0])  # folded with its old outcome: the mark must rewind
        elif len(calls) == 2:
            flip(matches[1])  # flipped three times: the outcome differs from the folded one
            flip(matches[1])
            flip(matches[1])
        elif len(calls) == 3:
            matches[2].tournament.starts_at = JAN - timedelta(days=1)  # moved: same outcome, another position
            matches[2].tournament.save()
            flip(matches[2])
            flip(matches[2])

    result = run_replay("chess", chunk_size=4, on_chunk=change)
    assert result.chunks > 3  # rewound
    settle()
    assert not RatingReplayMark.objects.exists()
    assert_close(stored("chess"), solo_fold("chess"))


def lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def soon(predicate) -> None:
    try:
        wait_until(predicate, timeout=2.0, interval=0.005)
    except AssertionError:
        pass  # only widens the window; the test's assertions decide


@pytest.mark.django_db(transaction=True)
def test_a_replay_while_new_latest_matches_are_recorded_in_a_loop_ends_and_is_exact(monkeypatch):
    users = [UserFactory() for _ in range(6)]
    history(12, users)
    live_cup = tournament(starts_at=JAN + timedelta(days=365), external_id="LIVE")
    live_entries = entries(live_cup, users)
    budget = 150  # live matches the traffic records at most
    stop = threading.Event()
    recorded = []

    def traffic() -> None:
        # As a worker does: the Match row committed first, its outcome events in a later transaction, which the
        # projector runs in and which waits on the game's row lock while a replay pass starts.
        try:
            while not stop.is_set() and len(recorded) < budget:
                n = len(recorded)
                play(live_cup, live_entries[n % 6], live_entries[(n + 1) % 6], num=n)
                recorded.append(n)
        finally:
            connection.close()

    # Every pass meets the race bench/ratings.py part 3 hit by chance: a live recording waits on the game's row lock
    # while the pass starts (its Match row committed, so inside the pass), and commits its events and its mark before
    # the pass reads the outcomes. Only the timing is steered; every read and write is the real one.
    real_last, real_rated = source.last_position, source.rated_after
    started = []

    def last_position(game):
        soon(lambda: lock_waiters() > 0)  # called under the row lock at the start of a pass
        started.append(RatingReplayMark.objects.count())
        return real_last(game)

    def rated_after(game, after, **kw):
        if started:
            before = started.pop()
            soon(lambda: RatingReplayMark.objects.count() > before)
        return real_rated(game, after, **kw)

    monkeypatch.setattr(replay.source, "last_position", last_position)
    monkeypatch.setattr(replay.source, "rated_after", rated_after)
    request_replay("chess")
    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        while len(recorded) < 3:
            time.sleep(0.01)
        result = run_replay("chess", chunk_size=4)
        during = len(recorded)
    finally:
        stop.set()
        thread.join()
    # Ended while the traffic still flowed (a replay chasing it pass after pass runs until the budget is spent).
    assert result.ran and during < budget
    settle()
    assert RatingGame.objects.get(game="chess").status == RatingGame.Status.IDLE
    assert_close(stored("chess"), solo_fold("chess"))
