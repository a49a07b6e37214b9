"""The reconciliation's ratings check reads in one snapshot (stats.ratings.check.check_ratings_in_one_snapshot): a
match committed while it runs is never drift, and a game whose replay is pending is left out instead of reported."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections

from stats.ratings import check
from stats.ratings.check import check_ratings, check_ratings_in_one_snapshot, reconcile_ratings
from stats.ratings.models import RatingReplayMark
from tests.factories import UserFactory
from tests.ratings_support import entries, play, settle, tournament

JAN = datetime(2024, 1, 1, tzinfo=UTC)


def a_rated_game() -> tuple:
    t = tournament(starts_at=JAN, external_id="T1")
    e = entries(t, UserFactory.create_batch(4))
    play(t, e[0], e[1], round="QF", num=1)
    play(t, e[2], e[3], round="QF", num=2)
    settle()
    return t, e


def a_live_match_commits_after_each_fold(monkeypatch, t, e) -> None:
    """Another connection commits the final (rated in place, with its events) right after the check folds."""
    fold = check.fresh_fold

    def fold_then_a_match_commits(game: str):
        states = fold(game)

        def live() -> None:
            try:
                play(t, e[0], e[2], round="F", num=3)
            finally:
                connections.close_all()

        thread = threading.Thread(target=live)
        thread.start()
        thread.join()
        monkeypatch.setattr(check, "fresh_fold", fold)  # once
        return states

    monkeypatch.setattr(check, "fresh_fold", fold_then_a_match_commits)


@pytest.mark.django_db(transaction=True)
def test_a_match_committed_while_the_check_runs_is_not_drift(monkeypatch, enqueued):
    t, e = a_rated_game()
    a_live_match_commits_after_each_fold(monkeypatch, t, e)

    report = check_ratings_in_one_snapshot(sample=None)

    assert (report.games, report.pending, report.drift) == (["chess"], [], [])
    assert not check_ratings(sample=None).drift  # and quiet now, the final is in both


@pytest.mark.django_db(transaction=True)
def test_read_statement_by_statement_the_same_match_would_show_as_drift(monkeypatch, enqueued):
    """What the snapshot is for: the plain check reads the stored ratings after the match committed."""
    t, e = a_rated_game()
    a_live_match_commits_after_each_fold(monkeypatch, t, e)

    assert {d.profile_id for d in check_ratings(sample=None).drift} == {e[0].user_id, e[2].user_id}


@pytest.mark.django_db
def test_a_game_with_a_replay_pending_is_left_out_and_compared_once_replayed():
    t, e = a_rated_game()
    earlier = tournament(starts_at=JAN - timedelta(days=7), external_id="T0")
    late = entries(earlier, [entry.user for entry in e[:2]])
    play(earlier, late[1], late[0], round="F", num=1)  # before the rated history: marks the game for a replay
    assert RatingReplayMark.objects.filter(game="chess").exists()

    pending = reconcile_ratings(fix=True)
    assert (pending.games, pending.pending, pending.checked, pending.drift) == ([], ["chess"], 0, [])

    settle()
    replayed = reconcile_ratings(fix=True)
    assert (replayed.games, replayed.pending, replayed.drift) == (["chess"], [], [])
    assert replayed.checked == 4
