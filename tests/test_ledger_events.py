"""Recording source rows writes the right ledger rows: one per event, right user, type, time, source and visibility."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from activity.event_types import EventType as E
from activity.models import UserActivity
from activity.recording import record_events_for
from esports.economy.models import DeltaCrownTransaction
from esports.profiles.models import UserProfile
from esports.tournaments.models import Match, Registration
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
from tests.ledger_helpers import ledger_counts, ledger_rows_of, record

pytestmark = pytest.mark.django_db


# --- each source kind ----------------------------------------------------------------------------------------


def test_profile_records_profile_created_at_profile_creation():
    user = UserFactory()
    profile = UserProfile.objects.get(user=user)
    record(profile)
    event = UserActivity.objects.get(source_model="profiles.userprofile", source_id=user.id)
    assert (event.user_id, event.event_type, event.timestamp) == (user.id, E.PROFILE_CREATED, profile.created_at)


def test_team_records_team_created_for_its_creator():
    team = TeamFactory()
    record(team)
    assert ledger_rows_of(team) == [(team.created_by_id, E.TEAM_CREATED)]


def test_membership_records_team_joined_then_team_left_once_left():
    membership = TeamMembershipFactory()
    record(membership)
    assert ledger_rows_of(membership) == [(membership.user_id, E.TEAM_JOINED)]
    membership.left_at = timezone.now()
    membership.save()
    record(membership)
    assert ledger_rows_of(membership) == [(membership.user_id, E.TEAM_JOINED), (membership.user_id, E.TEAM_LEFT)]
    left = UserActivity.objects.get(
        source_model="teams.teammembership", source_id=membership.id, event_type=E.TEAM_LEFT
    )
    assert left.timestamp == membership.left_at


def test_registration_records_registered_then_joined_at_check_in():
    registration = RegistrationFactory(status=Registration.Status.PENDING, checked_in=False)
    record(registration)
    assert ledger_rows_of(registration) == []
    registration.status = Registration.Status.CONFIRMED
    registration.save()
    record(registration)
    assert ledger_rows_of(registration) == [(registration.user_id, E.TOURNAMENT_REGISTERED)]
    registration.checked_in, registration.checked_in_at = True, timezone.now()
    registration.save()
    record(registration)
    assert ledger_rows_of(registration) == [
        (registration.user_id, E.TOURNAMENT_JOINED),
        (registration.user_id, E.TOURNAMENT_REGISTERED),
    ]
    registered = UserActivity.objects.get(
        source_id=registration.id, source_model="tournaments.registration", event_type=E.TOURNAMENT_REGISTERED
    )
    assert registered.timestamp == registration.created_at
    assert registered.metadata["tournament_id"] == registration.tournament_id


def test_registration_cancelled_after_confirmation_keeps_what_was_recorded():
    registration = RegistrationFactory(checked_in=False)
    record(registration)
    registration.status = Registration.Status.CANCELLED
    registration.save()
    record(registration)
    assert ledger_rows_of(registration) == [(registration.user_id, E.TOURNAMENT_REGISTERED)]


def test_no_show_records_no_tournament_joined():
    registration = RegistrationFactory(status=Registration.Status.NO_SHOW, checked_in=False)
    record(registration)
    assert ledger_rows_of(registration) == []


def test_match_completion_gives_played_won_lost_to_the_right_users():
    match = MatchFactory()
    winner, loser = match.participant2, match.participant1
    complete_match(match, winner)
    record(match)
    assert ledger_rows_of(match) == sorted(
        [
            (winner.user_id, E.MATCH_PLAYED),
            (winner.user_id, E.MATCH_WON),
            (loser.user_id, E.MATCH_PLAYED),
            (loser.user_id, E.MATCH_LOST),
        ]
    )
    assert set(ledger_rows_of(match, fields=("timestamp",))) == {match.completed_at}


def test_forfeit_records_played_for_both_and_no_win():
    match = MatchFactory()
    match.state, match.winner, match.loser = Match.State.FORFEIT, match.participant1, match.participant2
    match.completed_at = timezone.now()
    match.save()
    record(match)
    assert ledger_rows_of(match) == sorted(
        [(match.participant1.user_id, E.MATCH_PLAYED), (match.participant2.user_id, E.MATCH_PLAYED)]
    )


@pytest.mark.parametrize(
    "state", [Match.State.SCHEDULED, Match.State.LIVE, Match.State.DISPUTED, Match.State.CANCELLED]
)
def test_match_that_is_not_finished_records_nothing(state):
    match = MatchFactory(state=state)
    record(match)
    assert ledger_rows_of(match) == []


def test_tournament_result_gives_placements_and_completed_to_every_checked_in_entrant():
    tournament = TournamentFactory()
    winner, runner_up, third, fourth, fifth = RegistrationFactory.create_batch(5, tournament=tournament)
    not_checked_in = RegistrationFactory(tournament=tournament, checked_in=False)
    no_show = RegistrationFactory(tournament=tournament, status=Registration.Status.NO_SHOW, checked_in=False)
    result = TournamentResultFactory(
        tournament=tournament, winner=winner, runner_up=runner_up, third_place=third, fourth_place=fourth
    )
    record(result)
    completed = [(r.user_id, E.TOURNAMENT_COMPLETED) for r in (winner, runner_up, third, fourth, fifth)]
    assert ledger_rows_of(result) == sorted(
        completed
        + [
            (winner.user_id, E.TOURNAMENT_WON),
            (runner_up.user_id, E.TOURNAMENT_RUNNER_UP),
            (third.user_id, E.TOURNAMENT_TOP4),
            (fourth.user_id, E.TOURNAMENT_TOP4),
            # placed 1-4 as the result names them; the fifth lost no knockout match: no placement
            *[(r.user_id, E.TOURNAMENT_PLACED) for r in (winner, runner_up, third, fourth)],
        ]
    )
    assert not UserActivity.objects.filter(user_id__in=[not_checked_in.user_id, no_show.user_id]).exists()


def test_earn_and_spend_by_sign_with_spent_stored_positive():
    earn = TransactionFactory(amount=300, reason="prize")
    spend = DeltaCrownTransaction.objects.create(wallet=earn.wallet, amount=-120, reason="skin")
    record(earn, spend)
    rows = {r.source_id: r for r in UserActivity.objects.filter(source_model="economy.deltacrowntransaction")}
    assert (rows[earn.id].event_type, rows[earn.id].amount) == (E.COINS_EARNED, 300)
    assert (rows[spend.id].event_type, rows[spend.id].amount) == (E.COINS_SPENT, 120)
    assert rows[spend.id].metadata == {"reason": "skin"}
    assert {r.visibility for r in rows.values()} == {"private"}
    assert rows[spend.id].timestamp == spend.created_at


def test_unlocked_achievement_records_achievement_unlocked_at_unlock_time():
    unlocked_at = timezone.now() - timedelta(days=3)
    unlock = UserAchievementFactory(unlocked_at=unlocked_at)
    record(unlock)
    event = UserActivity.objects.get(source_model="achievements.userachievement", source_id=unlock.id)
    assert (event.user_id, event.event_type, event.timestamp) == (unlock.user_id, E.ACHIEVEMENT_UNLOCKED, unlocked_at)
    assert event.visibility == "public"
    assert event.recorded_at > event.timestamp  # when the ledger learned it, not when it happened


def test_team_entry_gives_events_to_members_active_at_registration_time_only():
    team = TeamFactory()
    members = [TeamMembershipFactory(team=team).user for _ in range(3)]
    gone = TeamMembershipFactory(team=team, left_at=timezone.now() - timedelta(days=1)).user
    registration = RegistrationFactory(user=None, team=team, checked_in=False)
    late = TeamMembershipFactory(team=team, joined_at=timezone.now() + timedelta(minutes=1)).user
    record(registration)
    assert ledger_rows_of(registration) == sorted((u.id, E.TOURNAMENT_REGISTERED) for u in members)
    assert not UserActivity.objects.filter(
        user_id__in=[gone.id, late.id], source_model="tournaments.registration"
    ).exists()


def test_a_deleted_source_row_keeps_its_event_and_gains_a_compensation():
    unlock = UserAchievementFactory()
    record(unlock)
    unlock_id = unlock.id
    unlock.delete()
    result = record_events_for("achievements.userachievement", [unlock_id])
    assert result.by_type() == {E.ACHIEVEMENT_UNLOCKED_REVERSED: 1}
    assert record_events_for("achievements.userachievement", [unlock_id]).created == 0  # compensated once
    assert ledger_rows_of("achievements.userachievement", unlock_id, fields=("event_type",)) == [
        E.ACHIEVEMENT_UNLOCKED,
        E.ACHIEVEMENT_UNLOCKED_REVERSED,
    ]


# --- idempotency ----------------------------------------------------------------------------------------------


def test_same_row_recorded_twice_leaves_one_event_each():
    match = MatchFactory()
    complete_match(match, match.participant1)
    first = record(match)
    second = record(match)
    assert len(first.inserted) == 4
    assert second.inserted == []
    assert UserActivity.objects.filter(source_model="tournaments.match", source_id=match.id).count() == 4
    assert ledger_counts(match.participant1.user) == {E.MATCH_PLAYED: 1, E.MATCH_WON: 1}


def test_rows_recorded_in_overlapping_batches_leave_one_event_each():
    transactions = [TransactionFactory(amount=10 * (i + 1)) for i in range(4)]
    record(*transactions[:3])
    result = record(*transactions[1:])
    assert len(result.inserted) == 1
    assert UserActivity.objects.filter(source_model="economy.deltacrowntransaction").count() == 4


@pytest.mark.integration
def test_same_task_delivered_three_times_through_the_worker_leaves_one_event_each(live_worker, tracker):
    from tasks.recording import record_source_change

    match = MatchFactory()
    complete_match(match, match.participant1)
    tracker.wait_idle()  # the receivers' own deliveries of the rows created above
    before = UserActivity.objects.count()
    assert UserActivity.objects.filter(source_model="tournaments.match", source_id=match.id).count() == 4
    for _ in range(3):
        record_source_change.apply_async(("tournaments.match", match.id))
    tracker.wait_idle()
    assert [state for _, args, state, _ in tracker.runs if args == ("tournaments.match", match.id)][-3:] == [
        "SUCCESS"
    ] * 3
    assert UserActivity.objects.count() == before
    assert ledger_counts(match.participant1.user) == {
        E.PROFILE_CREATED: 1,
        E.TOURNAMENT_REGISTERED: 1,
        E.TOURNAMENT_JOINED: 1,
        E.MATCH_PLAYED: 1,
        E.MATCH_WON: 1,
    }
