"""The following feed (activity.selectors.feed): privacy per followee, order, pagination, vanishing players, cost.

Every test that reads the feed runs under both page queries (PER_FOLLOWEE and RECENT_FIRST, see
activity/selectors/feed_sql.py) and under AUTO: they must select exactly the same rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activity.cursors import InvalidCursorError
from activity.erasure import erase_user
from activity.event_types import EventType as E
from activity.models import UserActivity
from activity.selectors.feed import (
    FEED_DEFAULT_TYPES,
    InvalidFeedTypeError,
    Strategy,
    feed,
    page_query_for,
    parse_types,
)
from activity.selectors.match_history import InvalidGameError
from activity.selectors.timeline import MAJOR_EVENTS, TIERED_EVENTS
from esports.profiles.follows import follow, unfollow
from esports.profiles.models import UserProfile
from project.one_trip_reads import explain, fetch
from tests.factories import UserFactory
from tests.read_side import BASE_TIME, event, minutes, record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]

STRATEGIES = list(Strategy)
VISIBILITIES = ("public", "followers", "private")
# One event of each privacy category.
CATEGORY = {
    E.TOURNAMENT_WON: "placement",
    E.TOURNAMENT_JOINED: "participation",
    E.MATCH_WON: "match",
    E.COINS_EARNED: "economy",
    E.TEAM_JOINED: "neutral",
}


@pytest.fixture(params=STRATEGIES, ids=[s.value for s in STRATEGIES])
def strategy(request) -> Strategy:
    return request.param


def sees(followed: bool, visibility: str, category: str, show_matches: bool, show_tournaments: bool) -> bool:
    """DESIGN.md §7 for a feed reader, written independently of activity.privacy."""
    if not followed or visibility == "private" or category == "economy":
        return False
    if category == "match" and not show_matches:
        return False
    return category != "participation" or show_tournaments


def walk(viewer, strategy: Strategy, limit: int = 7, **filters) -> list[UserActivity]:
    """Every page of the viewer's feed, in order."""
    items: list[UserActivity] = []
    cursor = None
    while True:
        page = feed(viewer.pk, cursor=cursor, limit=limit, strategy=strategy, **filters)
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def key(row: UserActivity) -> tuple:
    return (row.timestamp, row.id)


def expected_merge(user_ids, types=FEED_DEFAULT_TYPES) -> list[int]:
    """The feed as a merge made here: each followee's visible events of the types, all newest first by (ts, id)."""
    rows = UserActivity.objects.filter(
        user_id__in=list(user_ids), event_type__in=sorted(types), visibility__in=["public", "followers"]
    )
    return [r.id for r in sorted(rows, key=key, reverse=True)]


@dataclass
class Followee:
    user: User
    show_matches: bool
    show_tournaments: bool
    followed: bool
    events: dict[int, tuple[str, str]]  # event id -> (type, visibility)


def make_followee(viewer, *, show_matches: bool, show_tournaments: bool, followed: bool, at) -> Followee:
    user = UserFactory()
    UserProfile.objects.filter(pk=user.pk).update(
        show_match_history=show_matches, show_tournament_stats=show_tournaments
    )
    if followed:
        follow(follower_id=viewer.pk, followee_id=user.pk)
    else:  # followed by someone else: another viewer's follow never widens this one's feed
        follow(follower_id=UserFactory().pk, followee_id=user.pk)
    rows = []
    for i, (event_type, visibility) in enumerate((t, v) for t in CATEGORY for v in VISIBILITIES):
        rows.append(event(user, event_type, at=at + minutes(i), visibility=visibility))
    inserted = record(*rows)
    ids = {e.id: (e.event_type, e.visibility) for e in UserActivity.objects.filter(pk__in=[i.id for i in inserted])}
    return Followee(user, show_matches, show_tournaments, followed, ids)


