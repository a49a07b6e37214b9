"""The nightly sources -> ledger pass (stats.nightly_sources): rows written by any path since the last repairing run
are re-derived with their dependents, the rolling slices re-prove every row within N nights, the change log is
consumed only by a repairing run that succeeded, and a chunk's query count does not grow with its rows."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activity.models import SourceChange, UserActivity
from activity.recording import record_events_for
from activity.sources import SOURCES
from esports.achievements.models import UserAchievement
from esports.economy.models import DeltaCrownTransaction
from esports.profiles.models import UserProfile
from esports.teams.models import TeamMembership
from esports.tournaments.models import Match
from stats.models import ReconciliationRun
from stats.nightly_sources import nightly_pass
from stats.reconcile import run_reconciliation
from stats.rolling_slice import SLICE_BLOCK, IdSlice, next_slice
from tests.factories import (
    MatchFactory,
    RegistrationFactory,
    TeamFactory,
    TeamMembershipFactory,
    TournamentFactory,
    TournamentResultFactory,
    TransactionFactory,
    UserAchievementFactory,
    UserFactory,
    complete_match,
)
from tests.ledger_helpers import counters

pytestmark = pytest.mark.django_db
MATCH, RESULT, TX, UNLOCK = (
    "tournaments.match",
    "tournaments.tournamentresult",
    "economy.deltacrowntransaction",
    "achievements.userachievement",
)


def record_everything() -> None:
    for label, kind in SOURCES.items():
        ids = list(kind.model._default_manager.values_list(kind.model._meta.pk.attname, flat=True))
        if ids:
            record_events_for(label, ids)


def all_source_ids() -> set[int]:
    return {
        pk
        for kind in SOURCES.values()
        for pk in kind.model._default_manager.values_list(kind.model._meta.pk.attname, flat=True)
    }


def a_slice_missing(ids: set[int], count: int = 64) -> int:
    """A slice of `count` holding none of these ids: what that night's rolling pass covers is none of the test's rows,
    so whatever it finds, the change log found."""
    taken = {(i // SLICE_BLOCK) % count for i in ids}
    return next(k for k in range(count) if k not in taken)


def next_night_is(index: int, count: int) -> None:
    """Make `index` the next nightly run's slice (as if the run before had covered the slice before it)."""
    ReconciliationRun.objects.create(
        started_at=timezone.now() - timedelta(days=1),
        status=ReconciliationRun.Status.SUCCEEDED,
        sources_mode="nightly",
        slice_index=(index - 1) % count,
        slice_count=count,
    )


def night(*, fix: bool = True, count: int = 64) -> ReconciliationRun:
    return run_reconciliation(fix=fix, slice_count=count, trigger="beat")


def settled() -> None:
    """Everything recorded and the change log consumed: the morning after a clean nightly run."""
    record_everything()
    SourceChange.objects.all().delete()


def test_signal_less_writes_are_found_by_the_next_nightly_run_though_no_slice_covers_them():
    match = MatchFactory()
    wallet = UserFactory().profile.wallet
    unlock = UserAchievementFactory()
    settled()
    Match.objects.filter(pk=match.pk).update(  # QuerySet.update: no signal, no auto_now
        state=Match.State.COMPLETED, winner=match.participant1, loser=match.participant2, completed_at=timezone.now()
    )
    (tx,) = DeltaCrownTransaction.objects.bulk_create([DeltaCrownTransaction(wallet=wallet, amount=70, reason="x")])
    with connection.cursor() as cursor:  # raw SQL delete of a recorded row
        cursor.execute("DELETE FROM achievements_userachievement WHERE id = %s", [unlock.pk])
    next_night_is(a_slice_missing(all_source_ids() | {unlock.pk}), 64)

    run = night()

    assert run.sources_mode == "nightly" and run.rows_rederived[MATCH]["slice"] == 0
    assert run.missing_events == {
        MATCH: {"match_lost": 1, "match_played": 2, "match_won": 1},
        TX: {"coins_earned": 1},
        UNLOCK: {"achievement_unlocked_reversed": 1},
    }
    assert counters(match.participant1.user)["matches_won"] == 1
    assert counters(wallet.profile.user)["total_earned"] == 70
    assert counters(unlock.user)["achievements_count"] == 0
    assert UserActivity.objects.filter(source_model=TX, source_id=tx.pk).count() == 1
    assert not SourceChange.objects.exists()  # consumed by the run that re-derived them
    assert night().missing_events_total == 0


