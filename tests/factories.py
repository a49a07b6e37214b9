"""factory_boy factories for the source models. Users get their profile and wallet from the platform's receivers."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from esports.achievements.models import Achievement, UserAchievement
from esports.economy.models import DeltaCrownTransaction
from esports.profiles.models import Follow
from esports.teams.models import Team, TeamMembership
from esports.tournaments.models import Match, Registration, Tournament, TournamentResult


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"player{n}")
    first_name = factory.Faker("first_name")


class FollowFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Follow

    follower = factory.SubFactory(UserFactory)
    followee = factory.SubFactory(UserFactory)


class TournamentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tournament

    name = factory.Sequence(lambda n: f"Cup {n}")
    game = "valorant"
    status = Tournament.Status.ONGOING


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    game = "valorant"
    created_by = factory.SubFactory(UserFactory)


class TeamMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TeamMembership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    joined_at = factory.LazyFunction(lambda: timezone.now() - timezone.timedelta(days=30))


class RegistrationFactory(factory.django.DjangoModelFactory):
    """A confirmed, checked-in solo entry unless told otherwise."""

    class Meta:
        model = Registration

    tournament = factory.SubFactory(TournamentFactory)
    user = factory.SubFactory(UserFactory)
    team = None
    status = Registration.Status.CONFIRMED
    checked_in = True


class MatchFactory(factory.django.DjangoModelFactory):
    """A scheduled match between two fresh entries of the same tournament."""

    class Meta:
        model = Match

    tournament = factory.SubFactory(TournamentFactory)
    round = "R16"
    participant1 = factory.SubFactory(RegistrationFactory, tournament=factory.SelfAttribute("..tournament"))
    participant2 = factory.SubFactory(RegistrationFactory, tournament=factory.SelfAttribute("..tournament"))
    state = Match.State.SCHEDULED


class TournamentResultFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TournamentResult

    tournament = factory.SubFactory(TournamentFactory)
    winner = factory.SubFactory(RegistrationFactory, tournament=factory.SelfAttribute("..tournament"))
    runner_up = factory.SubFactory(RegistrationFactory, tournament=factory.SelfAttribute("..tournament"))


class TransactionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeltaCrownTransaction

    wallet = factory.LazyAttribute(lambda o: UserFactory().profile.wallet)
    amount = 100
    reason = "prize"


class AchievementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Achievement
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"achievement-{n}")
    name = factory.LazyAttribute(lambda o: o.code.replace("-", " ").title())
    tier = Achievement.Tier.MINOR


class UserAchievementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UserAchievement

    user = factory.SubFactory(UserFactory)
    achievement = factory.SubFactory(AchievementFactory)
    unlocked_at = factory.LazyFunction(timezone.now)


def complete_match(match: Match, winner: Registration) -> Match:
    """Save the match as completed with `winner` (a participant) through the ORM, so the receivers fire."""
    match.winner = winner
    match.loser = match.participant2 if winner.pk == match.participant1_id else match.participant1
    match.state = Match.State.COMPLETED
    match.completed_at = match.completed_at or timezone.now()
    match.save()
    return match
