"""The privacy rules of the career surfaces (issue 16), viewer by viewer: head-to-head (totals public, the match
list only when both histories are visible), the season table (public aggregates) and search (names are public,
erased accounts never found); and the API polish: JSON 404s, Swagger UI and ReDoc, numbers as numbers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from activity.recording import record_events_for
from esports.profiles.models import UserProfile
from tests.factories import (
    FollowFactory,
    MatchFactory,
    RegistrationFactory,
    TournamentFactory,
    UserFactory,
    complete_match,
)
from tests.read_side import BASE_TIME, event, play_match, record

pytestmark = pytest.mark.django_db
BASE = BASE_TIME
VIEWERS = ("anonymous", "other", "follower_of_a", "a", "staff")
FLAGS = ((True, True), (False, True), (True, False), (False, False))  # show_match_history of (a, b)


def meetings(a, b, *, a_wins: int, b_wins: int) -> None:
    """a_wins + b_wins completed matches between a and b, recorded as the worker would."""
    tournament = TournamentFactory(game="tennis", season=2025)
    ra, rb = RegistrationFactory(tournament=tournament, user=a), RegistrationFactory(tournament=tournament, user=b)
    ids = []
    for i in range(a_wins + b_wins):
        m = MatchFactory(tournament=tournament, participant1=ra, participant2=rb, round="R32", match_num=i + 1)
        ids.append(complete_match(m, ra if i < a_wins else rb).pk)
    record_events_for("tournaments.match", ids)


@pytest.fixture
def pair(history_mode):
    a, b = UserFactory(username="alpha_a"), UserFactory(username="bravo_b")
    meetings(a, b, a_wins=3, b_wins=2)
    return a, b


def login(client, viewer: str, a):
    if viewer == "anonymous":
        return client
    user = {"a": a, "staff": UserFactory(is_staff=True), "other": UserFactory()}.get(viewer) or UserFactory()
    if viewer == "follower_of_a":
        FollowFactory(follower=user, followee=a)
    client.force_login(user)
    return client


def set_flags(a, b, flags) -> None:
    for user, show in zip((a, b), flags, strict=True):
        UserProfile.objects.filter(pk=user.pk).update(show_match_history=show)


@pytest.mark.parametrize("viewer", VIEWERS)
@pytest.mark.parametrize("flags", FLAGS)
def test_head_to_head_totals_are_public_and_the_list_needs_both_histories(client, pair, viewer, flags):
    a, b = pair
    set_flags(a, b, flags)
    api = login(client, viewer, a)
    body = api.get("/api/h2h/", {"a": a.pk, "b": b.pk}).json()
    assert (body["a_wins"], body["b_wins"], body["walkovers"]) == (3, 2, 0)  # everyone, whatever the flags
    # The viewer sees a's history when a shows it or the viewer is a or staff; b's only when b shows it or staff.
    sees_a = flags[0] or viewer in ("a", "staff")
    sees_b = flags[1] or viewer == "staff"
    assert body["matches_visible"] is (sees_a and sees_b)
    if sees_a and sees_b:
        assert len(body["matches"]["results"]) == 5
        assert {m["opponent"]["username"] for m in body["matches"]["results"]} == {"bravo_b"}
    else:
        assert body["matches"] is None
    page = api.get(f"/h2h/{a.username}/{b.username}/").content.decode()
    assert 'data-h2h="a_wins">3<' in page
    assert ("keeps their match history private" in page) is not (sees_a and sees_b)


def test_head_to_head_refuses_one_player_twice_and_unknown_players(client, pair):
    a, _b = pair
    assert client.get("/api/h2h/", {"a": a.pk, "b": a.pk}).json()["error"] == "same_player"
    assert client.get("/api/h2h/", {"a": a.pk, "b": "DC-99-999999"}).status_code == 404
    assert client.get("/api/h2h/", {"a": a.pk}).status_code == 400


@pytest.mark.parametrize("viewer", VIEWERS)
def test_the_season_table_is_public_even_with_the_match_history_hidden(client, pair, viewer):
    a, b = pair
    set_flags(a, b, (False, False))
    body = login(client, viewer, a).get(f"/api/users/{a.pk}/seasons/").json()
    assert body["results"] == [
        {
            "season": 2025,
            "played": 5,
            "wins": 3,
            "losses": 2,
            "win_rate": 60.0,
            "titles": 0,
            "finals": 0,
            "average_placement": None,
        }
    ]


@pytest.mark.parametrize("viewer", VIEWERS)
def test_search_finds_players_whatever_their_flags_and_never_an_erased_account(client, pair, viewer):
    a, b = pair
    set_flags(a, b, (False, False))
    UserProfile.objects.filter(pk=a.pk).update(display_name="Alphonse Quimby", show_tournament_stats=False)
    gone = UserFactory(username="alphonse_gone", is_active=False)
    body = login(client, viewer, a).get("/api/users/search/", {"q": "alphon"}).json()
    ids = [h["id"] for h in body["results"]]
    assert a.pk in ids and gone.pk not in ids
    assert body["results"][0]["match"] == "prefix"


@pytest.mark.parametrize("q", ["lesl", "gil leslie", "bonnal"])
def test_search_reads_names_through_their_indexes_never_a_table_whole(q):
    # A rare name under a branch's LIMIT: the planner's bet on a sequential scan meeting matches early reads every
    # row instead (esports/profiles/search.py); the join to the accounts probes them by key.
    from esports.profiles import search
    from project.one_trip_reads import explain

    for i in range(300):
        UserFactory(username=f"player{i:04d}")
    params = search._params(q, 20, 0)
    plan = explain(search._SEARCH, params)
    assert "Seq Scan" not in plan, plan


@pytest.mark.django_db
def test_the_search_trigram_indexes_keep_no_pending_list():
    # Every search scans a GIN index's pending list whole (esports/profiles/migrations/0006).
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reloptions FROM pg_class "
            "WHERE relname IN ('profile_name_trgm_idx', 'user_username_trgm_idx')"
        )
        options = dict(cursor.fetchall())
    assert options == {"profile_name_trgm_idx": ["fastupdate=off"], "user_username_trgm_idx": ["fastupdate=off"]}


def test_search_rejects_a_query_too_short_or_a_foreign_cursor(client, pair):
    assert client.get("/api/users/search/", {"q": "a"}).status_code == 400
    assert client.get("/api/users/search/", {"q": "alpha", "cursor": "not-ours"}).status_code == 400
    assert client.get("/players/", {"q": "a"}).status_code == 400


def test_unknown_api_paths_answer_json_404_and_a_missing_slash_redirects(client):
    for path in ("/api/nothing/", "/api/users/1/nope/", "/api/h2h/extra/"):
        response = client.get(path)
        assert response.status_code == 404 and response["Content-Type"].startswith("application/json"), path
        assert response.json()["error"] == "not_found"
    assert client.get("/api/leaderboards/tournaments_won").status_code == 301


def test_swagger_ui_and_redoc_are_served_from_our_static_files(client):
    swagger = client.get("/api/docs/")
    assert swagger.status_code == 200 and b"swagger-ui" in swagger.content and b"cdn.jsdelivr" not in swagger.content
    redoc = client.get("/api/redoc/")
    assert redoc.status_code == 200 and b"redoc" in redoc.content and b"cdn.jsdelivr" not in redoc.content


def test_leaderboard_values_and_rates_are_json_numbers(client, pair):
    a, _b = pair
    board = client.get("/api/leaderboards/matches_won/").json()["results"]
    assert board and all(isinstance(e["value"], int) for e in board)
    assert all(isinstance(e["win_rate"], (int, float)) for e in board)
    rates = client.get("/api/leaderboards/win_rate/", {"min_matches": 1}).json()["results"]
    assert rates and all(isinstance(e["value"], (int, float)) for e in rates)
    assert isinstance(client.get(f"/api/users/{a.pk}/stats/").json()["win_rate"], (int, float))
    assert get_user_model().objects.filter(pk=a.pk).exists()


@pytest.mark.parametrize("surface", ["activity", "matches"])
def test_previous_cursors_walk_back_through_the_same_pages(client, surface):
    player = UserFactory()
    for i in range(23):
        play_match(player, "won", at=BASE + timedelta(minutes=i // 2), round=("QF", "SF", "F")[i % 3])
    # Major timeline events (the activity list's default), some sharing a timestamp.
    record(*(event(player, "team_joined", at=BASE + timedelta(minutes=i // 2)) for i in range(23)))
    client.force_login(player)
    url = f"/api/users/{player.pk}/{surface}/"
    pages, body = [], client.get(url, {"limit": 5}).json()
    assert body["previous_cursor"] is None and body["previous"] is None  # the first page
    pages.append(body)
    while body["next_cursor"]:
        body = client.get(url, {"limit": 5, "cursor": body["next_cursor"]}).json()
        pages.append(body)
    assert len(pages) >= 3
    for i in range(len(pages) - 1, 0, -1):
        back = client.get(url, {"limit": 5, "cursor": pages[i]["previous_cursor"]}).json()
        assert [r["id"] for r in back["results"]] == [r["id"] for r in pages[i - 1]["results"]], i
        assert (back["previous_cursor"] is None) == (i == 1)
        assert back["next_cursor"] is not None