@pytest.fixture
def matrix():
    """A viewer and 8 players: every combination of (match history flag x tournament stats flag x followed),
    each with one event of every category in every visibility."""
    viewer = UserFactory()
    players = [
        make_followee(viewer, show_matches=m, show_tournaments=t, followed=f, at=BASE_TIME + minutes(100 * n))
        for n, (m, t, f) in enumerate((m, t, f) for m in (True, False) for t in (True, False) for f in (True, False))
    ]
    return viewer, players


def test_the_privacy_matrix_holds_in_the_feed(matrix, strategy):
    viewer, players = matrix
    # Every category asked for (match wins are not among the default types), the economy's excepted: the feed
    # refuses to be asked for it (test below) and never shows it.
    asked = frozenset(CATEGORY) - {E.COINS_EARNED}
    shown = {e.id for e in walk(viewer, strategy, types=asked)}
    for p in players:
        for event_id, (event_type, visibility) in p.events.items():
            allowed = sees(p.followed, visibility, CATEGORY[event_type], p.show_matches, p.show_tournaments)
            assert (event_id in shown) is allowed, (p, event_type, visibility)
    assert shown, "the matrix shows something"


def test_no_item_carries_an_amount_or_an_economy_type_even_when_asked(matrix, strategy):
    viewer, _players = matrix
    items = walk(viewer, strategy, types=frozenset(FEED_DEFAULT_TYPES | {E.MATCH_PLAYED}))
    assert items and all(e.amount is None and not e.event_type.startswith("coins") for e in items)
    with pytest.raises(InvalidFeedTypeError, match="economy"):
        parse_types("match_won,coins_earned")


def test_a_staff_viewer_reads_the_feed_as_a_follower(matrix, strategy):
    viewer, players = matrix
    User.objects.filter(pk=viewer.pk).update(is_staff=True)
    shown = {e.id for e in walk(viewer, strategy)}
    assert not any(p.events[i][1] == "private" for p in players for i in shown if i in p.events)


def test_unfollowing_between_two_pages_removes_that_player_from_the_next_page(strategy):
    viewer, a, b = UserFactory(), UserFactory(), UserFactory()
    follow(follower_id=viewer.pk, followee_id=a.pk)
    follow(follower_id=viewer.pk, followee_id=b.pk)
    for i in range(12):  # interleaved: a, b, a, b ...
        record(event(a if i % 2 == 0 else b, E.TEAM_JOINED, at=BASE_TIME - minutes(i)))
    first = feed(viewer.pk, limit=4, strategy=strategy)
    assert {e.user_id for e in first.items} == {a.pk, b.pk}
    unfollow(follower_id=viewer.pk, followee_id=b.pk)
    rest = feed(viewer.pk, cursor=first.next_cursor, limit=50, strategy=strategy)
    assert rest.items and {e.user_id for e in rest.items} == {a.pk}
    a_ids = expected_merge([a.pk])
    assert [e.id for e in first.items if e.user_id == a.pk] + [e.id for e in rest.items] == a_ids
    follow(follower_id=viewer.pk, followee_id=b.pk)  # following again: b is back at once, older pages included
    again = feed(viewer.pk, cursor=first.next_cursor, limit=50, strategy=strategy)
    assert {e.user_id for e in again.items} == {a.pk, b.pk}


