"""Pages and API endpoints render real data (recorded through the real path), and their query counts are bounded:
a fixed number per request, the same whether the player has a handful of events or many (no N+1)."""

from __future__ import annotations

import itertools
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activity.event_types import EventType as E
from stats.selectors.leaderboards import Board
from tests.factories import UserFactory
from tests.read_side import BASE_TIME, build_platform_history, event, minutes, play_match, record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]


def page_urls(user) -> dict[str, str]:
    u = user.username
    return {
        "profile": f"/u/{u}/",
        "activity": f"/u/{u}/activity/",
        "matches": f"/u/{u}/matches/",
        "matches-by-game": f"/u/{u}/matches/?game=valorant",
        "tournaments": f"/u/{u}/tournaments/",
        "economy": f"/u/{u}/economy/",
        "export": f"/u/{u}/export.json",
        **{f"leaderboard-{b.value}": f"/leaderboards/?board={b.value}" for b in Board},
        "leaderboard-per-game": "/leaderboards/?board=matches_won&game=valorant",
    }


def api_urls(user) -> dict[str, str]:
    base = f"/api/users/{user.pk}"
    return {
        "api-user": f"{base}/",
        "api-lookup": f"/api/users/lookup/?username={user.username}",
        "api-stats": f"{base}/stats/",
        "api-activity": f"{base}/activity/",
        "api-matches": f"{base}/matches/",
        "api-matches-by-game": f"{base}/matches/?game=valorant&limit=50",
        "api-tournaments": f"{base}/tournaments/",
        "api-economy": f"{base}/economy/",
        "api-export": f"{base}/export/",
        **{f"api-leaderboard-{b.value}": f"/api/leaderboards/{b.value}/?min_matches=1" for b in Board},
        "api-leaderboard-per-game": "/api/leaderboards/win_rate/?game=valorant&min_matches=1",
    }


# Upper bounds per request, signed in as the player (session + user: 2 queries before the view starts).
# The match lists' opponents and scores: one query per page for the matches' sides (activity.selectors.match_facts).
MAX_QUERIES = {
    "profile": 10,  # + the ratings (stats.ratings.selectors): one indexed read; + the rating curve (one read)
    "activity": 4,
    "matches": 6,  # + the page's rating changes: one indexed read
    "matches-by-game": 6,  # + the page's rating changes: one indexed read
    "tournaments": 4,
    "economy": 5,
    "export": 5 + 3,  # + the gdpr_export audit event (lock the chain head, insert) and the audit events read
    "api-user": 3,
    "api-lookup": 3,
    "api-stats": 5,  # + the ratings (stats.ratings.selectors): one indexed read
    "api-activity": 4,
    "api-matches": 6,  # + the page's rating changes: one indexed read
    "api-matches-by-game": 6,  # + the page's rating changes: one indexed read
    "api-tournaments": 4,
    "api-economy": 5,
    "api-export": 5 + 3,  # as "export"
}
LEADERBOARD_MAX_QUERIES = (
    5 + 1
)  # + the entries' public IDs, one query  # session, user, and one SELECT between two planner settings when not cached


def count_queries(client, url: str) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:300])
    return len(captured.captured_queries), response


def add_more_history(user, n: int) -> None:
    """n more of every kind of event the surfaces list, with ties and corrections."""
    for i in range(n):
        at = BASE_TIME + minutes(i)
        play_match(user, ("won", "lost", "forfeit")[i % 3], at=at, game="valorant")
        record(
            event(user, E.TOURNAMENT_JOINED, at=at),
            event(user, E.TOURNAMENT_WON, at=at),
            event(user, E.COINS_EARNED, at=at, meta={"reason": f"bonus {i}"}),
            event(user, E.ACHIEVEMENT_UNLOCKED, at=at, meta={"code": f"a{i}", "name": f"Badge {i}", "tier": "major"}),
            event(user, E.TEAM_JOINED, at=at, meta={"team_id": i, "team": f"Squad {i}"}),
        )
        for other in (UserFactory(),):  # more ranked players on the boards
            play_match(other, "won", at=at, game="valorant")
            record(event(other, E.TOURNAMENT_WON, at=at), event(other, E.COINS_EARNED, at=at, amount=10 + i))


def test_query_counts_are_bounded_and_do_not_grow_with_the_data(client, settings):
    alice, _bob, _carol = build_platform_history()
    client.force_login(alice)
    urls = {**page_urls(alice), **api_urls(alice)}

    # Cold caches on both measurements: clear per-user stats and boards by switching to a fresh key prefix.
    rounds = itertools.count()

    def measure() -> dict[str, int]:
        settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"pages-{next(rounds)}"}}
        return {name: count_queries(client, url)[0] for name, url in urls.items()}

    small = measure()
    add_more_history(alice, 40)
    large = measure()
    assert large == small, {k: (small[k], large[k]) for k in small if small[k] != large[k]}
    for name, count in small.items():
        bound = LEADERBOARD_MAX_QUERIES if "leaderboard" in name else MAX_QUERIES[name]
        bound += "per-game" in name  # the known-game check (tournaments' game index) before a per-game board
        assert count <= bound, f"{name}: {count} queries (bound {bound})"


def test_a_warm_profile_page_reads_its_stats_and_first_pages_from_the_cache(client):
    alice, _bob, _carol = build_platform_history()
    client.get(f"/u/{alice.username}/")  # anonymous: no session queries
    cold_free, _ = count_queries(client, f"/u/{alice.username}/")
    # profile + counts, ratings, the rating curve (not cached: a replay rewrites it without a new event);
    # stats, recent activity, latest matches and the season record come from Redis
    assert cold_free == 3


