"""Poison rows: one source row that cannot be recorded never stops the sweep, reconciliation or backfill; it is set
aside with its error, retried with a growing backoff and resolved once its cause is gone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError, transaction
from django.urls import reverse
from django.utils import timezone

from activity import catchup, poison
from activity import derivation as rules
from activity.backfill import start_backfill
from activity.events import InvalidEventError
from activity.models import BackfillRun, PoisonRow, SweepWatermark, UserActivity
from activity.recording import record_events_for
from esports.profiles.models import UserProfile
from esports.teams.models import TeamMembership
from monitoring import metrics
from stats.models import ReconciliationRun, UserProfileStats
from stats.reconcile import run_reconciliation
from tests.backfill_support import drain
from tests.factories import TeamFactory, TeamMembershipFactory, UserFactory
from tests.ledger_helpers import counters

# Source rows written in these tests are history (the receivers enqueue nothing), and the sweep takes rows however
# young: no live task will record them.
pytestmark = pytest.mark.usefixtures("history_mode", "no_grace")

MEMBERSHIP = "teams.teammembership"


def memberships_with_one_orphan(n_good: int = 3) -> tuple[list[TeamMembership], TeamMembership]:
    """`n_good` memberships of ordinary players and, in the middle of the key range, one of a player whose profile
    was deleted in the admin (the user account is still there)."""
    team = TeamFactory()
    good = [TeamMembershipFactory(team=team) for _ in range(n_good // 2)]
    orphan_user = UserFactory()
    orphan = TeamMembershipFactory(team=team, user=orphan_user)
    good += [TeamMembershipFactory(team=team) for _ in range(n_good - n_good // 2)]
    UserProfile.objects.filter(pk=orphan_user.pk).delete()
    return good, orphan


def raises_for(monkeypatch, bad_ids: set[int]) -> None:
    """The membership derivation raises InvalidEventError for these rows (as for metadata above its bound)."""
    real = rules.derive_team_membership

    def derive(membership):
        if membership.pk in bad_ids:
            raise InvalidEventError(f"membership {membership.pk}: metadata too large (simulated)")
        return real(membership)

    monkeypatch.setattr(rules, "derive_team_membership", derive)


def joined(membership: TeamMembership) -> bool:
    return UserActivity.objects.filter(
        source_model=MEMBERSHIP, source_id=membership.pk, event_type="team_joined"
    ).exists()


def poison_total(source: str, origin: str) -> float:
    return metrics.POISON_ROWS.labels(source=source, origin=origin)._value.get()


# --- the jobs go on ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_member_without_a_profile_does_not_stop_the_sweep():
    good, orphan = memberships_with_one_orphan()
    counted = poison_total(MEMBERSHIP, "sweep")
    now = timezone.now()

    report = catchup.sweep(now)  # raised IntegrityError (deferred FK of the stats row) and kept the watermark before

    assert report.sources[MEMBERSHIP].poisoned == 1 and not report.failed
    assert all(joined(m) for m in good) and not joined(orphan)
    assert SweepWatermark.objects.get(source=MEMBERSHIP).watermark == now
    row = PoisonRow.objects.get(source=MEMBERSHIP, source_id=orphan.pk)
    assert row.error_class == poison.MISSING_PROFILE and row.error == f"user {orphan.user_id} has no profile"
    assert row.attempts == 1 and row.origin == "sweep" and row.resolved_at is None
    assert poison_total(MEMBERSHIP, "sweep") == counted + 1
    assert all(counters(m.user)["teams_joined"] == 1 for m in good)


@pytest.mark.django_db
def test_reconciliation_runs_both_passes_around_a_poison_row_and_repairs_the_drifted_user():
    good, orphan = memberships_with_one_orphan()
    record_events_for(MEMBERSHIP, [m.pk for m in good])
    drifted = good[0].user
    UserProfileStats.objects.filter(profile_id=drifted.pk).update(teams_joined=7)  # a writer bypassed the projection

    run = run_reconciliation(fix=True)

    assert run.status == ReconciliationRun.Status.SUCCEEDED
    assert run.poison_rows == {MEMBERSHIP: 1}
    assert run.users_fixed >= 1 and counters(drifted)["teams_joined"] == 1
    assert PoisonRow.objects.filter(source=MEMBERSHIP, source_id=orphan.pk, origin="reconcile").exists()


@pytest.mark.django_db
def test_a_report_only_reconciliation_writes_no_poison_row(monkeypatch):
    good, _orphan = memberships_with_one_orphan()
    raises_for(monkeypatch, {good[1].pk})  # dry runs never reach the stats row's foreign key: a derivation error
    run = run_reconciliation(fix=False)

    assert run.status == ReconciliationRun.Status.SUCCEEDED and run.poison_rows == {MEMBERSHIP: 1}
    assert not PoisonRow.objects.exists()


@pytest.mark.django_db
def test_backfill_finishes_past_a_poison_row_and_its_cursor_moves_on():
    good, orphan = memberships_with_one_orphan(n_good=5)

    run = drain(start_backfill([MEMBERSHIP], batch_size=2))

    assert run.status == BackfillRun.Status.SUCCEEDED, run.last_error
    assert all(joined(m) for m in good) and not joined(orphan)
    assert run.progress[MEMBERSHIP]["poison"] == 1
    assert run.lane_rows.get().status == "done" and run.rows_done == 6
    assert PoisonRow.objects.get(source=MEMBERSHIP, source_id=orphan.pk).origin == "backfill"


# --- isolation itself ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_derivation_error_is_isolated_to_its_row_and_the_rest_of_the_chunk_is_recorded(monkeypatch):
    team = TeamFactory()
    rows = [TeamMembershipFactory(team=team) for _ in range(9)]
    bad = {rows[2].pk, rows[7].pk}
    raises_for(monkeypatch, bad)
    outcome = poison.isolate_and_record(MEMBERSHIP, [r.pk for r in rows], origin="sweep")

    assert set(outcome.poisoned) == bad
    assert {r.pk for r in rows if joined(r)} == {r.pk for r in rows} - bad
    stored = dict(PoisonRow.objects.values_list("source_id", "error_class"))
    assert stored == dict.fromkeys(bad, "InvalidEventError")


@pytest.mark.django_db
def test_database_trouble_is_not_a_poison_row_but_fails_the_whole_chunk(monkeypatch):
    rows = [TeamMembershipFactory() for _ in range(3)]

    def unreachable(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly (simulated)")

    monkeypatch.setattr(poison, "record_events_for", unreachable)
    with pytest.raises(OperationalError), transaction.atomic():  # the job's transaction: it retries as a whole
        poison.isolate_and_record(MEMBERSHIP, [r.pk for r in rows], origin="sweep")
    assert not PoisonRow.objects.exists()


# --- retry, backoff, resolution ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_poison_row_backs_off_and_resolves_once_the_profile_is_recreated():
    _good, orphan = memberships_with_one_orphan()
    catchup.sweep()
    row = PoisonRow.objects.get(source_id=orphan.pk)
    assert row.next_attempt_at - row.last_seen == timedelta(minutes=1)

    assert poison.retry_due_poison_rows(now=row.next_attempt_at - timedelta(seconds=1)).retried == 0  # not due yet
    gaps = []
    for _ in range(3):
        report = poison.retry_due_poison_rows(now=row.next_attempt_at)
        assert report.retried == 1 and report.still_poison == 1 and report.unresolved == 1
        row.refresh_from_db()
        gaps.append(row.next_attempt_at - row.last_seen)
    assert gaps == [timedelta(minutes=2), timedelta(minutes=4), timedelta(minutes=8)]
    assert row.attempts == 4 and row.first_seen < row.last_seen
    assert metrics.POISON_UNRESOLVED._value.get() == 1

    UserProfile.objects.create(user=orphan.user)  # the cause goes away
    report = poison.retry_due_poison_rows(now=row.next_attempt_at)

    assert report.resolved == 1 and report.unresolved == 0
    row.refresh_from_db()
    assert row.resolved_at is not None and joined(orphan) and counters(orphan.user)["teams_joined"] == 1
    assert metrics.POISON_UNRESOLVED._value.get() == 0


@pytest.mark.django_db
def test_the_backoff_doubles_from_a_minute_up_to_six_hours():
    # The schedule lives in mark_poison's upsert (one statement): read it back after each failure.
    def gap_after_failure() -> timedelta:
        poison.mark_poison(MEMBERSHIP, {1: ("X", "still failing")}, origin="retry")
        row = PoisonRow.objects.get(source=MEMBERSHIP, source_id=1)
        return row.next_attempt_at - row.last_seen

    gaps = [gap_after_failure() for _ in range(10)]
    assert gaps[:3] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert gaps[8] == timedelta(hours=4, minutes=16) and gaps[9] == timedelta(hours=6)
    PoisonRow.objects.update(attempts=9_999)
    assert gap_after_failure() == timedelta(hours=6)  # capped, however many attempts (no overflow either)


@pytest.mark.django_db
def test_any_later_successful_recording_resolves_the_poison_row():
    _good, orphan = memberships_with_one_orphan()
    catchup.sweep()
    UserProfile.objects.create(user=orphan.user)

    record_events_for(MEMBERSHIP, [orphan.pk])  # e.g. the live drain, after the member's next change

    assert PoisonRow.objects.get(source_id=orphan.pk).resolved_at is not None


@pytest.mark.django_db
def test_a_poison_row_whose_source_row_was_deleted_is_resolved_by_the_retry():
    _good, orphan = memberships_with_one_orphan()
    catchup.sweep()
    orphan.delete()

    report = poison.retry_due_poison_rows(now=timezone.now() + timedelta(minutes=2))

    assert report.resolved == 1 and PoisonRow.objects.get().resolved_at is not None


@pytest.mark.django_db
def test_a_resolved_row_that_fails_again_starts_its_backoff_over():
    _good, orphan = memberships_with_one_orphan()
    catchup.sweep()
    poison.retry_due_poison_rows(now=timezone.now() + timedelta(minutes=2))  # attempt 2
    PoisonRow.objects.update(resolved_at=timezone.now())

    poison.isolate_and_record(MEMBERSHIP, [orphan.pk], origin="retry")

    row = PoisonRow.objects.get()
    assert row.resolved_at is None and row.attempts == 1 and row.next_attempt_at - row.last_seen == timedelta(minutes=1)


# --- the admin -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_lists_unresolved_poison_rows_and_retry_now_resolves_a_fixed_one(admin_client):
    _good, orphan = memberships_with_one_orphan()
    catchup.sweep()
    url = reverse("admin:activity_poisonrow_changelist")

    page = admin_client.get(url, {"state": "unresolved", "source__exact": MEMBERSHIP})
    assert page.status_code == 200 and f"user {orphan.user_id} has no profile" in page.content.decode()
    assert admin_client.get(url, {"state": "resolved"}).context["cl"].result_count == 0

    UserProfile.objects.create(user=orphan.user)
    row = PoisonRow.objects.get()
    response = admin_client.post(url, {"action": "retry_now", "_selected_action": [row.pk]}, follow=True)

    assert response.status_code == 200 and "1 resolved" in response.content.decode()
    row.refresh_from_db()
    assert row.resolved_at is not None and joined(orphan)
    assert admin_client.get(reverse("admin:activity_poisonrow_change", args=[row.pk])).status_code == 200
    assert admin_client.post(reverse("admin:activity_poisonrow_delete", args=[row.pk])).status_code == 403
