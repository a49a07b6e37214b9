"""recompute_user_stats: lifetime, per-game and per-season rows back to the ledger's values, for one user, the first
N or everyone; --dry-run writes nothing; progress is shown."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from stats.models import UserGameStats, UserProfileStats, UserSeasonStats
from tests.factories import UserFactory
from tests.read_side import play_match

pytestmark = pytest.mark.django_db


def drifted_players(n: int) -> list:
    users = sorted((UserFactory() for _ in range(n)), key=lambda u: u.pk)
    for user in users:
        play_match(user, "won", game="tennis", season=2020)
        UserProfileStats.objects.filter(profile_id=user.pk).update(matches_won=9)
        UserGameStats.objects.filter(profile_id=user.pk).update(matches_won=9)
        UserSeasonStats.objects.filter(profile_id=user.pk).delete()
    return users


def state(user) -> tuple:
    return (
        UserProfileStats.objects.get(profile_id=user.pk).matches_won,
        UserGameStats.objects.get(profile_id=user.pk).matches_won,
        list(UserSeasonStats.objects.filter(profile_id=user.pk).values_list("season", "matches_won")),
    )


def run(*args) -> str:
    out = io.StringIO()
    call_command("recompute_user_stats", *args, stdout=out)
    return out.getvalue()


def test_one_user_the_first_n_and_everyone():
    a, b, c = drifted_players(3)
    repaired, drifted = (1, 1, [(2020, 1)]), (9, 9, [])
    run("--user-id", str(b.pk))
    assert [state(u) for u in (a, b, c)] == [drifted, repaired, drifted]
    assert min(UserProfileStats.objects.values_list("profile_id", flat=True)) == a.pk  # the first by id
    assert "recomputed 1 user(s)" in run("--limit", "1")
    assert [state(u) for u in (a, b, c)] == [repaired, repaired, drifted]
    out = run()
    assert [state(u) for u in (a, b, c)] == [repaired] * 3
    assert "recompute_user_stats: users: 3/3" in out  # the progress lines (piped output)


def test_a_dry_run_writes_nothing_and_an_unknown_user_is_an_error():
    (a,) = drifted_players(1)
    out = run("--dry-run", "--user-id", str(a.pk))
    assert out.startswith("dry run: would recompute 1 user(s)")
    assert state(a) == (9, 9, [])
    with pytest.raises(CommandError, match="No user with id"):
        run("--user-id", "999999999")