def test_the_feed_order_equals_a_merge_made_here(strategy):
    rng = random.Random(18)
    viewer = UserFactory()
    followees = [UserFactory() for _ in range(12)]
    for f in followees[:9]:
        follow(follower_id=viewer.pk, followee_id=f.pk)
    # No corrections or team_left among them: random ones would drive the stats projection's counters negative.
    # Achievements neither: without a tier in their metadata the default feed leaves them out (a test below).
    unwanted = {E.TEAM_LEFT, E.ACHIEVEMENT_UNLOCKED}
    types = sorted(
        t for t in FEED_DEFAULT_TYPES | {E.MATCH_PLAYED, E.COINS_EARNED} if "reversed" not in t and t not in unwanted
    )
    rows = []
    for _ in range(150):
        # Few distinct timestamps: many ties across players, settled by id.
        rows.append(
            event(
                rng.choice(followees),
                rng.choice(types),
                at=BASE_TIME - minutes(rng.randrange(40)),
                visibility=rng.choice(VISIBILITIES),
            )
        )
    record(*rows)
    followed = [f.pk for f in followees[:9]]
    # Pages smaller than the follow count (the heads' bound decides) and larger (every followee contributes).
    assert [e.id for e in walk(viewer, strategy, limit=3)] == expected_merge(followed)
    assert [e.id for e in walk(viewer, strategy, limit=7)] == expected_merge(followed)
    assert [e.id for e in walk(viewer, strategy, limit=50)] == expected_merge(followed)
    picked = frozenset({E.MATCH_PLAYED, E.TEAM_JOINED})
    assert [e.id for e in walk(viewer, strategy, limit=5, types=picked)] == expected_merge(followed, picked)


def test_pagination_has_no_gaps_or_repeats_while_new_events_arrive(strategy):
    rng = random.Random(7)
    viewer = UserFactory()
    players = [UserFactory() for _ in range(5)]
    for p in players:
        follow(follower_id=viewer.pk, followee_id=p.pk)
    record(*[event(rng.choice(players), E.TEAM_JOINED, at=BASE_TIME - minutes(i)) for i in range(120)])
    before = expected_merge([p.pk for p in players])
    seen: list[int] = []
    cursor = None
    newest = BASE_TIME
    while True:
        page = feed(viewer.pk, cursor=cursor, limit=9, strategy=strategy)
        seen.extend(e.id for e in page.items)
        # New events land before the cursor's position (newer than anything read): they never shift the pages.
        newest += minutes(1)
        record(*[event(p, E.MATCH_WON, at=newest) for p in players])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == before and len(set(seen)) == len(seen)


def test_pages_stay_full_when_the_newest_events_are_hidden(strategy):
    viewer, loud, quiet = UserFactory(), UserFactory(), UserFactory()
    follow(follower_id=viewer.pk, followee_id=loud.pk)
    follow(follower_id=viewer.pk, followee_id=quiet.pk)
    # The newest 60 events are all hidden from followers (private, economy): the filter is in the query, not after it.
    record(*[event(loud, E.TEAM_JOINED, at=BASE_TIME - minutes(i), visibility="private") for i in range(30)])
    record(*[event(loud, E.COINS_EARNED, at=BASE_TIME - minutes(i)) for i in range(30)])
    record(*[event(quiet, E.TEAM_JOINED, at=BASE_TIME - minutes(100 + i)) for i in range(25)])
    page = feed(viewer.pk, limit=20, strategy=strategy)
    assert len(page.items) == 20 and page.next_cursor is not None


def test_erased_and_deactivated_players_vanish_from_the_feed(strategy):
    viewer, kept, erased, banned = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    for p in (kept, erased, banned):
        follow(follower_id=viewer.pk, followee_id=p.pk)
        record(*[event(p, E.TEAM_JOINED, at=BASE_TIME - minutes(i)) for i in range(3)])
    # Enough of the kept player's own events to fill pages: no page query can lean on the other one's answer.
    record(*[event(kept, E.TOURNAMENT_WON, at=BASE_TIME - minutes(10 + i)) for i in range(20)])
    assert {e.user_id for e in walk(viewer, strategy)} == {kept.pk, erased.pk, banned.pk}
    erase_user(erased.pk)
    User.objects.filter(pk=banned.pk).update(is_active=False)
    items = walk(viewer, strategy)
    assert {e.user_id for e in items} == {kept.pk}
    assert [e.id for e in items] == expected_merge([kept.pk])
    User.objects.filter(pk=banned.pk).update(is_active=True)  # reinstated: the follow stood, the events return
    assert {e.user_id for e in walk(viewer, strategy)} == {kept.pk, banned.pk}


