"""No one can make the server do unbounded work: per-game boards of unknown games 404 before any query of the ledger;
one cached board per (board, game) whatever `limit` and `min_matches` anonymous callers send, sliced exactly; board
statements run under their own timeout; usernames with control characters 404 on every page and in the API."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext

from stats.models import UserProfileStats
from stats.selectors.leaderboards import (
    MAX_LIMIT,
    Board,
    _win_rate_skyline,
    leaderboard,
)
from tests.factories import UserFactory
from tests.read_side import known_game, play_match

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]


def test_an_unknown_game_is_a_404_on_the_page_and_the_api_without_touching_the_ledger(client):
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/leaderboards/", {"board": "matches_won", "game": "no-such-game"}).status_code == 404
        api = client.get("/api/leaderboards/matches_won/", {"game": "no-such-game"})
    assert api.status_code == 404 and api.json()["error"] == "not_found"
    assert not any("activity_useractivity" in q["sql"] for q in captured.captured_queries)


def test_many_limit_and_min_matches_values_make_one_cache_key_per_board_and_game(client, monkeypatch) -> None:
    user = UserFactory()
    play_match(user, "won", game="valorant")
    backend = caches["default"]
    stored: set[str] = set()
    real_set = backend.set

    def noting_set(key: str, *args: Any, **kwargs: Any) -> Any:
        stored.add(key)
        return real_set(key, *args, **kwargs)

    monkeypatch.setattr(backend, "set", noting_set)
    for limit in range(1, 41):
        for min_matches in (1, 2, 3, 7, 10, 99, 1000):
            for game in ("", "valorant"):
                response = client.get(
                    "/api/leaderboards/win_rate/", {"limit": limit, "min_matches": min_matches, "game": game}
                )
                assert response.status_code == 200
        assert client.get("/leaderboards/", {"board": "matches_won", "min_matches": limit}).status_code == 200
    assert stored == {
        "leaderboards:v3:win_rate:*:*",
        "leaderboards:v3:win_rate:valorant:*",
        "leaderboards:v3:matches_won:*:*",
    }


def _fresh(board: Board, **kwargs) -> list[tuple[int, str]]:
    return [(e.user_id, e.value) for e in leaderboard(board, use_cache=False, **kwargs)]


def test_the_cached_win_rate_board_answers_every_min_matches_exactly_as_a_fresh_top_n():
    rng = random.Random(7)
    users = [UserFactory() for _ in range(160)]
    for user in users:
        played = rng.choice([1, 2, 3, 5, 8, 12, 20, 40])
        UserProfileStats.objects.filter(profile_id=user.pk).update(
            matches_played=played, matches_won=rng.randint(0, played)
        )
    stats = dict(UserProfileStats.objects.values_list("profile_id", "matches_played"))
    won = dict(UserProfileStats.objects.values_list("profile_id", "matches_won"))
    for min_matches in (1, 2, 4, 8, 13, 40, 41):
        expected = sorted(
            (uid for uid, p in stats.items() if p >= min_matches),
            key=lambda uid: (-(won[uid] / stats[uid]), -stats[uid], uid),
        )[:MAX_LIMIT]
        for limit in (1, 37, MAX_LIMIT):
            got = [e.user_id for e in leaderboard(Board.WIN_RATE, limit=limit, min_matches=min_matches)]
            assert got == expected[:limit], (min_matches, limit)
            assert [e.rank for e in leaderboard(Board.WIN_RATE, limit=limit, min_matches=min_matches)] == list(
                range(1, len(got) + 1)
            )


def test_the_win_rate_skyline_keeps_exactly_the_players_some_threshold_ranks() -> None:
    rng = random.Random(3)
    players = [(uid, rng.randint(0, p), p) for uid, p in ((uid, rng.randint(1, 30)) for uid in range(1, 400))]
    depth = 10
    expected: set[int] = set()
    for m in range(1, 31):
        ranked = sorted((x for x in players if x[2] >= m), key=lambda x: (-(x[1] / x[2]), -x[2], x[0]))
        expected |= {x[0] for x in ranked[:depth]}
    assert _win_rate_skyline(players, depth) == expected


def test_board_statements_run_under_their_own_statement_timeout(settings):
    user = UserFactory()
    play_match(user, "won", game=known_game("valorant"))
    settings.LEADERBOARD_STATEMENT_TIMEOUT_MS = 1234
    with CaptureQueriesContext(connection) as captured:
        leaderboard(Board.MATCHES_WON, game="valorant", use_cache=False)
        leaderboard(Board.TOURNAMENTS_WON, use_cache=False)
    assert sum("SET LOCAL statement_timeout = 1234" in q["sql"] for q in captured.captured_queries) == 2
    with connection.cursor() as cursor:  # and put back afterwards
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "5s"


CONTROL_CHARACTERS = ["\x00", "\x01", "\x07", "\x1b", "\x7f", "\x85", "\u2028"]


@pytest.mark.parametrize("char", CONTROL_CHARACTERS, ids=[f"U+{ord(c):04X}" for c in CONTROL_CHARACTERS])
def test_usernames_with_control_characters_are_404_on_every_page_and_in_the_api(client, char):
    UserFactory(username="alice")
    name = f"ali{char}ce"
    for suffix in ("", "activity/", "matches/", "tournaments/", "economy/", "export.json"):
        assert client.get(f"/u/{name}/{suffix}").status_code == 404, suffix
    lookup = client.get("/api/users/lookup/", {"username": name})
    assert lookup.status_code == 404 and lookup.json()["error"] == "not_found"
