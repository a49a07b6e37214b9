"""Rating surfaces: rating and peak on the stats API and the profile page, the rating-history API (cursor pages,
hidden with the match history), the per-game rating leaderboard with its minimum-matches filter, and the rating
change on match rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from activity.erasure import erase_user
from esports.profiles.models import UserProfile
from stats.ratings.models import PlayerRating
from stats.ratings.selectors import rating_leaderboard
from tests.factories import UserFactory
from tests.ratings_support import entries, play, tournament

pytestmark = pytest.mark.django_db

JAN = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def season():
    """a beats b five times (one a day), c beats b once."""
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    for day in range(5):
        t = tournament(starts_at=JAN + timedelta(days=day), external_id=f"T{day}")
        ea, eb, ec = entries(t, [a, b, c])
        play(t, ea, eb, round="SF")
        if day == 4:
            play(t, ec, eb, round="F")
    return a, b, c


def test_the_stats_api_and_the_profile_page_show_rating_and_peak(season, client):
    a, b, _c = season
    body = APIClient().get(reverse("api:user-stats", args=[a.pk])).json()
    (chess,) = body["ratings"]
    row = PlayerRating.objects.get(profile_id=a.pk)
    assert chess["game"] == "chess" and chess["rating"] == row.rating == chess["peak"] and chess["matches_rated"] == 5
    page = client.get(reverse("web:profile", args=[b.username])).content.decode()
    assert "Elo &middot; chess" in page and f"{PlayerRating.objects.get(profile_id=b.pk).rating:.0f}" in page


def test_the_rating_history_api_pages_by_cursor_newest_first_and_follows_the_match_history_privacy(season):
    _a, b, _c = season
    api = APIClient()
    url = reverse("api:user-rating-history", args=[b.pk, "chess"])
    first = api.get(url, {"limit": 4}).json()
    second = api.get(url, {"limit": 4, "cursor": first["next_cursor"]}).json()
    rows = first["results"] + second["results"]
    assert len(rows) == 6 and second["next_cursor"] is None
    assert [r["before"] for r in rows[:-1]] == [r["after"] for r in rows[1:]] and rows[-1]["before"] == 1500
    assert rows[0]["after"] == PlayerRating.objects.get(profile_id=b.pk).rating
    assert api.get(url, {"cursor": "forged"}).status_code == 400
    UserProfile.objects.filter(pk=b.pk).update(show_match_history=False)
    assert api.get(url).status_code == 401  # hidden from an anonymous viewer, as the match history is


def test_the_rating_leaderboard_ranks_by_rating_with_a_minimum_matches_filter(season):
    a, b, c = season
    api = APIClient()
    board = api.get(reverse("api:rating-leaderboard", args=["chess"])).json()
    assert [r["user_id"] for r in board["results"]] == [a.pk, c.pk, b.pk]
    strict = api.get(reverse("api:rating-leaderboard", args=["chess"]), {"min_matches": 2}).json()
    assert [r["user_id"] for r in strict["results"]] == [a.pk, b.pk] and strict["results"][0]["rank"] == 1
    assert api.get(reverse("api:rating-leaderboard", args=["chess"]), {"min_matches": 0}).status_code == 400


def test_erased_and_deactivated_players_are_not_on_the_rating_leaderboard(season):
    a, b, c = season
    get_user_model().objects.filter(pk=c.pk).update(is_active=False)
    erase_user(a.pk)  # a's ratings move to an inactive tombstone
    board = APIClient().get(reverse("api:rating-leaderboard", args=["chess"])).json()
    assert [r["user_id"] for r in board["results"]] == [b.pk]


def test_the_rating_leaderboard_reads_the_index_in_board_order():
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        rating_leaderboard("chess", min_matches=3)  # plan below, on the same query
        cursor.execute(
            "EXPLAIN SELECT profile_id FROM stats_playerrating WHERE game = 'chess' AND matches_rated >= 3 "
            "ORDER BY rating DESC, profile_id LIMIT 100"
        )
        plan = "\n".join(r[0] for r in cursor.fetchall())
    # On an empty table either board index may win on cost (rating_lb_min_matches_idx then sorts the few rows it
    # finds: tests/test_rating_board_min_matches.py); never a scan of the table.
    assert ("rating_lb_game_idx" in plan and "Sort" not in plan) or "rating_lb_min_matches_idx" in plan, plan


def test_match_rows_show_the_rating_change(season, client):
    a, _b, _c = season
    body = APIClient().get(reverse("api:user-matches", args=[a.pk])).json()
    changes = [m["rating_change"] for m in body["results"]]
    assert len(changes) == 5 and all(ch is not None and ch > 0 for ch in changes)
    assert changes[-1] == 16.0  # the first match, between two 1500s
    page = client.get(reverse("web:matches", args=[a.username])).content.decode()
    assert "+16.0" in page