def test_a_registration_checked_in_by_raw_sql_makes_its_tournaments_result_derive_again():
    tournament = TournamentFactory()
    late = RegistrationFactory(tournament=tournament, checked_in=False)
    result = TournamentResultFactory(tournament=tournament)
    settled()
    assert counters(late.user)["tournaments_completed"] == 0
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tournaments_registration SET checked_in = true WHERE id = %s", [late.pk])
    next_night_is(a_slice_missing(all_source_ids()), 64)

    run = night()

    # The result was not written: it is derived again because it reads its tournament's checked-in entries.
    assert run.rows_rederived[RESULT] == {"changed": 0, "dependents": 1, "slice": 0}
    assert run.missing_events[RESULT] == {"tournament_completed": 1}
    assert counters(late.user)["tournaments_completed"] == 1
    assert UserActivity.objects.filter(source_model=RESULT, source_id=result.pk, user=late.user).exists()


def test_a_match_written_by_raw_sql_makes_its_tournaments_result_a_dependent():
    match = MatchFactory()
    complete_match(match, match.participant1)
    result = TournamentResultFactory(
        tournament=match.tournament, winner=match.participant1, runner_up=match.participant2
    )
    settled()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tournaments_match SET score = '2-1' WHERE id = %s", [match.pk])

    run = night(fix=False)

    assert run.rows_rederived[MATCH]["changed"] == 1
    assert run.rows_rederived[RESULT]["dependents"] == 1
    assert result.pk not in {c.source_id for c in SourceChange.objects.filter(source_model=RESULT)}


def test_a_member_backdated_by_bulk_create_gets_the_teams_entries_at_night():
    team = TeamFactory()
    TeamMembershipFactory(team=team, user=team.created_by, joined_at=timezone.now() - timedelta(days=60))
    entry = RegistrationFactory(tournament=TournamentFactory(), user=None, team=team)
    settled()
    newcomer = UserFactory()
    TeamMembership.objects.bulk_create(
        [TeamMembership(team=team, user=newcomer, joined_at=entry.created_at - timedelta(days=1))]
    )
    next_night_is(a_slice_missing(all_source_ids()), 64)

    night()

    assert counters(newcomer)["tournaments_registered"] == 1
    assert counters(newcomer)["teams_joined"] == 1


