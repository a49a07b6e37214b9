"""The nightly ledger -> stats pass (stats.nightly_stats): users with events appended since the last repairing run's
watermark are compared the next night wherever they are, the rolling slices compare every other user within N nights,
the first night (no watermark) compares everyone, and a chunk's query count does not grow with its users."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activity.models import UserActivity
from stats.models import ReconciliationRun, UserProfileStats
from stats.nightly_stats import coverage_for, ledger_high_water
from stats.reconcile import compare_ledger_to_stats, format_report, run_reconciliation
from stats.rolling_slice import SLICE_BLOCK, IdSlice
from tests.factories import UserFactory
from tests.test_nightly_reconcile import settled

pytestmark = pytest.mark.django_db
STATS_TABLE = UserProfileStats._meta.db_table
LEDGER_TABLE = UserActivity._meta.db_table


def slice_of(user_id: int, count: int) -> int:
    return (user_id // SLICE_BLOCK) % count


def after_a_repairing_night(next_index: int, count: int) -> None:
    """The morning after a successful repairing nightly run: the change log consumed, the ledger's watermark now, and
    `next_index` the next night's slice."""
    settled()
    ReconciliationRun.objects.create(
        started_at=timezone.now() - timedelta(days=1),
        status=ReconciliationRun.Status.SUCCEEDED,
        fix=True,
        sources_mode="nightly",
        slice_index=(next_index - 1) % count,
        slice_count=count,
        ledger_high_id=ledger_high_water(),
    )


def edit_stats_by_hand(user_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {STATS_TABLE} SET teams_created = teams_created + 3 WHERE profile_id = %s", [user_id])


def insert_an_event_around_the_projection(user_id: int, source_id: int = 4242) -> None:
    """An event in the ledger whose counters never moved (raw SQL, as a bulk import would)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {LEDGER_TABLE} (user_id, event_type, timestamp, recorded_at, metadata, source_model, "
            "source_id, seq, visibility) VALUES (%s, 'match_won', now(), now(), '{}', 'test.source', %s, 1, 'public')",
            [user_id, source_id],
        )


def night(*, fix: bool = True, count: int = 64) -> ReconciliationRun:
    return run_reconciliation(fix=fix, slice_count=count, trigger="beat")


def test_a_stats_row_edited_by_hand_is_found_on_the_night_its_slice_comes_round_and_only_then():
    user = UserFactory()
    count = 4
    first = (slice_of(user.pk, count) + 1) % count  # its slice comes round on the last of the N nights
    after_a_repairing_night(first, count)
    edit_stats_by_hand(user.pk)

    runs = [night(count=count) for _ in range(count)]

    assert [r.users_drifted for r in runs] == [0, 0, 0, 1]
    assert runs[-1].field_drift == {"teams_created": 1} and runs[-1].users_fixed == 1
    assert UserProfileStats.objects.get(profile_id=user.pk).teams_created == 0
    assert all(r.users_appended == 0 for r in runs)
    assert [r.slice_index for r in runs] == [(first + k) % count for k in range(count)]


def test_an_event_written_around_the_projection_is_found_the_next_night_though_no_slice_covers_its_user():
    user, bystander = UserFactory(), UserFactory()
    count = 64
    taken = {slice_of(user.pk, count), slice_of(bystander.pk, count)}
    after_a_repairing_night(next(k for k in range(count) if k not in taken), count)
    edit_stats_by_hand(bystander.pk)  # no new event: only its slice finds it
    insert_an_event_around_the_projection(user.pk)

    run = night(count=count)

    assert (run.users_checked, run.users_appended, run.users_drifted, run.users_fixed) == (1, 1, 1, 1)
    assert [d["user_id"] for d in run.drift_sample] == [user.pk]
    assert UserProfileStats.objects.get(profile_id=user.pk).matches_won == 1
    assert "ledger -> stats (nightly: 1 with new events, the others in rolling slice" in format_report(run)
    assert night(count=count).users_checked == 0  # repaired, and no event since that night's watermark


def test_a_report_only_night_leaves_what_it_saw_to_the_next_repairing_night():
    user = UserFactory()
    count = 64
    after_a_repairing_night((slice_of(user.pk, count) + 1) % count, count)
    insert_an_event_around_the_projection(user.pk)

    seen = night(fix=False, count=count)
    repaired = night(count=count)

    assert (seen.users_drifted, seen.users_fixed) == (1, 0)
    assert (repaired.users_appended, repaired.users_drifted, repaired.users_fixed) == (1, 1, 1)


def test_with_no_earlier_watermark_a_nightly_run_compares_every_user():
    users = UserFactory.create_batch(3)
    settled()
    edit_stats_by_hand(users[0].pk)

    run = night(count=64)

    assert run.users_appended is None and run.users_checked >= 3 and run.users_drifted == 1
    assert run.ledger_high_id == ledger_high_water()
    assert "ledger -> stats (every user)" in format_report(run)


def test_a_user_scoped_run_leaves_no_watermark_behind():
    user = UserFactory()
    settled()
    run = run_reconciliation(fix=True, user_id=user.pk)
    assert run.ledger_high_id is None and coverage_for(IdSlice(0, 7)).appended_since is None


def test_the_nightly_comparison_runs_the_same_number_of_queries_for_3_or_300_users_with_new_events():
    users = UserFactory.create_batch(300)
    count = 64
    taken = {slice_of(u.pk, count) for u in users}
    spare = next(k for k in range(count) if k not in taken)

    def queries_for(n: int) -> int:
        after_a_repairing_night(spare, count)
        for u in users[:n]:
            insert_an_event_around_the_projection(u.pk, source_id=n)
        coverage = coverage_for(IdSlice(spare, count))
        with CaptureQueriesContext(connection) as captured:
            result = compare_ledger_to_stats(fix=False, coverage=coverage)
        assert (result.users_appended, result.users_drifted) == (n, n)
        return len(captured)

    assert queries_for(3) == queries_for(300)
