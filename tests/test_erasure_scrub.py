"""GDPR erasure also scrubs the erased player's identifiers from other users' events (a team named after them in
every teammate's team_joined), set-based, leaving every other value alone; and the money privacy rule: total_earned
is a public counter, total_spent is hidden from others on every surface that shows stats."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activity.derivation import TEAM_MEMBERSHIP as MEMBERSHIP
from activity.erasure import SCRUBBED, erase_user
from activity.models import UserActivity
from activity.recording import record_events_for
from stats.models import UserProfileStats
from tests.factories import TeamFactory, TeamMembershipFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]


def _team_names_in(user) -> set[str]:
    return set(
        UserActivity.objects.filter(user=user, event_type="team_joined").values_list("metadata__team", flat=True)
    )


def test_erasure_scrubs_a_team_named_after_the_player_from_every_teammates_history():
    alice = UserFactory(username="alicewonder")
    bob, carol = UserFactory(username="bobby"), UserFactory(username="carol")
    named = TeamFactory(name="AliceWonder Army", created_by=bob)
    neutral = TeamFactory(name="Night Owls", created_by=carol)
    memberships = [TeamMembershipFactory(team=named, user=u) for u in (alice, bob, carol)]
    memberships.append(TeamMembershipFactory(team=neutral, user=carol))
    record_events_for(MEMBERSHIP, [m.pk for m in memberships])
    assert _team_names_in(bob) == {"AliceWonder Army"}

    with CaptureQueriesContext(connection) as captured:
        result = erase_user(alice.pk, reason="ticket 1")

    assert _team_names_in(bob) == {SCRUBBED}
    assert _team_names_in(carol) == {SCRUBBED, "Night Owls"}  # only the value that named her
    assert result.others_scrubbed == 2
    bob_event = UserActivity.objects.get(user=bob, event_type="team_joined")
    assert bob_event.metadata["team_id"] == named.pk  # ids describe the platform, not the person
    # Set-based: one UPDATE for every other user's rows, whatever their number.
    updates = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith("UPDATE") and "activity_useractivity" in q["sql"] and "jsonb_each" in q["sql"]
    ]
    assert len(updates) == 2  # the player's own rows, everyone else's


def test_total_earned_is_public_and_total_spent_hidden_from_others_on_the_profile_page_and_the_stats_api(client):
    player, other = UserFactory(), UserFactory()
    UserProfileStats.objects.update_or_create(
        profile_id=player.pk, defaults={"total_earned": 4321, "total_spent": 8765}
    )

    for viewer in (None, other):
        if viewer is not None:
            client.force_login(viewer)
        page = client.get(f"/u/{player.username}/").content.decode()
        api = client.get(f"/api/users/{player.pk}/stats/").json()
        assert "4321" in page.replace(",", "") and "8765" not in page.replace(",", "")
        assert api["total_earned"] == 4321 and "total_spent" not in api and "net_earnings" not in api
        profile = client.get(f"/api/users/{player.pk}/").json()
        assert "8765" not in str(profile)

    client.force_login(player)
    assert client.get(f"/api/users/{player.pk}/stats/").json()["total_spent"] == 8765