def test_the_rolling_slices_find_an_unlogged_change_within_n_nights_and_only_on_its_night():
    """A change the log never saw (written before the log existed): found on the night its slice comes round."""
    match = MatchFactory()
    settled()
    Match.objects.filter(pk=match.pk).update(
        state=Match.State.FORFEIT, winner=None, loser=None, completed_at=timezone.now()
    )
    SourceChange.objects.all().delete()
    count = 4
    its_night = (match.pk // SLICE_BLOCK) % count
    next_night_is(0, count)

    found = [night(count=count).missing_events.get(MATCH, {}) for _ in range(count)]

    assert found[its_night] == {"match_played": 2}
    assert all(not f for k, f in enumerate(found) if k != its_night)
    assert [r.slice_index for r in ReconciliationRun.objects.filter(sources_mode="nightly").order_by("id")][-4:] == [
        0,
        1,
        2,
        3,
    ]


def test_the_rolling_slices_compensate_an_unlogged_deletion_within_n_nights():
    unlock = UserAchievementFactory()
    settled()
    UserAchievement.objects.filter(pk=unlock.pk).delete()
    SourceChange.objects.all().delete()  # as if it had been deleted before the log existed
    count = 3

    runs = [night(count=count) for _ in range(count)]

    assert sum(r.missing_events.get(UNLOCK, {}).get("achievement_unlocked_reversed", 0) for r in runs) == 1
    assert counters(unlock.user)["achievements_count"] == 0


def test_slices_partition_the_key_space():
    count = 5
    ids = range(0, 40 * SLICE_BLOCK, 97)
    owners = [[k for k in range(count) if i in IdSlice(k, count)] for i in ids]
    assert all(len(o) == 1 for o in owners)
    assert next_slice(count).index == 0


def test_a_report_only_or_failed_run_leaves_the_change_log_for_the_next_repairing_run():
    match = MatchFactory()
    settled()
    Match.objects.filter(pk=match.pk).update(state=Match.State.FORFEIT, completed_at=timezone.now())
    logged = SourceChange.objects.count()

    report = night(fix=False)
    assert report.missing_events == {MATCH: {"match_played": 2}} and SourceChange.objects.count() == logged

    with (
        mock.patch("stats.reconcile.compare_ledger_to_stats", side_effect=RuntimeError("boom")),
        pytest.raises(RuntimeError),
    ):
        night()
    assert SourceChange.objects.filter(claimed_by__isnull=False).count() == logged  # claimed, not consumed
    UserActivity.objects.filter(source_model=MATCH, source_id=match.pk)  # (the failed run's events stay: idempotent)

    run = night()
    assert run.status == ReconciliationRun.Status.SUCCEEDED and run.changes_claimed >= logged
    assert not SourceChange.objects.exists()
    assert counters(match.participant1.user)["matches_played"] == 1


def test_a_change_committed_after_the_claim_waits_for_the_next_run():
    match = MatchFactory()
    settled()
    Match.objects.filter(pk=match.pk).update(state=Match.State.FORFEIT, completed_at=timezone.now())
    real_claim = __import__("activity.changes", fromlist=["claim_changes"]).claim_changes

    def claim_then_write(run_id: int) -> int:
        claimed = real_claim(run_id)
        TransactionFactory(wallet=match.participant1.user.profile.wallet, amount=5)  # lands after the claim
        return claimed

    with mock.patch("stats.nightly_sources.claim_changes", claim_then_write):
        night()

    assert list(SourceChange.objects.values_list("source_model", "claimed_by")) == [(TX, None)]


def test_the_change_log_ignores_profile_writes_no_derivation_reads():
    user = UserFactory()
    SourceChange.objects.all().delete()
    UserProfile.objects.filter(pk=user.pk).update(deltacoin_balance=40)  # the wallet mirror, on every transaction
    assert not SourceChange.objects.exists()
    UserProfile.objects.filter(pk=user.pk).update(level=5)
    assert list(SourceChange.objects.values_list("source_model", "source_id")) == [("profiles.userprofile", user.pk)]


def test_a_deleted_rows_scope_is_logged_with_it():
    match = MatchFactory()
    SourceChange.objects.all().delete()
    Match.objects.filter(pk=match.pk).delete()
    assert list(SourceChange.objects.values_list("source_model", "source_id", "tournament_id")) == [
        (MATCH, match.pk, match.tournament_id)
    ]


def test_a_poison_row_among_the_changed_rows_is_set_aside_and_the_run_goes_on():
    team = TeamFactory()
    good = TeamMembershipFactory(team=team)
    orphan_user = UserFactory()
    orphan = TeamMembershipFactory(team=team, user=orphan_user)
    UserProfile.objects.filter(pk=orphan_user.pk).delete()  # its events have nowhere to count

    run = night()

    assert run.status == ReconciliationRun.Status.SUCCEEDED
    assert run.poison_rows == {"teams.teammembership": 1}
    assert counters(good.user)["teams_joined"] == 1
    assert not UserActivity.objects.filter(source_model="teams.teammembership", source_id=orphan.pk).exists()


def test_the_nightly_pass_runs_the_same_number_of_queries_for_3_or_300_changed_rows():
    wallets = [UserFactory().profile.wallet for _ in range(3)]

    def queries_for(rows: int) -> int:
        settled()
        DeltaCrownTransaction.objects.bulk_create(
            [DeltaCrownTransaction(wallet=wallets[i % 3], amount=10 + i, reason="x") for i in range(rows)]
        )
        next_night_is(a_slice_missing(all_source_ids()), 64)  # the changed rows' chunks only, no slice chunk
        run = ReconciliationRun.objects.create(started_at=timezone.now(), fix=True, sources_mode="nightly")
        with CaptureQueriesContext(connection) as captured:
            outcome = nightly_pass(run, id_slice=next_slice(64), batch_size=1000)
        assert sum(outcome.missing[TX].values()) == rows
        return len(captured)

    assert queries_for(3) == queries_for(300)
