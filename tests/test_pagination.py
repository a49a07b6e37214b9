"""Cursor pagination on (timestamp, id): no gaps, no repeats, stable order, even while new events keep arriving."""

from __future__ import annotations

import random

import pytest

from activity.cursors import (
    MAX_PAGE_SIZE,
    InvalidCursorError,
    InvalidPageSizeError,
    Position,
    decode_cursor,
    encode_cursor,
)
from activity.event_types import EventType as E
from activity.models import UserActivity
from activity.privacy import ViewerClass, ViewerRelation
from activity.selectors import match_history as match_history_module
from activity.selectors import timeline as timeline_module
from activity.selectors import tournament_history as tournament_module
from activity.selectors.match_history import match_history
from activity.selectors.timeline import timeline
from activity.selectors.tournament_history import tournament_history
from tests.factories import UserFactory
from tests.read_side import BASE_TIME, event, minutes, record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]

TIMELINE_MIX = (
    E.TEAM_JOINED,
    E.ACHIEVEMENT_UNLOCKED,
    E.COINS_EARNED,
    E.TOURNAMENT_JOINED,
    E.MATCH_WON,
    E.TOURNAMENT_COMPLETED,
    E.COINS_SPENT,
    E.TOURNAMENT_WON,
)


def _self(user) -> ViewerRelation:
    return ViewerRelation(ViewerClass.SELF, user.pk)


