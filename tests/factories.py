"""factory_boy factories for the source models. Users get their profile and wallet from the platform's receivers."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.utils import timezone

from esports.achievements.models import Achievement, UserAchievement
from esports.economy.models import DeltaCrownTransaction
from esports.profiles.models import Follow
from esports.teams.models import Team, TeamMembership
from esports.tournaments.models import Match, Registration, Tournament, TournamentResult

ModelT = TypeVar("ModelT")


class ModelFactory(factory.django.DjangoModelFactory[ModelT]):
    """A DjangoModelFactory whose call is typed as what it returns: an instance of its model."""

    class Meta:
        abstract = True

    if TYPE_CHECKING:
        # factory_boy annotates create()/build() with the model but leaves __new__ untyped, so `UserFactory()` would
        # check as a UserFactory; at run time the metaclass returns the created model instance. mypy refuses a
        # __new__ that returns anything but its own class, hence the one ignore.
        def __new__(cls, *args: Any, **kwargs: Any) -> ModelT: ...  # type: ignore[misc]


class UserFactory(ModelFactory[User]):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"player{n}")
    first_name = factory.Faker("first_name")


class FollowFactory(ModelFactory[Follow]):
    class Meta:
        model = Follow

    follower = factory.SubFactory(UserFactory)
    followee = factory.SubFactory(UserFactory)


class TournamentFactory(ModelFactory[Tournament]):
    class Meta:
        model = Tournament

    name = factory.Sequence(lambda n: f"Cup {n}")
    game = "valorant"
    status = Tournament.Status.ONGOING


class TeamFactory(ModelFactory[Team]):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    game = "valorant"
    created_by = factory.SubFactory(UserFactory)


class TeamMembershipFactory(ModelFactory[TeamMembership]):
    class Meta:
        model = TeamMembership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    joined_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=30))


class RegistrationFactory(ModelFactory[Registration]):
    """A confirmed, checked-in solo entry unless told otherwise."""

    class Meta:
        model = Registration

    tournament = factory.SubFactory(TournamentFactory)
    user = factory.SubFactory(UserFactory)
    team = None
    status = Registration.Status.CONFIRMED
    checked_in = True


class MatchFactory(ModelFactory[Match]):
    """A scheduled match between two fresh entries of the same tournament."""

    class Meta:
        model = Match

    tournament = factory.SubFactory(TournamentFactory)
    round = "R16"
    participant1 = factory.SubFactory(RegistrationFactory, tournament=factory.SelfAttribute("..tournament"))
    participant2 = factory.SubFactory(RegistrationFactory, tournament=factory.SelfAttribute("..tournament"))
    state = Match.State.SCHEDULED


class TournamentResultFactory(ModelFactory[TournamentResult]):
    class Meta:
        model = TournamentResult

    tournament = factory.SubFactory(TournamentFactory)
    winner = factory.SubFactory(RegistrationFactory, tournament=factory.SelfAttribute("..tournament"))
    runner_up = factory.SubFactory(RegistrationFactory, tournament=factory.SelfAttribute("..tournament"))


class TransactionFactory(ModelFactory[DeltaCrownTransaction]):
    class Meta:
        model = DeltaCrownTransaction

    wallet = factory.LazyAttribute(lambda o: UserFactory().profile.wallet)
    amount = 100
    reason = "prize"


class AchievementFactory(ModelFactory[Achievement]):
    class Meta:
        model = Achievement
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"achievement-{n}")
    name = factory.LazyAttribute(lambda o: o.code.replace("-", " ").title())
    tier = Achievement.Tier.MINOR


class UserAchievementFactory(ModelFactory[UserAchievement]):
    class Meta:
        model = UserAchievement

    user = factory.SubFactory(UserFactory)
    achievement = factory.SubFactory(AchievementFactory)
    unlocked_at = factory.LazyFunction(timezone.now)


def solo_user(entry: Registration) -> User:
    """The user of a solo entry, RegistrationFactory's default (a team entry has none)."""
    assert entry.user is not None, f"registration {entry.pk} is a team entry"
    return entry.user


def solo_user_id(entry: Registration) -> int:
    """solo_user's id, without loading the user."""
    assert entry.user_id is not None, f"registration {entry.pk} is a team entry"
    return entry.user_id


def complete_match(match: Match, winner: Registration) -> Match:
    """Save the match as completed with `winner` (a participant) through the ORM, so the receivers fire."""
    match.winner = winner
    match.loser = match.participant2 if winner.pk == match.participant1_id else match.participant1
    match.state = Match.State.COMPLETED
    match.completed_at = match.completed_at or timezone.now()
    match.save()
    return match
