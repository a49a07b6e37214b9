"""Bad input never surfaces as a 500: unknown players, malformed ids, bad cursors and bad parameters are clear 4xx
JSON errors on the API and proper error pages on the site."""

from __future__ import annotations

import pytest

from activity.event_types import EventType as E
from tests.factories import UserFactory
from tests.read_side import BASE_TIME, event, minutes, record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]

LISTS = ("activity", "matches", "tournaments")


@pytest.fixture
def player():
    user = UserFactory()
    record(*[event(user, E.TOURNAMENT_JOINED, at=BASE_TIME + minutes(i)) for i in range(30)])
    record(*[event(user, E.MATCH_PLAYED, at=BASE_TIME + minutes(i)) for i in range(30)])
    return user


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.mark.parametrize("path", ["", "stats/", "activity/", "matches/", "tournaments/", "economy/", "export/"])
def test_an_unknown_player_is_a_404(client, path):
    assert_error(client.get(f"/api/users/987654321/{path}"), 404, "not_found")


@pytest.mark.parametrize("bad_id", ["abc", "-1", "0", "1.5", "1e3", "99999999999999999999", "%20", "007"])
def test_a_malformed_user_id_is_a_400_naming_the_problem(client, bad_id):
    body = assert_error(client.get(f"/api/users/{bad_id}/activity/"), 400, "invalid_user_id")
    assert "positive integer" in body["detail"]


@pytest.mark.parametrize("surface", LISTS)
@pytest.mark.parametrize("cursor", ["garbage", "WzAsMV0:xyz", "a" * 600, "::::", "eyJ0IjoxfQ"])
def test_a_malformed_cursor_is_a_400(client, player, surface, cursor):
    client.force_login(player)
    response = client.get(f"/api/users/{player.pk}/{surface}/", {"cursor": cursor})
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_cursor", "invalid_parameter")  # too long fails validation first


@pytest.mark.parametrize("surface", LISTS)
def test_a_tampered_or_foreign_cursor_is_a_400(client, player, surface):
    client.force_login(player)
    genuine = client.get(f"/api/users/{player.pk}/{surface}/", {"limit": 5}).json()["next_cursor"]
    payload, signature = genuine.rsplit(":", 1)
    tampered = f"{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}:{signature}"
    assert_error(client.get(f"/api/users/{player.pk}/{surface}/", {"cursor": tampered}), 400, "invalid_cursor")
    other = UserFactory()
    assert_error(client.get(f"/api/users/{other.pk}/{surface}/", {"cursor": genuine}), 400, "invalid_cursor")
    assert client.get(f"/api/users/{player.pk}/{surface}/", {"cursor": genuine}).status_code == 200


@pytest.mark.parametrize("limit", ["abc", "0", "51", "-3", "1.5"])
def test_a_bad_page_size_is_a_400_on_the_field(client, player, limit):
    response = client.get(f"/api/users/{player.pk}/activity/", {"limit": limit})
    body = assert_error(response, 400, "invalid_parameter")
    assert "limit" in body["fields"]


def test_an_empty_page_size_means_the_default(client, player):
    response = client.get(f"/api/users/{player.pk}/activity/", {"limit": ""})
    assert response.status_code == 200 and len(response.json()["results"]) == 20


def test_a_bad_game_filter_is_a_400(client, player):
    assert_error(client.get(f"/api/users/{player.pk}/matches/", {"game": "x" * 51}), 400, "invalid_parameter")
    assert_error(client.get(f"/api/users/{player.pk}/matches/", {"game": "<b>"}), 400, "invalid_game")
    assert client.get(f"/api/users/{player.pk}/matches/", {"game": "valorant"}).status_code == 200


