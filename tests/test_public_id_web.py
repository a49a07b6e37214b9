"""Public IDs as the public identity: /p/<id>/ pages, API resolution and payloads, the schema, erasure."""

from __future__ import annotations

import pytest
from django.urls import reverse

from activity.erasure import erase_user
from esports.profiles.models import UserProfile
from stats.models import UserProfileStats
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def player():
    user = UserFactory(username="alice", first_name="Alice")
    return user, UserProfile.objects.get(pk=user.pk).public_id


def test_the_profile_page_is_reachable_by_public_id_in_any_case(client, player):
    user, public_id = player
    for shown in (public_id, public_id.lower()):
        response = client.get(f"/p/{shown}/")
        assert response.status_code == 200
        assert response.context["subject"].pk == user.pk
    assert public_id in client.get("/u/alice/").content.decode()  # the username page still works and shows it


@pytest.mark.parametrize("path", ["/p/DC-26-999999/", "/p/DC-26-12/", "/p/nobody/", "/p/DC-26-000001%0A/"])
def test_an_unknown_or_malformed_public_id_page_is_a_404(client, player, path):
    assert client.get(path).status_code == 404


def test_the_api_resolves_a_player_by_public_id_wherever_an_id_is_accepted(client, player):
    user, public_id = player
    document = client.get(f"/api/users/{public_id.lower()}/").json()
    assert (document["id"], document["public_id"]) == (user.pk, public_id)
    assert document["links"]["self"].endswith(f"/api/users/{public_id}/")
    assert document["links"]["page"].endswith(f"/p/{public_id}/")
    for suffix in ("stats/", "activity/", "matches/", "tournaments/"):
        assert client.get(f"/api/users/{public_id}/{suffix}").status_code == 200, suffix
    assert client.get(f"/api/users/{public_id}/stats/").json()["public_id"] == public_id
    assert client.get(f"/api/users/{user.pk}/").json()["public_id"] == public_id  # numeric ids keep working


@pytest.mark.parametrize("raw", ["DC-26-999999", "DC-26-12", "dc-xx-000001"])
def test_the_api_answers_404_for_an_unknown_or_malformed_public_id(client, player, raw):
    response = client.get(f"/api/users/{raw}/")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.usefixtures("fresh_cache")
def test_leaderboard_entries_and_the_export_carry_the_public_id(client, player):
    user, public_id = player
    UserProfileStats.objects.update_or_create(profile_id=user.pk, defaults={"tournaments_won": 2})
    board = client.get("/api/leaderboards/tournaments_won/").json()
    assert [(e["user_id"], e["public_id"]) for e in board["results"]] == [(user.pk, public_id)]
    client.force_login(user)
    export = client.get(f"/api/users/{public_id}/export/").json()
    assert export["profile"]["public_id"] == public_id
    assert f"export-{user.pk}" in client.get("/u/alice/export.json")["Content-Disposition"]
    assert public_id in client.get("/u/alice/export.json").content.decode()


def test_the_openapi_schema_documents_lookup_by_public_id(client):
    schema = client.get(reverse("api:schema"), {"format": "json"}).json()
    parameter = next(p for p in schema["paths"]["/api/users/{user_id}/"]["get"]["parameters"] if p["name"] == "user_id")
    assert "DC-YY-NNNNNN" in parameter["description"]
    profile = schema["components"]["schemas"]["Profile"]
    assert "public_id" in profile["properties"]


def test_erasure_retires_the_public_id_and_the_tombstone_has_its_own(client, player):
    user, public_id = player
    result = erase_user(user.pk)
    tombstone_id = UserProfile.objects.get(pk=result.tombstone_id).public_id
    assert tombstone_id not in (None, public_id)
    assert client.get(f"/p/{public_id}/").status_code == 404
    assert client.get(f"/api/users/{public_id}/").status_code == 404
    newcomer = UserFactory()
    assert UserProfile.objects.get(pk=newcomer.pk).public_id not in (public_id, tombstone_id)
    assert not UserProfile.objects.filter(public_id=public_id).exists()
