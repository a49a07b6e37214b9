"""The player's current teams (active memberships) on the stats API and the profile page: in the stats row's own
query, cached with the stats, gone from the cache when a membership change is recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from stats.selectors.lifetime import cached_stats, load_stats
from tests.factories import TeamFactory, TeamMembershipFactory, UserFactory
from tests.ledger_helpers import record
from tests.read_side import fresh_cache  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]


def test_current_teams_on_the_api_and_the_page_and_after_leaving(
    client, django_assert_num_queries, django_capture_on_commit_callbacks
):
    player = UserFactory()
    record(player.profile)
    now = timezone.now()
    foxes = TeamMembershipFactory(user=player, team=TeamFactory(name="Foxes"), joined_at=now - timedelta(days=9))
    owls = TeamMembershipFactory(user=player, team=TeamFactory(name="Owls"), joined_at=now - timedelta(days=5))
    gone = TeamMembershipFactory(user=player, team=TeamFactory(name="Bats"), joined_at=now - timedelta(days=7))
    gone.left_at = now - timedelta(days=1)
    gone.save()
    record(foxes, owls, gone)

    with django_assert_num_queries(1):  # the stats row and its teams in one statement
        teams = load_stats(player.pk)["current_teams"]
    assert [(t["team_id"], t["team"]) for t in teams] == [(foxes.team_id, "Foxes"), (owls.team_id, "Owls")]

    body = client.get(f"/api/users/{player.pk}/stats/").json()
    assert [t["team"] for t in body["current_teams"]] == ["Foxes", "Owls"]
    assert "Foxes, Owls" in client.get(f"/u/{player.username}/").content.decode()

    assert [t["team"] for t in cached_stats(player.pk)["current_teams"]] == ["Foxes", "Owls"]  # cached now
    owls.left_at = timezone.now()
    owls.save()
    with django_capture_on_commit_callbacks(execute=True):
        record(owls)  # team_left recorded: the player's cached stats are dropped after commit
    assert [t["team"] for t in cached_stats(player.pk)["current_teams"]] == ["Foxes"]


def test_a_player_without_a_stats_row_yet_has_their_teams_too():
    player = UserFactory()
    TeamMembershipFactory(user=player, team=TeamFactory(name="Foxes"))
    assert [t["team"] for t in load_stats(player.pk)["current_teams"]] == ["Foxes"]
