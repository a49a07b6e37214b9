"""generate_platform: same seed, same platform; and the platform has what tests and benchmarks rely on."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q

from esports.achievements.models import UserAchievement
from esports.economy.models import DeltaCrownTransaction, DeltaCrownWallet
from esports.profiles.models import Follow, UserProfile
from esports.teams.models import Team, TeamMembership
from esports.tournaments.models import Match, Registration, Tournament, TournamentResult
from esports.tournaments.synthetic import AS_OF, EPOCH, GeneratorError, generate_platform, platform_fingerprint

pytestmark = pytest.mark.django_db

USERS, TOURNAMENTS = 400, 30


@pytest.fixture
def platform():
    return generate_platform(USERS, TOURNAMENTS, seed=7)


def _delete_platform(seed: int) -> None:
    # Money is undeletable (a database trigger); wiping a generated platform is the database owner's act with the
    # triggers off for this transaction only.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "DELETE FROM economy_deltacrowntransaction t USING economy_deltacrownwallet w, auth_user u "
            "WHERE t.wallet_id = w.id AND w.profile_id = u.id AND u.username LIKE %s",
            [f"gen{seed}\\_%"],
        )
    Tournament.objects.filter(external_id__startswith=f"gen{seed}-").delete()
    Team.objects.filter(created_by__username__startswith=f"gen{seed}_").delete()
    get_user_model().objects.filter(username__startswith=f"gen{seed}_").delete()


def test_the_same_seed_gives_the_same_platform_and_another_seed_a_different_one():
    first = generate_platform(USERS, TOURNAMENTS, seed=11)
    fingerprint = platform_fingerprint(11)
    _delete_platform(11)
    assert platform_fingerprint(11) != fingerprint  # the fingerprint sees the rows: gone, it changes

    # Regenerated after the first was deleted: new database ids, same rows.
    second = generate_platform(USERS, TOURNAMENTS, seed=11)
    assert platform_fingerprint(11) == fingerprint
    assert second.counts == first.counts

    generate_platform(USERS, TOURNAMENTS, seed=12)
    assert platform_fingerprint(12) != fingerprint


def test_a_seed_cannot_be_generated_twice_into_one_database(platform):
    with pytest.raises(GeneratorError, match="seed 7 was already generated"):
        generate_platform(USERS, TOURNAMENTS, seed=7)
    with pytest.raises(CommandError, match="seed 7 was already generated"):
        call_command("generate_platform", "--users", "20", "--tournaments", "1", "--seed", "7", stdout=io.StringIO())


def test_every_generated_user_has_a_profile_and_a_wallet_dated_when_they_joined(platform):
    users = get_user_model().objects.filter(username__startswith="gen7_")
    assert users.count() == USERS
    assert UserProfile.objects.filter(user__in=users, created_at=F("user__date_joined")).count() == USERS
    assert (
        DeltaCrownWallet.objects.filter(profile__user__in=users, created_at=F("profile__user__date_joined")).count()
        == USERS
    )


def test_team_entries_exist_and_each_has_members_active_when_it_registered(platform):
    active_at_registration = TeamMembership.objects.filter(
        team=OuterRef("team"),
        joined_at__lte=OuterRef("created_at"),
    ).filter(Q(left_at__isnull=True) | Q(left_at__gt=OuterRef("created_at")))
    team_entries = Registration.objects.filter(team__isnull=False)
    assert team_entries.count() > 0
    assert Match.objects.filter(participant1__team__isnull=False, state=Match.State.COMPLETED).exists()
    assert not team_entries.exclude(Exists(active_at_registration)).exists()
    assert TeamMembership.objects.filter(left_at__isnull=False).exists()  # some members left
    assert Registration.objects.filter(user__isnull=False).exists()


def test_matches_cover_every_state_a_platform_has_including_disputes(platform):
    states = set(Match.objects.values_list("state", flat=True))
    assert {"completed", "forfeit", "disputed", "scheduled"} <= states
    assert not Match.objects.filter(state__in=("completed", "forfeit"), winner__isnull=True).exists()
    statuses = set(Registration.objects.values_list("status", "checked_in"))
    assert {("confirmed", True), ("no_show", False), ("cancelled", False), ("pending", False)} <= statuses


def test_results_follow_the_bracket_of_completed_tournaments(platform):
    completed = Tournament.objects.filter(status=Tournament.Status.COMPLETED)
    assert TournamentResult.objects.count() == completed.count() > 0
    for result in TournamentResult.objects.select_related("tournament"):
        final = Match.objects.get(tournament=result.tournament, round="F")
        assert (result.winner_id, result.runner_up_id) == (final.winner_id, final.loser_id)


def test_coin_amounts_are_never_zero_and_go_both_ways(platform):
    amounts = DeltaCrownTransaction.objects.filter(wallet__profile__user__username__startswith="gen7_")
    assert not amounts.filter(amount=0).exists()
    assert amounts.filter(amount__gt=0).exists() and amounts.filter(amount__lt=0).exists()


def test_no_generated_wallet_is_ever_overdrawn(platform):
    """In time order every wallet's running balance stays >= 0: a history the economy service would have accepted
    (and one the wallet's CHECK cached_balance >= 0 lets the bulk refresh cache)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FILTER (WHERE running < 0), COUNT(*) FILTER (WHERE amount < 0) FROM ("
            "  SELECT t.amount, SUM(t.amount) OVER (PARTITION BY t.wallet_id ORDER BY t.created_at, t.id) AS running"
            "    FROM economy_deltacrowntransaction t JOIN economy_deltacrownwallet w ON w.id = t.wallet_id"
            "    JOIN auth_user u ON u.id = w.profile_id WHERE u.username LIKE %s) AS history",
            ["gen7\\_%"],
        )
        overdrawn, spends = cursor.fetchone()
    assert spends > 0 and overdrawn == 0


def test_follows_and_achievements_exist_and_times_are_spread_over_the_platform_year(platform):
    assert Follow.objects.count() > USERS and not Follow.objects.filter(follower=F("followee")).exists()
    assert UserAchievement.objects.count() > 0
    created = list(Registration.objects.values_list("created_at", flat=True))
    assert all(EPOCH <= at <= AS_OF for at in created)
    assert len(set(created)) == len(created)  # one time per registration, not one insert time for all


def test_the_command_prints_the_backend_the_counts_and_the_fingerprint():
    out = io.StringIO()
    call_command("generate_platform", "--users", "40", "--tournaments", "3", "--seed", "21", "--checksum", stdout=out)
    text = out.getvalue()
    assert "database: postgresql" in text
    assert "users: 40" in text and "rows/s" in text
    assert f"fingerprint (seed 21): {platform_fingerprint(21)}" in text


def test_sizes_too_small_to_make_a_platform_are_refused():
    with pytest.raises(CommandError, match="at least 16"):
        call_command("generate_platform", "--users", "3", "--tournaments", "1", "--seed", "1", stdout=io.StringIO())