def test_items_name_their_player(strategy):
    viewer, player = UserFactory(), UserFactory(username="named_one")
    UserProfile.objects.filter(pk=player.pk).update(display_name="Named One")
    follow(follower_id=viewer.pk, followee_id=player.pk)
    record(event(player, E.TOURNAMENT_WON))
    [item] = feed(viewer.pk, strategy=strategy).items
    profile = UserProfile.objects.get(pk=player.pk)
    assert (item.player_public_id, item.player_display_name, item.player_username) == (
        profile.public_id,
        "Named One",
        "named_one",
    )
    assert profile.public_id


def test_the_default_feed_shows_major_achievements_only_and_types_brings_the_minor_ones_back(strategy):
    viewer, player = UserFactory(), UserFactory()
    follow(follower_id=viewer.pk, followee_id=player.pk)
    record(
        event(player, E.ACHIEVEMENT_UNLOCKED, at=BASE_TIME, meta={"code": "first_title", "tier": "major"}),
        event(player, E.ACHIEVEMENT_UNLOCKED, at=BASE_TIME - minutes(1), meta={"code": "first_login", "tier": "minor"}),
    )
    assert [e.metadata["tier"] for e in walk(viewer, strategy)] == ["major"]
    asked = walk(viewer, strategy, types=frozenset({E.ACHIEVEMENT_UNLOCKED}))
    assert [e.metadata["tier"] for e in asked] == ["major", "minor"]


def test_the_game_filter_keeps_only_that_games_events(strategy):
    viewer, player = UserFactory(), UserFactory()
    follow(follower_id=viewer.pk, followee_id=player.pk)
    chess = {"tournament_id": 2, "tournament": "Chess Open", "game": "chess", "round": "F"}
    record(
        event(player, E.TOURNAMENT_WON, at=BASE_TIME, meta=chess),
        event(player, E.TOURNAMENT_WON, at=BASE_TIME - minutes(1)),  # valorant
        event(player, E.TEAM_JOINED, at=BASE_TIME - minutes(2), meta={"team": "Red Foxes"}),
    )
    assert [e.metadata["game"] for e in walk(viewer, strategy, game="chess")] == ["chess"]
    with pytest.raises(InvalidGameError):
        feed(viewer.pk, game="<b>")


def test_the_default_types_are_the_timelines_major_events_without_the_economy():
    assert (MAJOR_EVENTS | TIERED_EVENTS) - {E.COINS_EARNED, E.COINS_SPENT} == FEED_DEFAULT_TYPES


def test_unknown_types_are_refused_clearly():
    with pytest.raises(InvalidFeedTypeError, match="Unknown event type.*bogus"):
        parse_types("match_won, bogus")
    assert parse_types(" match_won ,team_joined") == {E.MATCH_WON, E.TEAM_JOINED}
    assert parse_types("") is None and parse_types(None) is None


def test_a_cursor_belongs_to_its_viewer_and_filters():
    viewer, other, player = UserFactory(), UserFactory(), UserFactory()
    for v in (viewer, other):
        follow(follower_id=v.pk, followee_id=player.pk)
    record(*[event(player, E.TEAM_JOINED, at=BASE_TIME - minutes(i)) for i in range(5)])
    cursor = feed(viewer.pk, limit=2).next_cursor
    with pytest.raises(InvalidCursorError):
        feed(other.pk, cursor=cursor, limit=2)
    with pytest.raises(InvalidCursorError):
        feed(viewer.pk, cursor=cursor, limit=2, types=frozenset({E.TEAM_JOINED}))
    assert feed(viewer.pk, cursor=cursor, limit=2).items


def _queries_for_a_page(viewer, strategy: Strategy, cursor=None) -> int:
    with CaptureQueriesContext(connection) as queries:
        page = feed(viewer.pk, cursor=cursor, limit=5, strategy=strategy)
    assert len(page.items) == 5
    return len(queries)


