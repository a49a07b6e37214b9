"""The stale-stats job: marking is one statement, the job recomputes exactly the marked users set-based, clears only
the marks it processed (a mark renewed or made during the run survives) and refreshes the cached leaderboards."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection

import stats.stale as stale
from activity.recording import record_events_for
from stats.cache import LEADERBOARD_GENERATION_KEY
from stats.models import StaleStats, UserProfileStats
from tests.conftest import wait_until
from tests.factories import MatchFactory, UserFactory, complete_match

STATS_TABLE = UserProfileStats._meta.db_table


def played_match():
    match = MatchFactory()
    complete_match(match, match.participant1)
    for reg in (match.participant1, match.participant2):
        record_events_for("tournaments.registration", [reg.pk])
    record_events_for("tournaments.match", [match.pk])
    return match.participant1.user_id, match.participant2.user_id


def corrupt_matches_played(*user_ids: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {STATS_TABLE} SET matches_played = 42 WHERE profile_id = ANY(%s)", [list(user_ids)])


def matches_played(user_id: int) -> int:
    return UserProfileStats.objects.get(profile_id=user_id).matches_played


def test_marking_is_one_statement_whatever_the_number_of_users(db, django_assert_num_queries):
    users = UserFactory.create_batch(25)
    with django_assert_num_queries(1):
        marked = stale.mark_stale([u.pk for u in users] + [999_999], reason="backfill #3")
    assert marked == 25  # the unknown id has no profile: skipped
    assert set(StaleStats.objects.values_list("reason", flat=True)) == {"backfill #3"}


def test_marking_again_moves_the_mark_forward(db):
    user = UserFactory()
    stale.mark_stale([user.pk], "first")
    first = StaleStats.objects.get(pk=user.pk).marked_at
    stale.mark_stale([user.pk], "second")
    mark = StaleStats.objects.get(pk=user.pk)
    assert mark.marked_at > first and mark.reason == "second"


def test_the_job_recomputes_exactly_the_marked_users_and_clears_their_marks(db):
    marked_a, marked_b = played_match()
    unmarked, _ = played_match()
    corrupt_matches_played(marked_a, marked_b, unmarked)
    stale.mark_stale([marked_a, marked_b], "erasure")

    report = stale.recompute_stale_stats(chunk_size=1)  # two chunks

    assert (report.users_recomputed, report.marks_cleared) == (2, 2)
    assert (matches_played(marked_a), matches_played(marked_b)) == (1, 1)
    assert matches_played(unmarked) == 42  # not marked: not touched
    assert not StaleStats.objects.exists()


def test_the_job_runs_a_fixed_number_of_queries_per_chunk(db, django_assert_max_num_queries):
    users = [u for _ in range(6) for u in played_match()]
    stale.mark_stale(users, "test")
    # read marks, recompute (create, lock, write), clear, end-of-marks read, and the audit events of the chunk (lock
    # the chain head, insert them in one statement, advance the head), and the per-game / per-season rows (clear,
    # rebuild from the ledger)
    with django_assert_max_num_queries(17):
        report = stale.recompute_stale_stats()
    assert report.users_recomputed == 12


def test_a_mark_renewed_or_made_during_the_run_survives_it(db, monkeypatch):
    renewed, _ = played_match()
    late, _ = played_match()
    stale.mark_stale([renewed], "first")
    real_recompute = stale.recompute_stats

    def recompute_then_someone_marks(user_ids):
        written = real_recompute(user_ids)
        # Meanwhile a backfill changes these users' ledger again and marks them (after our aggregate).
        stale.mark_stale([renewed, late], "backfill during the run")
        return written

    monkeypatch.setattr(stale, "recompute_stats", recompute_then_someone_marks)
    report = stale.recompute_stale_stats()

    assert (report.users_recomputed, report.marks_cleared) == (1, 0)
    assert set(StaleStats.objects.values_list("profile_id", flat=True)) == {renewed, late}
    monkeypatch.setattr(stale, "recompute_stats", real_recompute)
    assert stale.recompute_stale_stats().marks_cleared == 2  # the next run takes them


def test_the_job_refreshes_cached_leaderboards_only_when_it_recomputed_someone(db):
    cache.set(LEADERBOARD_GENERATION_KEY, "gen-1")
    cache.set("unrelated", "kept")
    stale.recompute_stale_stats()  # nothing marked
    assert cache.get(LEADERBOARD_GENERATION_KEY) == "gen-1"

    user, _ = played_match()
    stale.mark_stale([user], "admin")
    stale.recompute_stale_stats()
    assert cache.get(LEADERBOARD_GENERATION_KEY) is None
    assert cache.get("unrelated") == "kept"


@pytest.mark.integration
def test_the_periodic_task_recomputes_marked_users_through_the_worker(live_worker, enqueued):
    from tasks.reconciliation import recompute_stale

    user, other = played_match()
    corrupt_matches_played(user, other)
    stale.mark_stale([user], "admin")

    recompute_stale.apply_async()

    wait_until(lambda: not StaleStats.objects.exists(), message="the worker to process the stale mark")
    assert matches_played(user) == 1
    assert matches_played(other) == 42
