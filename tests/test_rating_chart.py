"""The rating-over-time chart (issue 16 item 5, issue 17 item 2): its points equal the player's rating history (all of
it when short, the downsampling rule when long), it is read in one query whatever the career's length, it is hidden
with the match history, and the profile page draws it as an accessible SVG with one marker per point."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from activity.privacy import NotPermitted, relation_between
from esports.profiles.models import UserProfile
from stats.ratings.curve import MAX_POINTS, rating_curves
from stats.ratings.models import RatingHistory
from tests.factories import UserFactory
from tests.ratings_support import entries, play, tournament

pytestmark = pytest.mark.django_db

JAN = datetime(2020, 1, 1, tzinfo=UTC)


def history(user, game: str, afters: list[float], *, match_base: int = 0) -> list[RatingHistory]:
    """Rows in rating order = list order; written shuffled, and with ties in time broken by the rest of the key, so
    the curve must order by the whole key, not by id or time alone."""
    rows = []
    for i, after in enumerate(afters):
        day = JAN + timedelta(days=i // 3)  # three matches a day: the same key_at
        rows.append(
            RatingHistory(
                profile_id=user.pk,
                game=game,
                before=afters[i - 1] if i else 1500.0,
                after=after,
                at=day,
                key_at=day,
                key_ext=f"T{i // 3:05d}",
                key_round=1 + i % 3,
                key_num=1,
                match_id=match_base + i + 1,
            )
        )
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    RatingHistory.objects.bulk_create(shuffled)
    return rows


def walk(n: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    value, out = 1500.0, []
    for _ in range(n):
        value += rng.uniform(-16, 16)
        out.append(round(value, 3))
    return out


def kept_positions(afters: list[float], points: int) -> list[int]:
    """The rule, computed here: all when n <= points, else the first, the first peak and the last of each of
    points-2 buckets."""
    n = len(afters)
    if n <= points:
        return list(range(1, n + 1))
    peak_at = afters.index(max(afters)) + 1
    bucket = {rn: (rn - 1) * (points - 2) // n for rn in range(1, n + 1)}
    return [rn for rn in range(1, n + 1) if rn in (1, peak_at, n) or bucket[rn] != bucket.get(rn + 1)]


def owner_relation(user):
    return relation_between(user, UserProfile.objects.get(pk=user.pk))


def test_a_short_history_is_drawn_point_for_point_in_rating_order():
    user = UserFactory()
    afters = walk(30)
    history(user, "chess", afters)
    (curve,) = rating_curves(owner_relation(user))
    assert [p.rating for p in curve.points] == afters
    assert [p.position for p in curve.points] == list(range(1, 31))
    assert (curve.game, curve.matches_rated, curve.first, curve.last, curve.peak) == (
        "chess",
        30,
        afters[0],
        afters[-1],
        max(afters),
    )


@pytest.mark.parametrize(("n", "points"), [(1000, MAX_POINTS), (101, MAX_POINTS), (100, MAX_POINTS), (57, 10)])
def test_a_long_history_is_downsampled_by_the_rule_in_sql(n, points):
    user = UserFactory()
    afters = walk(n, seed=n)
    afters[1] = afters[n // 2] = 9999.0  # the peak, reached twice (the first one kept), at a match buckets skip
    history(user, "tennis", afters)
    (curve,) = rating_curves(owner_relation(user), max_points=points)
    expected = kept_positions(afters, points)
    assert [p.position for p in curve.points] == expected
    assert [p.rating for p in curve.points] == [afters[rn - 1] for rn in expected]
    assert 2 in expected and len(curve.points) <= points and (n > points or len(curve.points) == n)
    assert curve.points[0].position == 1 and curve.points[-1].position == n
    assert (curve.first, curve.last, curve.peak, curve.matches_rated) == (afters[0], afters[-1], 9999.0, n)


def test_every_game_in_one_query_whatever_the_careers_length():
    user = UserFactory()
    history(user, "tennis", walk(1000), match_base=0)
    history(user, "chess", walk(40, seed=2), match_base=10_000)
    history(UserFactory(), "tennis", walk(50, seed=3), match_base=20_000)  # someone else's: not in the curve
    relation = owner_relation(user)
    with CaptureQueriesContext(connection) as queries:
        curves = rating_curves(relation)
    assert len(queries) == 1
    assert [(c.game, c.matches_rated, len(c.points)) for c in curves] == [("chess", 40, 40), ("tennis", 1000, 100)]


def test_bad_max_points_is_a_clear_error():
    user = UserFactory()
    for bad in (2, 0, True, "100"):
        with pytest.raises(ValueError, match="max_points"):
            rating_curves(owner_relation(user), max_points=bad)


def test_the_chart_is_hidden_with_the_match_history(client):
    user = UserFactory()
    history(user, "chess", walk(12))
    UserProfile.objects.filter(pk=user.pk).update(show_match_history=False)
    profile = UserProfile.objects.get(pk=user.pk)
    with pytest.raises(NotPermitted):
        rating_curves(relation_between(AnonymousUser(), profile))
    url = reverse("web:profile", args=[user.username])
    assert 'data-chart="rating"' not in client.get(url).content.decode()
    assert 'data-chart="rating"' not in client.get(f"/p/{profile.public_id}/").content.decode()
    client.force_login(user)  # the owner always sees their own history
    assert 'data-chart="rating"' in client.get(url).content.decode()
    UserProfile.objects.filter(pk=user.pk).update(show_match_history=True)
    client.logout()
    assert 'data-chart="rating"' in client.get(url).content.decode()


def chart_of(page: str, game: str) -> str:
    match = re.search(rf'<figure class="chart-box" data-chart="rating" data-game="{game}">(.*?)</figure>', page, re.S)
    assert match, f"no rating chart for {game}"
    return match.group(1)


def test_the_profile_draws_an_accessible_step_chart_per_game_with_a_bounded_number_of_queries(client):
    user = UserFactory()
    afters = walk(1000)
    history(user, "tennis", afters)
    history(user, "chess", walk(5, seed=9), match_base=10_000)
    url = reverse("web:profile", args=[user.username])
    cache.clear()  # the page's other parts are cached: measure both pages cold
    with CaptureQueriesContext(connection) as long_career:
        page = client.get(url).content.decode()
    tennis = chart_of(page, "tennis")
    values = [float(v) for v in re.findall(r'<g class="point"[^>]*data-value="([\d.]+)"', tennis)]
    assert values == [round(afters[rn - 1], 1) for rn in kept_positions(afters, MAX_POINTS)]
    assert tennis.count('data-peak="1"') == 1
    title = re.search(r"<title id=\"[^\"]+\">([^<]*)</title>", tennis).group(1)
    desc = re.search(r"<desc id=\"[^\"]+\">([^<]*)</desc>", tennis).group(1)
    assert "tennis" in title and "rating over time" in title
    assert f"first {afters[0]:.0f}, last {afters[-1]:.0f}, peak {max(afters):.0f}" in desc
    assert "1000 rated matches (100 points: the first, the peak, evenly spaced)" in desc
    assert len(re.findall(r'<g class="point"', chart_of(page, "chess"))) == 5

    other = UserFactory()
    history(other, "tennis", walk(3), match_base=50_000)
    cache.clear()
    with CaptureQueriesContext(connection) as short_career:
        client.get(reverse("web:profile", args=[other.username]))
    # One curve read for every game, not one per match or per game: the same count for 1,005 rows as for 3.
    assert len(long_career) == len(short_career)
    table = RatingHistory._meta.db_table
    assert sum(table in q["sql"] for q in long_career.captured_queries) == 1


def test_the_chart_follows_the_history_the_ledger_wrote():
    """End to end: matches played through the ledger, the curve equals the history rows in rating order."""
    a, b = UserFactory(), UserFactory()
    for day in range(6):
        t = tournament(starts_at=JAN + timedelta(days=day), external_id=f"E{day}")
        ea, eb = entries(t, [a, b])
        winner, loser = (ea, eb) if day % 3 else (eb, ea)
        play(t, winner, loser)
    rows = RatingHistory.objects.filter(profile_id=a.pk, game="chess").order_by(
        "key_at", "key_ext", "key_round", "key_num", "match_id"
    )
    (curve,) = rating_curves(owner_relation(a))
    assert [p.rating for p in curve.points] == [r.after for r in rows] and len(rows) == 6
