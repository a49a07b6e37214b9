"""The stats projection: each event moves exactly its counters, once; counters never go negative; events and stats
commit together; recompute from the ledger agrees with the incremental apply."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from activity import projection
from activity.append import append
from activity.derivation import Derivation
from activity.event_types import EventType as E
from activity.events import NewEvent
from activity.models import UserActivity
from esports.tournaments.models import Match, Registration
from stats.counters import COUNTER_FIELDS
from stats.models import UserProfileStats
from stats.recompute import recompute_stats
from tests.factories import (
    MatchFactory,
    RegistrationFactory,
    TournamentFactory,
    TournamentResultFactory,
    TransactionFactory,
    UserAchievementFactory,
    UserFactory,
    complete_match,
    solo_user,
    solo_user_id,
)
from tests.ledger_helpers import all_counters, counters, nonzero, record

T0 = timezone.now() - timedelta(days=1)

# What one event of each type does to the counters, written out by hand (not read from stats.counters): a type
# added to the vocabulary without a line here fails test_every_event_type_has_an_expected_effect.
EXPECTED_EFFECT: dict[str, dict[str, int]] = {
    E.TOURNAMENT_REGISTERED: {"tournaments_registered": 1},
    E.TOURNAMENT_JOINED: {"tournaments_played": 1},
    E.TOURNAMENT_COMPLETED: {"tournaments_completed": 1},
    E.TOURNAMENT_WON: {"tournaments_won": 1},
    E.TOURNAMENT_RUNNER_UP: {"tournaments_runner_up": 1},
    E.TOURNAMENT_TOP4: {"tournaments_top4": 1},
    E.MATCH_PLAYED: {"matches_played": 1},
    E.MATCH_WON: {"matches_won": 1},
    E.MATCH_LOST: {"matches_lost": 1},
    E.COINS_EARNED: {"total_earned": 250},
    E.COINS_SPENT: {"total_spent": 40},
    E.ACHIEVEMENT_UNLOCKED: {"achievements_count": 1},
    E.TEAM_CREATED: {"teams_created": 1},
    E.TEAM_JOINED: {"teams_joined": 1, "current_teams_count": 1},
    E.TEAM_LEFT: {"current_teams_count": -1},
    E.PROFILE_CREATED: {},
    E.LEVEL_UP: {},
    E.KYC_VERIFIED: {},
    E.DISPUTE_FILED: {"disputes_filed": 1},
    E.DISPUTE_FILED_REVERSED: {"disputes_filed": -1},
    E.MATCH_PLAYED_REVERSED: {"matches_played": -1},
    E.MATCH_WON_REVERSED: {"matches_won": -1},
    E.MATCH_LOST_REVERSED: {"matches_lost": -1},
    E.TOURNAMENT_WON_REVERSED: {"tournaments_won": -1},
    E.TOURNAMENT_RUNNER_UP_REVERSED: {"tournaments_runner_up": -1},
    E.TOURNAMENT_TOP4_REVERSED: {"tournaments_top4": -1},
    E.TOURNAMENT_REGISTERED_REVERSED: {"tournaments_registered": -1},
    E.TOURNAMENT_JOINED_REVERSED: {"tournaments_played": -1},
    E.TOURNAMENT_COMPLETED_REVERSED: {"tournaments_completed": -1},
    E.COINS_EARNED_REVERSED: {"total_earned": -250},
    E.COINS_SPENT_REVERSED: {"total_spent": -40},
    E.ACHIEVEMENT_UNLOCKED_REVERSED: {"achievements_count": -1},
    E.TEAM_CREATED_REVERSED: {"teams_created": -1},
    E.TEAM_JOINED_REVERSED: {"teams_joined": -1, "current_teams_count": -1},
    E.TEAM_LEFT_REVERSED: {"current_teams_count": 1},
    E.TOURNAMENT_PLACED: {"placements_counted": 1, "placements_sum": 5},
    E.TOURNAMENT_PLACED_REVERSED: {"placements_counted": -1, "placements_sum": -5},
}
AMOUNTS: dict[str, int] = {
    E.TOURNAMENT_PLACED: 5,  # a quarter-final finish: averaged, so it carries its placement
    E.TOURNAMENT_PLACED_REVERSED: 5,
    E.COINS_EARNED: 250,
    E.COINS_SPENT: 40,
    E.COINS_EARNED_REVERSED: 250,
    E.COINS_SPENT_REVERSED: 40,
}
# Events that take a counter down need it above zero first.
PRECONDITION = {
    E.TEAM_LEFT: E.TEAM_JOINED,
    E.TOURNAMENT_PLACED_REVERSED: E.TOURNAMENT_PLACED,
    E.MATCH_PLAYED_REVERSED: E.MATCH_PLAYED,
    E.MATCH_WON_REVERSED: E.MATCH_WON,
    E.MATCH_LOST_REVERSED: E.MATCH_LOST,
    E.TOURNAMENT_WON_REVERSED: E.TOURNAMENT_WON,
    E.TOURNAMENT_RUNNER_UP_REVERSED: E.TOURNAMENT_RUNNER_UP,
    E.TOURNAMENT_TOP4_REVERSED: E.TOURNAMENT_TOP4,
    E.TOURNAMENT_REGISTERED_REVERSED: E.TOURNAMENT_REGISTERED,
    E.TOURNAMENT_JOINED_REVERSED: E.TOURNAMENT_JOINED,
    E.TOURNAMENT_COMPLETED_REVERSED: E.TOURNAMENT_COMPLETED,
    E.COINS_EARNED_REVERSED: E.COINS_EARNED,
    E.COINS_SPENT_REVERSED: E.COINS_SPENT,
    E.ACHIEVEMENT_UNLOCKED_REVERSED: E.ACHIEVEMENT_UNLOCKED,
    E.TEAM_CREATED_REVERSED: E.TEAM_CREATED,
    E.TEAM_JOINED_REVERSED: E.TEAM_JOINED,
    E.DISPUTE_FILED_REVERSED: E.DISPUTE_FILED,
}

_source_ids = iter(range(1, 10**6))


def append_one(user_id: int, event_type: str, at=T0):
    source_id = next(_source_ids)
    event = NewEvent(user_id, event_type, at, "test.source", source_id, amount=AMOUNTS.get(event_type))
    return append([Derivation("test.source", source_id, (event,))])


def test_every_event_type_has_an_expected_effect():
    assert set(EXPECTED_EFFECT) == set(E.values)


@pytest.mark.django_db
@pytest.mark.parametrize("event_type", sorted(EXPECTED_EFFECT))
def test_each_event_type_moves_exactly_its_counters(event_type):
    user = UserFactory()
    if event_type in PRECONDITION:
        append_one(user.id, PRECONDITION[event_type])
    before = counters(user)
    append_one(user.id, event_type)
    after = counters(user)
    assert nonzero({f: after[f] - before[f] for f in COUNTER_FIELDS}) == EXPECTED_EFFECT[event_type]


@pytest.mark.django_db
def test_a_won_match_adds_one_to_won_and_one_to_played_never_two():
    match = MatchFactory()
    complete_match(match, match.participant1)
    winner = match.participant1.user
    for _ in range(3):
        record(match)
    append(
        [
            Derivation(
                "tournaments.match",
                match.id,
                tuple(
                    NewEvent(winner.id, t, match.completed_at, "tournaments.match", match.id)
                    for t in (E.MATCH_PLAYED, E.MATCH_WON)
                ),
            )
        ]
    )
    assert nonzero(counters(winner)) == {"matches_played": 1, "matches_won": 1}


@pytest.mark.django_db
def test_win_rate_with_zero_matches_is_zero():
    user = UserFactory()
    record(user.profile)
    stats = UserProfileStats.objects.get(profile_id=user.id)
    assert (stats.win_rate, stats.tournament_win_rate, stats.net_earnings) == (Decimal(0), Decimal(0), Decimal(0))
    assert stats.to_dict()["win_rate"] == "0"


@pytest.mark.django_db
def test_computed_properties_and_to_dict():
    stats = UserProfileStats(
        profile_id=1,
        matches_played=3,
        matches_won=2,
        tournaments_played=4,
        tournaments_won=1,
        total_earned=500,
        total_spent=120,
    )
    assert stats.win_rate == Decimal("66.67")
    assert stats.tournament_win_rate == Decimal("25.00")
    assert stats.net_earnings == Decimal(380)
    data = stats.to_dict()
    assert {k: data[k] for k in ("user_id", "matches_won", "win_rate", "net_earnings")} == {
        "user_id": 1,
        "matches_won": 2,
        "win_rate": "66.67",
        "net_earnings": "380",
    }
    assert set(COUNTER_FIELDS) <= set(data)


@pytest.mark.django_db
def test_last_activity_follows_the_latest_event_and_never_moves_back():
    user = UserFactory()
    append_one(user.id, E.ACHIEVEMENT_UNLOCKED, at=T0)
    append_one(user.id, E.ACHIEVEMENT_UNLOCKED, at=T0 - timedelta(days=30))  # a late-recorded old event
    stats = UserProfileStats.objects.get(profile_id=user.id)
    assert stats.last_activity_at == T0
    assert stats.stats_updated_at is not None


@pytest.mark.django_db
def test_recording_a_profile_gives_the_user_a_zeroed_stats_row():
    user = UserFactory()
    assert not UserProfileStats.objects.filter(profile_id=user.id).exists()
    record(user.profile)
    assert nonzero(counters(user)) == {}
    assert UserProfileStats.objects.filter(profile_id=user.id).exists()


@pytest.mark.django_db
def test_several_tournaments_accumulate():
    user = UserFactory()
    for placement in ("winner", "runner_up", "winner", None):
        tournament = TournamentFactory()
        mine = RegistrationFactory(tournament=tournament, user=user)
        other, third = RegistrationFactory.create_batch(2, tournament=tournament)
        record(mine)
        match = MatchFactory(tournament=tournament, participant1=mine, participant2=other)
        complete_match(match, mine if placement == "winner" else other)
        record(match)
        winner, runner_up = {"winner": (mine, other), "runner_up": (other, mine), None: (other, third)}[placement]
        record(TournamentResultFactory(tournament=tournament, winner=winner, runner_up=runner_up))
    assert nonzero(counters(user)) == {
        "tournaments_registered": 4,
        "tournaments_played": 4,
        "tournaments_completed": 4,
        "tournaments_won": 2,
        "tournaments_runner_up": 1,
        "matches_played": 4,
        "matches_won": 2,
        "matches_lost": 2,
        # placed 1, 2, 1 and 9 (the R16 loss of the fourth): average_placement 3.25
        "placements_counted": 4,
        "placements_sum": 13,
    }
    assert UserProfileStats.objects.get(profile_id=user.id).average_placement == Decimal("3.25")


# --- never negative; all or nothing ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("field", COUNTER_FIELDS)
def test_the_database_refuses_a_negative_counter(field):
    user = UserFactory()
    record(user.profile)
    with pytest.raises(IntegrityError), transaction.atomic():
        UserProfileStats.objects.filter(profile_id=user.id).update(**{field: -1})


@pytest.mark.django_db
def test_an_append_that_would_take_a_counter_below_zero_rolls_back_its_events_too():
    user = UserFactory()
    record(user.profile)
    events_before = UserActivity.objects.count()
    source_id = next(_source_ids)
    with pytest.raises(IntegrityError), transaction.atomic():
        append(
            [
                Derivation(
                    "test.source",
                    source_id,
                    (
                        NewEvent(user.id, E.ACHIEVEMENT_UNLOCKED, T0, "test.source", source_id),
                        NewEvent(user.id, E.TEAM_LEFT, T0, "test.source", source_id),  # left a team never joined
                    ),
                )
            ]
        )
    assert UserActivity.objects.count() == events_before
    assert nonzero(counters(user)) == {}


@pytest.mark.django_db(transaction=True)
def test_events_and_stats_commit_together_or_not_at_all(monkeypatch, enqueued):
    unlock = UserAchievementFactory()
    TransactionFactory(wallet=unlock.user.profile.wallet, amount=50)

    def broken_projector(inserted):
        raise RuntimeError("projector down")

    # after the real stats apply, so its UPDATE has run by the time this one fails
    monkeypatch.setattr(projection, "_projectors", [*projection._projectors, broken_projector])
    with pytest.raises(RuntimeError, match="projector down"):
        record(unlock)
    assert not UserActivity.objects.filter(user=unlock.user).exists()
    assert nonzero(counters(unlock.user)) == {}
    monkeypatch.setattr(projection, "_projectors", [p for p in projection._projectors if p is not broken_projector])
    record(unlock)
    assert UserActivity.objects.filter(user=unlock.user).count() == 1
    assert nonzero(counters(unlock.user)) == {"achievements_count": 1}


# --- recompute ------------------------------------------------------------------------------------------------


def play_a_small_season() -> list[int]:
    tournament = TournamentFactory()
    regs = RegistrationFactory.create_batch(4, tournament=tournament)
    no_show = RegistrationFactory(tournament=tournament, status=Registration.Status.NO_SHOW, checked_in=False)
    record(*[solo_user(r).profile for r in regs + [no_show]])  # every user has a stats row from their profile on
    record(*regs, no_show)
    semis = [
        MatchFactory(tournament=tournament, participant1=regs[0], participant2=regs[1], round="SF"),
        MatchFactory(tournament=tournament, participant1=regs[2], participant2=regs[3], round="SF"),
    ]
    complete_match(semis[0], regs[0])
    complete_match(semis[1], regs[3])
    final = MatchFactory(tournament=tournament, participant1=regs[0], participant2=regs[3], round="F")
    complete_match(final, regs[3])
    record(*semis, final)
    final.state = Match.State.DISPUTED
    final.save()
    complete_match(final, regs[0])
    record(final)
    record(
        TournamentResultFactory(
            tournament=tournament, winner=regs[0], runner_up=regs[3], third_place=regs[1], fourth_place=regs[2]
        )
    )
    record(
        TransactionFactory(wallet=solo_user(regs[0]).profile.wallet, amount=1000),
        TransactionFactory(wallet=solo_user(regs[0]).profile.wallet, amount=-300),
    )
    record(UserAchievementFactory(user=solo_user(regs[3])))
    return [solo_user_id(r) for r in regs + [no_show]]


@pytest.mark.django_db
def test_recompute_equals_the_incremental_result():
    users = play_a_small_season()
    incremental = all_counters()
    assert recompute_stats(users) == len(users)
    assert all_counters() == incremental
    assert nonzero(incremental[users[0]]) == {
        "tournaments_registered": 1,
        "tournaments_played": 1,
        "tournaments_completed": 1,
        "tournaments_won": 1,
        "matches_played": 2,
        "matches_won": 2,
        "total_earned": 1000,
        "total_spent": 300,
        "placements_counted": 1,
        "placements_sum": 1,
    }


@pytest.mark.django_db
def test_recompute_repairs_a_drifted_row_and_creates_a_missing_one():
    users = play_a_small_season()
    expected = all_counters()
    UserProfileStats.objects.filter(profile_id=users[0]).update(matches_won=40, total_earned=7)
    UserProfileStats.objects.filter(profile_id=users[1]).delete()
    silent = UserFactory()  # nothing recorded yet
    recompute_stats(users + [silent.id])
    repaired = all_counters()
    assert {u: repaired[u] for u in users} == {u: expected[u] for u in users}
    assert nonzero(repaired[silent.id]) == {}


# --- schema ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_projection_has_leaderboard_indexes():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, UserProfileStats._meta.db_table)
    leading = {
        (c["columns"][0], (c.get("orders") or ["ASC"])[0]) for c in constraints.values() if c["index"] and c["columns"]
    }
    for counter in ("tournaments_won", "matches_won", "total_earned"):
        assert (counter, "DESC") in leading, f"no index leads with {counter} descending"
