"""Deletes are compensated from the ledger's own record, edits that change derived events are reflected, money and
solo-plus-team overlaps are refused by the database (issue 10, items 2 and 3)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from activity.event_types import EventType as E
from activity.orphans import MAX_ID, orphaned_source_ids
from esports.economy.models import DeltaCrownTransaction, ImmutableTransactionError
from esports.teams.models import TeamMembership
from esports.tournaments.models import Registration, TournamentResult
from stats.reconcile import run_reconciliation
from stats.selectors.leaderboards import Board, leaderboard
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
from tests.ledger_helpers import counters, ledger_rows_of, nonzero, record, record_inline

pytestmark = pytest.mark.django_db


@pytest.fixture
def live(monkeypatch, django_capture_on_commit_callbacks):
    """The live path in-process: the receivers' after-commit hooks record inline (record_inline), and each
    `with live():` block runs the callbacks its writes scheduled, cascaded deletes included."""
    record_inline(monkeypatch)
    return lambda: django_capture_on_commit_callbacks(execute=True)


def _champions() -> list[tuple[int, str]]:
    return [(e.user_id, e.value) for e in leaderboard(Board.TOURNAMENTS_WON, use_cache=False) if e.value != "0"]


# --- deletes ----------------------------------------------------------------------------------------------------


def test_a_wrong_result_deleted_and_re_entered_leaves_one_champion_board_and_reconciliation_included(live):
    tournament = TournamentFactory()
    with live():
        a, b = RegistrationFactory(tournament=tournament), RegistrationFactory(tournament=tournament)
    with live():
        wrong = TournamentResultFactory(tournament=tournament, winner=a, runner_up=b)
    assert counters(a.user)["tournaments_won"] == 1
    wrong_id = wrong.id
    with live():
        wrong.delete()
    with live():
        TournamentResultFactory(tournament=tournament, winner=b, runner_up=a)

    assert nonzero(counters(b.user)) == {
        "tournaments_registered": 1,
        "tournaments_played": 1,
        "tournaments_won": 1,
        "tournaments_completed": 1,
        "placements_counted": 1,  # placed 1st
        "placements_sum": 1,
    }
    assert nonzero(counters(a.user)) == {
        "tournaments_registered": 1,
        "tournaments_played": 1,
        "tournaments_runner_up": 1,
        "tournaments_completed": 1,
        "placements_counted": 1,  # placed 2nd
        "placements_sum": 2,
    }
    assert _champions() == [(b.user_id, "1")]
    assert ledger_rows_of("tournaments.tournamentresult", wrong_id, fields=("event_type",)) == sorted(
        [
            E.TOURNAMENT_WON,
            E.TOURNAMENT_RUNNER_UP,
            E.TOURNAMENT_COMPLETED,
            E.TOURNAMENT_COMPLETED,
            E.TOURNAMENT_PLACED,
            E.TOURNAMENT_PLACED,
            E.TOURNAMENT_WON_REVERSED,
            E.TOURNAMENT_RUNNER_UP_REVERSED,
            E.TOURNAMENT_COMPLETED_REVERSED,
            E.TOURNAMENT_COMPLETED_REVERSED,
            E.TOURNAMENT_PLACED_REVERSED,
            E.TOURNAMENT_PLACED_REVERSED,
        ]
    )
    run = run_reconciliation(fix=False)
    assert (run.missing_events_total, run.users_drifted) == (0, 0)


def test_reconciliation_finds_and_repairs_a_deleted_result_that_sent_no_signal(live):
    tournament = TournamentFactory()
    with live():
        a, b = RegistrationFactory(tournament=tournament), RegistrationFactory(tournament=tournament)
    with live():
        wrong = TournamentResultFactory(tournament=tournament, winner=a, runner_up=b)
    with connection.cursor() as cursor:  # raw SQL: no post_delete, the live path never hears of it
        cursor.execute(f"DELETE FROM {TournamentResult._meta.db_table} WHERE id = %s", [wrong.id])
    with live():
        TournamentResultFactory(tournament=tournament, winner=b, runner_up=a)
    assert sorted(_champions()) == sorted([(a.user_id, "1"), (b.user_id, "1")])  # two champions before the repair
    assert list(orphaned_source_ids("tournaments.tournamentresult", 0, MAX_ID)) == [[wrong.id]]

    report = run_reconciliation(fix=False)
    assert report.missing_events["tournaments.tournamentresult"] == {
        E.TOURNAMENT_WON_REVERSED: 1,
        E.TOURNAMENT_RUNNER_UP_REVERSED: 1,
        E.TOURNAMENT_COMPLETED_REVERSED: 2,
        E.TOURNAMENT_PLACED_REVERSED: 2,
    }
    assert counters(a.user)["tournaments_won"] == 1  # report only: nothing written

    repaired = run_reconciliation(fix=True)
    assert repaired.missing_events_total == 6
    assert _champions() == [(b.user_id, "1")]
    assert run_reconciliation(fix=False).missing_events_total == 0


def test_a_deleted_match_leaves_no_played_won_or_lost(live):
    match = MatchFactory()
    with live():
        complete_match(match, match.participant1)
    winner, loser = match.participant1.user, match.participant2.user
    assert counters(winner)["matches_won"] == 1
    with live():
        match.delete()
    for user in (winner, loser):
        c = counters(user)
        assert (c["matches_played"], c["matches_won"], c["matches_lost"]) == (0, 0, 0)


def test_a_deleted_registration_and_everything_it_cascades_to_leave_counters_as_if_it_never_existed(live):
    tournament = TournamentFactory()
    with live():
        mine, theirs = RegistrationFactory(tournament=tournament), RegistrationFactory(tournament=tournament)
        match = MatchFactory(tournament=tournament, participant1=mine, participant2=theirs)
    with live():
        complete_match(match, mine)
        TournamentResultFactory(tournament=tournament, winner=mine, runner_up=theirs)
    assert counters(mine.user)["tournaments_won"] == 1
    with live():
        mine.delete()  # cascades to the match and the result: each sends its own post_delete
    assert nonzero(counters(mine.user)) == {}
    assert nonzero(counters(theirs.user)) == {"tournaments_registered": 1, "tournaments_played": 1}


def test_a_deleted_team_leaves_counters_as_if_it_never_existed(live):
    with live():
        team = TeamFactory()
        member = TeamMembershipFactory(team=team).user
        RegistrationFactory(user=None, team=team)
    assert counters(member)["tournaments_registered"] == 1
    assert counters(team.created_by)["teams_created"] == 1
    with live():
        team.delete()  # cascades to its memberships and registrations
    assert nonzero(counters(team.created_by)) == {}
    assert nonzero(counters(member)) == {}


def test_a_deleted_membership_and_a_deleted_achievement_leave_no_count(live):
    with live():
        membership = TeamMembershipFactory()
        unlock = UserAchievementFactory(user=membership.user)
    assert nonzero(counters(membership.user)) == {"teams_joined": 1, "current_teams_count": 1, "achievements_count": 1}
    with live():
        membership.delete()
        unlock.delete()
    assert nonzero(counters(membership.user)) == {}


def test_a_profile_deletion_is_not_compensated(live):
    user = UserFactory()
    with live():
        record(user.profile)
    user.profile.delete()
    assert ledger_rows_of("profiles.userprofile", user.id, fields=("event_type",)) == [E.PROFILE_CREATED]


# --- money is immutable -----------------------------------------------------------------------------------------


def test_an_amount_edit_is_refused_by_the_orm_and_by_the_database(live):
    with live():
        t = TransactionFactory(amount=100)
    t.amount = 500
    with pytest.raises(ImmutableTransactionError):
        t.save()
    with pytest.raises(ImmutableTransactionError):
        DeltaCrownTransaction.objects.filter(pk=t.pk).update(amount=-100)
    for sql in (
        "UPDATE economy_deltacrowntransaction SET amount = 500 WHERE id = %s",
        "UPDATE economy_deltacrowntransaction SET amount = -amount WHERE id = %s",
        "UPDATE economy_deltacrowntransaction SET wallet_id = wallet_id + 1 WHERE id = %s",
    ):
        with pytest.raises(IntegrityError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [t.pk])
    assert DeltaCrownTransaction.objects.get(pk=t.pk).amount == 100
    assert counters(t.wallet.profile_id)["total_earned"] == 100
    # The reason is not money: a typo in it may be fixed.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE economy_deltacrowntransaction SET reason = 'prize (fixed)' WHERE id = %s", [t.pk])


def test_a_transaction_cannot_be_deleted_by_orm_cascade_or_sql():
    t = TransactionFactory(amount=100)
    with pytest.raises(ImmutableTransactionError):
        t.delete()
    with pytest.raises(ImmutableTransactionError):
        DeltaCrownTransaction.objects.filter(pk=t.pk).delete()
    with pytest.raises(ProtectedError):
        t.wallet.profile.delete()  # a wallet with money history cannot be cascaded away
    with pytest.raises(IntegrityError, match="cannot be deleted"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM economy_deltacrowntransaction WHERE id = %s", [t.pk])
    assert DeltaCrownTransaction.objects.filter(pk=t.pk).exists()


def test_a_correction_is_a_reversing_transaction_allowed_once_and_never_reversed_itself(live):
    with live():
        t = TransactionFactory(amount=100)
        reversal = DeltaCrownTransaction.objects.create(
            wallet=t.wallet, amount=-100, reason="prize revoked", reverses=t
        )
    assert (counters(t.wallet.profile_id)["total_earned"], counters(t.wallet.profile_id)["total_spent"]) == (0, 0)
    with pytest.raises(IntegrityError), transaction.atomic():
        DeltaCrownTransaction.objects.create(wallet=t.wallet, amount=-100, reason="again", reverses=t)
    with pytest.raises(IntegrityError, match="itself a reversal"), transaction.atomic():
        DeltaCrownTransaction.objects.create(wallet=t.wallet, amount=100, reason="undo", reverses=reversal)
    with pytest.raises(IntegrityError, match="opposite amount"), transaction.atomic():
        DeltaCrownTransaction.objects.create(
            wallet=t.wallet, amount=-500, reason="wrong", reverses=TransactionFactory(wallet=t.wallet)
        )


# --- edits reflected ------------------------------------------------------------------------------------------


def _active_memberships(user) -> int:
    return TeamMembership.objects.filter(user=user, left_at__isnull=True).count()


def test_a_re_join_compensates_the_team_left_and_leaving_again_counts_once_more(live):
    with live():
        membership = TeamMembershipFactory(left_at=timezone.now() - timedelta(days=1))
    user = membership.user
    assert counters(user)["current_teams_count"] == _active_memberships(user) == 0
    membership.left_at = None
    with live():
        membership.save()
    assert counters(user)["current_teams_count"] == _active_memberships(user) == 1
    membership.left_at = timezone.now()
    with live():
        membership.save()
    assert counters(user)["current_teams_count"] == _active_memberships(user) == 0
    assert counters(user)["teams_joined"] == 1
    assert ledger_rows_of(membership, fields=("event_type", "seq")) == [
        (E.TEAM_JOINED, 1),
        (E.TEAM_LEFT, 1),
        (E.TEAM_LEFT, 2),
        (E.TEAM_LEFT_REVERSED, 1),
    ]


def test_a_backdated_member_gets_the_teams_registrations_matches_and_results_from_the_live_path(live):
    tournament = TournamentFactory()
    with live():
        team, rivals = TeamFactory(), TeamFactory()
        TeamMembershipFactory(team=team)
        TeamMembershipFactory(team=rivals)
        ours = RegistrationFactory(tournament=tournament, user=None, team=team)
        theirs = RegistrationFactory(tournament=tournament, user=None, team=rivals)
        match = MatchFactory(tournament=tournament, participant1=ours, participant2=theirs)
    with live():
        complete_match(match, ours)
        TournamentResultFactory(tournament=tournament, winner=ours, runner_up=theirs)
    with live():
        late = UserFactory()
    with live():  # entered after the fact, joined before the registration
        TeamMembershipFactory(team=team, user=late, joined_at=ours.created_at - timedelta(days=1))
    assert nonzero(counters(late)) == {
        "tournaments_registered": 1,
        "tournaments_played": 1,
        "tournaments_completed": 1,
        "tournaments_won": 1,
        "matches_played": 1,
        "matches_won": 1,
        "teams_joined": 1,
        "current_teams_count": 1,
        "placements_counted": 1,  # the team's title: placed 1st
        "placements_sum": 1,
    }
    run = run_reconciliation(fix=False)
    assert (run.missing_events_total, run.users_drifted) == (0, 0)


def test_a_change_to_an_achievement_moves_its_change_field():
    unlock = UserAchievementFactory()
    before = unlock.updated_at
    unlock.unlocked_at = unlock.unlocked_at - timedelta(days=1)
    unlock.save()
    assert unlock.updated_at > before


# --- solo plus team ---------------------------------------------------------------------------------------------


def test_a_member_of_an_entered_team_cannot_enter_solo_and_a_solo_entrant_cannot_join_the_entered_team():
    tournament = TournamentFactory()
    team = TeamFactory()
    member = TeamMembershipFactory(team=team).user
    RegistrationFactory(tournament=tournament, user=None, team=team)
    with pytest.raises(IntegrityError, match="cannot enter tournament .* solo"), transaction.atomic():
        RegistrationFactory(tournament=tournament, user=member)
    assert not Registration.objects.filter(tournament=tournament, user=member).exists()

    solo = RegistrationFactory(tournament=tournament).user
    with pytest.raises(IntegrityError, match="cannot be an active member"), transaction.atomic():
        TeamMembershipFactory(team=team, user=solo)
    assert not TeamMembership.objects.filter(team=team, user=solo).exists()

    other_team = TeamFactory()
    TeamMembershipFactory(team=other_team, user=solo)
    with pytest.raises(IntegrityError, match="is entered solo"), transaction.atomic():
        RegistrationFactory(tournament=tournament, user=None, team=other_team)
    assert Registration.objects.filter(tournament=tournament).count() == 2
