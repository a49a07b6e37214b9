"""The per-game rating board behind a selective minimum of matches (stats.ratings.selectors.rating_leaderboard): the
few players with that many rated matches are read from the (game, matches_rated, rating desc, profile) index and
sorted, instead of walking the rating order past everyone else (stats 0009); the answer is the same either way."""

from __future__ import annotations

import random

import pytest
from django.db import connection
from django.utils import timezone

from stats.ratings.models import PlayerRating
from stats.ratings.selectors import rating_leaderboard
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_selective_minimum_reads_the_qualifying_players_only_and_ranks_them_as_the_rating_order_does():
    rng = random.Random(5)
    now = timezone.now()
    users = [UserFactory() for _ in range(150)]
    matches = {u.pk: (12 if i % 50 == 0 else rng.randint(1, 3)) for i, u in enumerate(users)}
    ratings = {u.pk: round(rng.uniform(1300, 1700), 1) for u in users}
    PlayerRating.objects.bulk_create(
        PlayerRating(profile_id=uid, game="chess", rating=r, peak=r, matches_rated=matches[uid], updated_at=now)
        for uid, r in ratings.items()
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE stats_playerrating")
    for min_matches in (1, 2, 10):
        expected = sorted((uid for uid in ratings if matches[uid] >= min_matches), key=lambda u: (-ratings[u], u))
        assert [e.user_id for e in rating_leaderboard("chess", min_matches=min_matches)] == expected[:100]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # 150 rows: the index the planner picks, not a table scan
        cursor.execute(
            "EXPLAIN SELECT profile_id FROM stats_playerrating WHERE game = 'chess' AND matches_rated >= 10 "
            "ORDER BY rating DESC, profile_id LIMIT 100"
        )
        plan = "\n".join(r[0] for r in cursor.fetchall())
    assert "rating_lb_min_matches_idx" in plan, plan