def text_of(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_the_profile_page_shows_stats_cards_recent_activity_and_matches(client):
    alice, _bob, _carol = build_platform_history()
    html = text_of(client.get(f"/u/{alice.username}/"))
    assert "<title>Alice Wonder · DeltaCrown</title>" in html
    assert "@alice_w" in html and "1</strong> followers" in html
    assert re.search(r'Titles</div><div class="value"[^>]*>1<', html)
    assert re.search(r'Win rate</div><div class="value">66.67%<', html)  # 2 won of 3 played (one forfeit)
    for title in ("Won Spring Cup", "Joined team Alice&#x27;s Wonderland"):  # recent activity: the major events
        assert title in html, title
    for title in ("Won a SF match at Spring Cup", "Unlocked First Blood"):  # matches, a minor achievement: not there
        assert title not in html, title
    assert "Earned 500 DeltaCoins" not in html and "Prize for Spring Cup" not in html  # economy: self only
    assert 'class="pill won"' in html and 'class="pill forfeit"' in html
    assert "Download my data" not in html and ">None<" not in html and "{{" not in html


def test_the_player_sees_their_economy_and_export_on_their_own_pages(client):
    alice, _bob, _carol = build_platform_history()
    client.force_login(alice)
    html = text_of(client.get(f"/u/{alice.username}/"))
    assert "You</span>" in html and "Download my data" in html and "DeltaCoins</a>" in html
    economy = text_of(client.get(f"/u/{alice.username}/economy/"))
    assert "Earned 500 DeltaCoins" in economy and "Spent 120 DeltaCoins" in economy
    assert re.search(r'Balance</div><div class="value">380<', economy)


def test_the_timeline_page_pages_with_older_links(client):
    user = UserFactory()
    record(
        *[
            event(
                user,
                E.ACHIEVEMENT_UNLOCKED,
                at=BASE_TIME + minutes(i),
                meta={"code": f"c{i}", "name": f"Badge {i}", "tier": "major"},
            )
            for i in range(45)
        ]
    )
    first = text_of(client.get(f"/u/{user.username}/activity/"))
    assert "Unlocked Badge 44" in first and "Unlocked Badge 25" in first and "Unlocked Badge 24" not in first
    older = re.search(r'href="([^"]+cursor=[^"]+)"', first).group(1).replace("&amp;", "&")
    second = text_of(client.get(older))
    assert "Unlocked Badge 24" in second and "Unlocked Badge 25" not in second and "&larr; Newest" in second


def test_the_match_page_filters_by_game_and_shows_outcomes(client):
    user = UserFactory()
    play_match(user, "won", game="chess", tournament="Chess Open", round="F", at=BASE_TIME)
    play_match(user, "lost", game="valorant", tournament="Valorant Masters", round="SF", at=BASE_TIME + minutes(1))
    both = text_of(client.get(f"/u/{user.username}/matches/"))
    assert "Chess Open" in both and "Valorant Masters" in both
    chess = text_of(client.get(f"/u/{user.username}/matches/?game=chess"))
    assert "Chess Open" in chess and "Valorant Masters" not in chess and 'class="pill won"' in chess


def test_the_leaderboard_page_ranks_real_players(client):
    alice, bob, carol = build_platform_history()
    html = text_of(client.get("/leaderboards/?board=tournaments_won"))
    assert "Alice Wonder" in html and 'class="rank rank-1">1<' in html
    matches = text_of(client.get("/leaderboards/?board=matches_won&game=valorant"))
    # alice: 2 wins (solo SF + team final), carol: 1 (team final), bob: 0
    assert matches.index("Alice Wonder") < matches.index(carol.first_name or carol.username)
    rate = text_of(client.get("/leaderboards/?board=win_rate&min_matches=1"))
    assert "66.67%" in rate
    assert client.get("/").status_code == 302


def test_the_openapi_schema_describes_every_endpoint_and_validates(client):
    import yaml
    from drf_spectacular.validation import validate_schema

    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate_schema(schema)
    paths = set(schema["paths"])
    for path in (
        "/api/users/{user_id}/activity/",
        "/api/users/{user_id}/matches/",
        "/api/users/{user_id}/tournaments/",
        "/api/users/{user_id}/stats/",
        "/api/users/{user_id}/economy/",
        "/api/users/{user_id}/export/",
        "/api/users/{user_id}/",
        "/api/users/lookup/",
        "/api/leaderboards/{board}/",
    ):
        assert path in paths, path
    matches = schema["paths"]["/api/users/{user_id}/matches/"]["get"]
    assert {p["name"] for p in matches["parameters"]} >= {"user_id", "cursor", "limit", "game"}
    assert {"200", "400", "401", "403", "404"} <= set(matches["responses"])
    assert "outcome" in schema["components"]["schemas"]["MatchEntry"]["properties"]


def test_api_responses_match_their_documented_shape(client):
    alice, _bob, _carol = build_platform_history()
    client.force_login(alice)
    body = client.get(f"/api/users/{alice.pk}/matches/").json()
    assert set(body) == {"results", "next_cursor", "next", "previous_cursor", "previous"}
    assert set(body["results"][0]) == {
        "id",
        "event_type",
        "timestamp",
        "visibility",
        "title",
        "detail",
        "kind",
        "amount",
        "metadata",
        "outcome",
        "tournament",
        "game",
        "round",
        "rating_change",
        "match_id",
        "opponent",
        "score",
        "tournament_id",
    }
    assert sorted(m["outcome"] for m in body["results"]) == ["forfeit", "won", "won"]
    profile = client.get(f"/api/users/{alice.pk}/").json()
    assert profile["viewer"] == "self" and profile["followers_count"] == 1 and "export" in profile["links"]
    board = client.get("/api/leaderboards/tournaments_won/").json()
    assert board["results"][0]["username"] == "alice_w" and board["results"][0]["rank"] == 1
