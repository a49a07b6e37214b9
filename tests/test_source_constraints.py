"""The source models refuse bad rows in the database itself (with the constraint's name) and in model validation
(with a readable message); every user has a profile and a wallet, whichever path created it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from esports.economy.models import DeltaCrownTransaction, DeltaCrownWallet
from esports.profiles.models import Follow, UserProfile
from esports.profiles.services import create_users_bulk, provision_users
from esports.teams.models import TeamMembership
from esports.tournaments.models import Match, Registration
from tests.factories import (
    FollowFactory,
    MatchFactory,
    RegistrationFactory,
    TeamFactory,
    TeamMembershipFactory,
    TournamentFactory,
    TournamentResultFactory,
    TransactionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _registration_with_user_and_team():
    return Registration(
        tournament=TournamentFactory(), user=UserFactory(), team=TeamFactory(), status=Registration.Status.CONFIRMED
    )


def _registration_without_entrant():
    return Registration(tournament=TournamentFactory(), status=Registration.Status.CONFIRMED)


def _zero_transaction():
    return DeltaCrownTransaction(wallet=UserFactory().profile.wallet, amount=0, reason="nothing")


def _match_won_by_an_outsider():
    match = MatchFactory()
    match.winner = RegistrationFactory(tournament=match.tournament)
    match.loser = match.participant2
    match.state = Match.State.COMPLETED
    return match


def _match_lost_by_an_outsider():
    match = MatchFactory()
    match.winner = match.participant1
    match.loser = RegistrationFactory(tournament=match.tournament)
    match.state = Match.State.COMPLETED
    return match


def _match_against_itself():
    match = MatchFactory.build(tournament=TournamentFactory())
    match.participant1 = match.participant2 = RegistrationFactory(tournament=match.tournament)
    return match


def _completed_match_without_outcome():
    match = MatchFactory()
    match.state = Match.State.COMPLETED
    return match


def _self_follow():
    user = UserFactory()
    return Follow(follower=user, followee=user)


def _membership_left_before_joining():
    now = timezone.now()
    return TeamMembership(team=TeamFactory(), user=UserFactory(), joined_at=now, left_at=now - timedelta(days=1))


def _second_active_membership():
    first = TeamMembershipFactory()
    return TeamMembership(team=first.team, user=first.user, joined_at=timezone.now())


BAD_ROWS = [
    (_registration_with_user_and_team, "registration_exactly_one_entrant", "exactly one of user or team"),
    (_registration_without_entrant, "registration_exactly_one_entrant", "exactly one of user or team"),
    (_zero_transaction, "transaction_amount_not_zero", "never 0"),
    (_match_won_by_an_outsider, "match_winner_is_participant", "winner must be one of the participants"),
    (_match_lost_by_an_outsider, "match_loser_is_participant", "loser must be one of the participants"),
    (_match_against_itself, "match_distinct_participants", "two different participants"),
    (_completed_match_without_outcome, "match_completed_has_outcome", "completed match has a winner and a loser"),
    (_self_follow, "follow_not_self", "cannot follow themselves"),
    (_membership_left_before_joining, "membership_left_after_joined", "cannot leave before joining"),
    (_second_active_membership, "membership_one_active", "membership_one_active"),
]


@pytest.mark.parametrize(
    ("build", "constraint", "message"), BAD_ROWS, ids=[b[1] + ":" + b[0].__name__ for b in BAD_ROWS]
)
def test_bad_row_is_rejected_by_the_database_and_by_validation(build, constraint, message):
    row = build()
    with pytest.raises(ValidationError, match=message):
        row.validate_constraints()
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        row.save()


def test_second_result_for_a_tournament_is_rejected():
    first = TournamentResultFactory()
    second = TournamentResultFactory.build(tournament=first.tournament, winner=first.runner_up, runner_up=first.winner)
    with pytest.raises(ValidationError, match="already exists"):
        second.validate_unique()
    with pytest.raises(IntegrityError, match="tournament_id"), transaction.atomic():
        second.save()


def test_duplicate_follow_and_duplicate_solo_entry_are_rejected():
    follow = FollowFactory()
    with pytest.raises(IntegrityError, match="follow_unique_pair"), transaction.atomic():
        Follow.objects.create(follower=follow.follower, followee=follow.followee)
    entry = RegistrationFactory()
    with pytest.raises(IntegrityError, match="registration_unique_user"), transaction.atomic():
        Registration.objects.create(tournament=entry.tournament, user=entry.user)


def test_good_rows_pass_the_same_checks():
    match = MatchFactory()
    match.winner, match.loser, match.state = match.participant1, match.participant2, Match.State.COMPLETED
    match.full_clean()
    match.save()
    TransactionFactory(amount=-5)
    TeamMembershipFactory(left_at=timezone.now())


def test_a_user_created_through_the_orm_gets_a_profile_and_a_wallet():
    user = get_user_model().objects.create_user("alice", first_name="Alice", last_name="Liddell")
    profile = UserProfile.objects.get(user=user)
    assert profile.display_name == "Alice Liddell"
    assert DeltaCrownWallet.objects.filter(profile=profile).count() == 1


def test_users_created_in_bulk_get_a_profile_and_a_wallet_each():
    ids = create_users_bulk([(f"bulk{i}", f"Bulk Player {i}") for i in range(50)])
    assert len(ids) == 50
    assert UserProfile.objects.filter(user_id__in=ids.values()).count() == 50
    assert DeltaCrownWallet.objects.filter(profile_id__in=ids.values()).count() == 50
    assert UserProfile.objects.get(user_id=ids["bulk7"]).display_name == "Bulk Player 7"

    again = create_users_bulk([(f"bulk{i}", "renamed") for i in range(50)])  # idempotent: nothing new, names kept
    assert again == ids
    assert DeltaCrownWallet.objects.filter(profile_id__in=ids.values()).count() == 50
    assert UserProfile.objects.get(user_id=ids["bulk7"]).display_name == "Bulk Player 7"


def test_provisioning_fills_in_what_a_raw_bulk_create_left_out():
    users = get_user_model().objects.bulk_create([get_user_model()(username=f"raw{i}") for i in range(5)])
    ids = [u.pk for u in users]
    assert not UserProfile.objects.filter(user_id__in=ids).exists()  # bulk_create sends no signal
    provision_users(ids)
    assert UserProfile.objects.filter(user_id__in=ids).count() == 5
    assert DeltaCrownWallet.objects.filter(profile_id__in=ids).count() == 5