@pytest.mark.parametrize("strategy", [Strategy.PER_FOLLOWEE, Strategy.AUTO], ids=["per_followee", "auto"])
def test_queries_per_page_are_bounded_and_independent_of_the_follow_count(strategy):
    few, many = UserFactory(), UserFactory()
    players = [UserFactory() for _ in range(40)]
    for i, p in enumerate(players):
        record(*[event(p, E.TEAM_JOINED, at=BASE_TIME - minutes(i * 10 + k)) for k in range(3)])
        follow(follower_id=many.pk, followee_id=p.pk)
    for p in players[:3]:
        follow(follower_id=few.pk, followee_id=p.pk)
    counts = {
        _queries_for_a_page(few, strategy),
        _queries_for_a_page(many, strategy),
        _queries_for_a_page(many, strategy, cursor=feed(many.pk, limit=5).next_cursor),
    }
    # The follow count and the page (its settings, statement and resets in one message).
    assert counts == {2}


def test_a_short_recent_first_scan_falls_back_to_the_per_followee_query(monkeypatch):
    """RECENT_FIRST scans a capped window of everyone's newest events; a followee quieter than the window is still
    found (by the per-followee query), in one more query."""
    import activity.selectors.feed as feed_module

    viewer, quiet = UserFactory(), UserFactory()
    noisy = [UserFactory() for _ in range(3)]
    follow(follower_id=viewer.pk, followee_id=quiet.pk)
    record(event(quiet, E.TEAM_JOINED, at=BASE_TIME - minutes(500)))
    record(*[event(noisy[i % 3], E.TEAM_JOINED, at=BASE_TIME - minutes(i)) for i in range(60)])
    monkeypatch.setattr(feed_module, "MAX_SCAN", 10)
    with CaptureQueriesContext(connection) as queries:
        page = feed(viewer.pk, strategy=Strategy.RECENT_FIRST)
    assert [e.user_id for e in page.items] == [quiet.pk]
    assert len(queries) == 3


def test_the_page_query_follows_the_follow_count():
    # 21 rows over 100k players: a scan of ~21 x 100k / F rows against F probes.
    assert page_query_for(10, 100_000, 21) is Strategy.PER_FOLLOWEE
    assert page_query_for(10_000, 100_000, 21) is Strategy.RECENT_FIRST
    assert page_query_for(10_000, 100_000, 21, Strategy.PER_FOLLOWEE) is Strategy.PER_FOLLOWEE


def test_the_recent_first_scan_reads_major_achievements_from_their_own_index_and_follows_from_a_hash(monkeypatch):
    """Behind a wall of newer minor achievements (which the default feed never shows), a followee's major one is
    found by reading the major-tier index (activity 0012), not by reading every minor row to skip it; the follow
    check is one hash of the viewer's follows, probed in the scan's order (activity.selectors.feed_sql)."""
    viewer, followee, others = UserFactory(), UserFactory(), [UserFactory() for _ in range(4)]
    follow(follower_id=viewer.pk, followee_id=followee.pk)
    major = record(event(followee, E.ACHIEVEMENT_UNLOCKED, at=BASE_TIME, meta={"code": "slam", "tier": "major"}))
    record(
        *[
            event(
                others[i % 4],
                E.ACHIEVEMENT_UNLOCKED,
                at=BASE_TIME + minutes(i),
                meta={"code": f"m{i}", "tier": "minor"},
            )
            for i in range(200)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE activity_useractivity")
    import activity.selectors.feed as feed_module

    run = []
    monkeypatch.setattr(feed_module, "fetch", lambda read, params: run.append((read, params)) or fetch(read, params))
    page = feed(viewer.pk, strategy=Strategy.RECENT_FIRST)
    assert [e.id for e in page.items] == [major[0].id]
    assert [e.id for e in feed(viewer.pk, strategy=Strategy.PER_FOLLOWEE).items] == [major[0].id]
    read, params = run[0]
    plan = explain(read, params)  # the generic plan it ran with (prepared, plan_cache_mode = force_generic_plan)
    assert "activity_major_tier_time_idx" in plan, plan
    assert "hashed SubPlan" in plan, plan