@pytest.mark.parametrize(
    "query, code",
    [
        ({"limit": "0"}, "invalid_parameter"),
        ({"limit": "101"}, "invalid_parameter"),
        ({"limit": "ten"}, "invalid_parameter"),
        ({"min_matches": "0"}, "invalid_parameter"),
        ({"min_matches": "x"}, "invalid_parameter"),
        ({"game": "<script>"}, "invalid_game"),
    ],
)
def test_bad_leaderboard_parameters_are_400s(client, query, code):
    assert_error(client.get("/api/leaderboards/win_rate/", query), 400, code)


def test_unknown_boards_and_per_game_earnings_are_400s(client):
    body = assert_error(client.get("/api/leaderboards/most_friends/"), 400, "invalid_leaderboard")
    assert "tournaments_won" in body["detail"]  # says what exists
    assert_error(client.get("/api/leaderboards/total_earned/", {"game": "chess"}), 400, "invalid_leaderboard")


def test_username_lookup_errors(client, player):
    assert_error(client.get("/api/users/lookup/"), 400, "invalid_parameter")
    assert_error(client.get("/api/users/lookup/", {"username": "nobody-here"}), 404, "not_found")
    assert client.get("/api/users/lookup/", {"username": player.username}).json()["id"] == player.pk


def test_private_surfaces_answer_401_to_the_anonymous_and_403_to_others(client, player):
    anonymous = client.get(f"/api/users/{player.pk}/economy/")
    assert_error(anonymous, 401, "not_authenticated")
    assert anonymous["WWW-Authenticate"].startswith("Basic")
    client.force_login(UserFactory())
    assert_error(client.get(f"/api/users/{player.pk}/economy/"), 403, "permission_denied")


def test_wrong_basic_credentials_are_a_401_not_a_500(client, player):
    import base64

    token = base64.b64encode(f"{player.username}:wrong".encode()).decode()
    response = client.get(f"/api/users/{player.pk}/", HTTP_AUTHORIZATION=f"Basic {token}")
    assert_error(response, 401, "authentication_failed")


def test_pages_answer_bad_input_with_error_pages(client, player):
    assert client.get("/u/nobody-at-all/").status_code == 404
    response = client.get(f"/u/{player.username}/activity/", {"cursor": "garbage"})
    assert response.status_code == 400 and b"Invalid cursor" in response.content
    assert client.get(f"/u/{player.username}/matches/", {"game": "<x>"}).status_code == 400
    assert client.get("/leaderboards/", {"board": "nope"}).status_code == 400
    assert client.get("/leaderboards/", {"board": "win_rate", "min_matches": "many"}).status_code == 400
    assert client.get("/leaderboards/", {"board": "total_earned", "game": "chess"}).status_code == 400
    assert client.get(f"/u/{player.username}/economy/").status_code == 403


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "0",
        "-1",
        "999999999999999999999",
        "null",
        "[]",
        "{}",
        "%00",
        "\u00e9",
        "1;DROP TABLE x",
        "../../etc",
        "a" * 2000,
    ],
)
def test_no_query_value_anywhere_causes_a_500(client, player, value):
    urls = [
        f"/api/users/{player.pk}/{s}/" for s in ("activity", "matches", "tournaments", "stats", "economy", "export")
    ]
    urls += [
        "/api/leaderboards/tournaments_won/",
        "/api/leaderboards/win_rate/",
        "/api/users/lookup/",
        "/leaderboards/",
        f"/u/{player.username}/",
        f"/u/{player.username}/activity/",
        f"/u/{player.username}/matches/",
        f"/u/{player.username}/tournaments/",
    ]
    for url in urls:
        response = client.get(
            url,
            {"cursor": value, "limit": value, "game": value, "board": value, "min_matches": value, "username": value},
        )
        assert response.status_code < 500, (url, value, response.status_code)


@pytest.mark.django_db
def test_a_non_ascii_digit_as_a_player_id_is_a_404_not_a_server_error(client):
    response = client.get("/api/h2h/?a=%C2%B9&b=2", HTTP_X_FORWARDED_PROTO="https")  # "¹": isdigit(), not int()
    assert response.status_code in (400, 404), response.content