def _seed_timeline(user, n: int, rng: random.Random) -> set[int]:
    """n timeline events over n // 4 distinct timestamps (so ties on timestamp are everywhere), inserted in a random
    order so that id order and time order disagree."""
    events = [event(user, rng.choice(TIMELINE_MIX), at=BASE_TIME + minutes(rng.randrange(n // 4))) for _ in range(n)]
    rng.shuffle(events)
    record(*events)
    return set(UserActivity.objects.filter(user=user).values_list("id", flat=True))


def _key(row) -> tuple:
    return (row.timestamp, row.id)


def test_timeline_pages_through_1200_events_without_gaps_or_repeats_while_new_events_arrive() -> None:
    rng = random.Random(1)
    user = UserFactory()
    original = _seed_timeline(user, 1200, rng)
    assert len(original) == 1200
    relation = _self(user)

    seen: list = []
    cursor, pages = None, 0
    while True:
        page = timeline(relation, cursor=cursor, limit=MAX_PAGE_SIZE, types=frozenset(TIMELINE_MIX))
        seen.extend(page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        last = page.items[-1]
        # Arrivals while the reader is between pages: a brand-new event, one tied with the page boundary's timestamp,
        # and a late-recorded one from long ago (source time, not recording time, orders the list).
        record(
            event(user, E.TEAM_JOINED, at=BASE_TIME + minutes(10_000 + pages)),
            event(user, E.ACHIEVEMENT_UNLOCKED, at=last.timestamp),
            event(user, E.COINS_EARNED, at=BASE_TIME - minutes(pages)),
        )

    ids = [row.id for row in seen]
    assert len(ids) == len(set(ids)), "an event was served twice"
    assert original <= set(ids), f"{len(original - set(ids))} events were skipped"
    keys = [_key(row) for row in seen]
    assert keys == sorted(keys, reverse=True), "pages are not in strict (timestamp, id) descending order"
    assert pages >= 1200 // MAX_PAGE_SIZE


def test_match_history_pages_through_1000_matches_via_the_api_next_links(client):
    rng = random.Random(2)
    user = UserFactory()
    client.force_login(user)
    rows, expected = [], {}
    for _ in range(1000):
        at = BASE_TIME + minutes(rng.randrange(200))  # 5 matches per timestamp on average
        played = event(user, E.MATCH_PLAYED, at=at)
        outcome = rng.choice(("won", "lost", "forfeit"))
        rows.append(played)
        if outcome != "forfeit":
            rows.append(
                event(user, E.MATCH_WON if outcome == "won" else E.MATCH_LOST, at=at, source_id=played.source_id)
            )
        expected[played.source_id] = outcome
    record(*rows)

    url, served, arrivals = f"/api/users/{user.pk}/matches/?limit=50", [], 0
    while url:
        body = client.get(url).json()
        served.extend(body["results"])
        url = body["next"]
        if url:
            arrivals += 1
            newer = event(user, E.MATCH_PLAYED, at=BASE_TIME + minutes(1000 + arrivals))
            record(newer, event(user, E.MATCH_WON, at=newer.timestamp, source_id=newer.source_id))

    ids = [m["id"] for m in served]
    assert len(ids) == len(set(ids)) == 1000, "gaps or repeats"
    by_id = dict(UserActivity.objects.filter(id__in=ids).values_list("id", "source_id"))
    assert {by_id[m["id"]]: m["outcome"] for m in served} == expected
    stamps = [(m["timestamp"], m["id"]) for m in served]
    assert stamps == sorted(stamps, reverse=True)


def test_default_and_maximum_page_sizes():
    user = UserFactory()
    record(*[event(user, E.TOURNAMENT_JOINED, at=BASE_TIME + minutes(i)) for i in range(60)])
    record(*[event(user, E.MATCH_PLAYED, at=BASE_TIME + minutes(i)) for i in range(60)])
    relation = _self(user)
    assert len(timeline(relation).items) == timeline_module.DEFAULT_LIMIT == 20
    assert len(tournament_history(relation).items) == tournament_module.DEFAULT_LIMIT == 20
    assert len(match_history(relation).items) == match_history_module.DEFAULT_LIMIT == 10
    assert len(match_history(relation, limit=50).items) == 50
    for bad in (0, -1, 51, 10_000, True, "10"):
        with pytest.raises(InvalidPageSizeError):
            timeline(relation, limit=bad)


def test_last_page_has_no_cursor_and_an_empty_list_is_one_empty_page():
    user = UserFactory()
    relation = _self(user)
    empty = timeline(relation)
    assert empty.items == [] and empty.next_cursor is None
    record(*[event(user, E.TEAM_JOINED, at=BASE_TIME + minutes(i)) for i in range(20)])
    exact = timeline(relation, limit=20)
    assert len(exact.items) == 20 and exact.next_cursor is None  # no "next" pointing at an empty page


def test_a_cursor_only_works_on_the_list_that_issued_it():
    user, other = UserFactory(), UserFactory()
    record(*[event(u, E.TOURNAMENT_JOINED, at=BASE_TIME + minutes(i)) for u in (user, other) for i in range(30)])
    cursor = timeline(_self(user), limit=5).next_cursor
    assert timeline(_self(user), cursor=cursor, limit=5).items  # the issuing list accepts it
    with pytest.raises(InvalidCursorError):
        tournament_history(_self(user), cursor=cursor)  # another surface
    with pytest.raises(InvalidCursorError):
        timeline(_self(other), cursor=cursor)  # another player's timeline


@pytest.mark.parametrize("raw", ["garbage", "a:b", "W1swLDFdXQ:bad", "x" * 600, ":", "WzAsMV0:"])
def test_malformed_cursors_are_rejected(raw):
    with pytest.raises(InvalidCursorError):
        decode_cursor(raw, "timeline:1")


def test_a_tampered_cursor_is_rejected_even_with_a_valid_looking_payload():
    genuine = encode_cursor(Position(BASE_TIME, 42), "timeline:1")
    payload, signature = genuine.rsplit(":", 1)
    forged_payload = encode_cursor(Position(BASE_TIME, 43), "timeline:1").rsplit(":", 1)[0]
    for forged in (
        f"{forged_payload}:{signature}",
        f"{payload}:{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
    ):
        with pytest.raises(InvalidCursorError):
            decode_cursor(forged, "timeline:1")
    assert decode_cursor(genuine, "timeline:1") == Position(BASE_TIME, 42)
