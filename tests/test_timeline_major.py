"""The timeline shows the major events by default (UP-05) and any other event types on request (`types`), always
within privacy; selector, API and page alike."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from activity.cursors import InvalidCursorError
from activity.event_types import EventType as E
from activity.privacy import relation_between
from activity.selectors.timeline import InvalidEventTypesError, parse_types, timeline
from esports.profiles.models import UserProfile
from tests.factories import UserFactory
from tests.read_side import BASE_TIME, event, minutes, play_match, record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]

CUP = {"tournament_id": 1, "tournament": "Spring Cup", "game": "valorant"}


def history(user) -> None:
    """One event of each kind, a minute apart; the won placement later withdrawn."""
    at = iter(BASE_TIME + minutes(i) for i in range(100))
    won = event(user, E.TOURNAMENT_WON, meta=CUP, at=next(at))
    record(
        event(user, E.PROFILE_CREATED, meta={}, at=next(at)),
        event(user, E.TOURNAMENT_REGISTERED, meta=CUP, at=next(at)),
        event(user, E.TOURNAMENT_JOINED, meta=CUP, at=next(at)),
        event(user, E.TOURNAMENT_COMPLETED, meta=CUP, at=next(at)),
        won,
        event(user, E.TOURNAMENT_TOP4, meta=CUP, at=next(at)),
        event(user, E.ACHIEVEMENT_UNLOCKED, meta={"code": "mvp", "name": "MVP", "tier": "major"}, at=next(at)),
        event(user, E.ACHIEVEMENT_UNLOCKED, meta={"code": "hi", "name": "Hello", "tier": "minor"}, at=next(at)),
        event(user, E.TEAM_JOINED, meta={"team_id": 1, "team": "Foxes"}, at=next(at)),
        event(user, E.TEAM_CREATED, meta={"team_id": 2, "team": "Owls"}, at=next(at)),
        event(user, E.COINS_EARNED, meta={"reason": "prize"}, at=next(at)),
    )
    play_match(user, "won", at=next(at))
    play_match(user, "lost", at=next(at))
    record(
        event(
            user,
            E.TOURNAMENT_WON_REVERSED,
            meta={**CUP, "reverses": "tournament_won"},
            source_id=won.source_id,
            at=next(at),
        )
    )


def shown(user, viewer=None, **kwargs) -> list[str]:
    subject = UserProfile.objects.select_related("user").get(pk=user.pk)
    relation = relation_between(viewer if viewer is not None else user, subject)
    return [e.event_type for e in timeline(relation, **kwargs).items]


def test_the_default_timeline_is_the_major_events_only():
    user = UserFactory()
    history(user)
    events = shown(user)
    assert set(events) == {
        E.PROFILE_CREATED,
        E.TOURNAMENT_REGISTERED,
        E.TOURNAMENT_JOINED,
        E.TOURNAMENT_WON,
        E.TOURNAMENT_WON_REVERSED,  # the correction of a shown title is shown where it happened
        E.TOURNAMENT_TOP4,
        E.ACHIEVEMENT_UNLOCKED,
        E.TEAM_JOINED,
    }
    assert events.count(E.ACHIEVEMENT_UNLOCKED) == 1  # the major one; the minor one is left out
    for left_out in (E.MATCH_PLAYED, E.MATCH_WON, E.MATCH_LOST, E.COINS_EARNED, E.TOURNAMENT_COMPLETED):
        assert left_out not in events


def test_types_brings_other_events_back_within_privacy():
    user = UserFactory()
    history(user)
    assert shown(user, types=frozenset({E.MATCH_WON, E.MATCH_LOST})) == [E.MATCH_LOST, E.MATCH_WON]
    achievements = shown(user, types=frozenset({E.ACHIEVEMENT_UNLOCKED}))
    assert achievements == [E.ACHIEVEMENT_UNLOCKED, E.ACHIEVEMENT_UNLOCKED]  # every tier when asked for
    assert shown(user, types=frozenset({E.COINS_EARNED})) == [E.COINS_EARNED]  # self sees their coins
    for viewer in (AnonymousUser(), UserFactory()):
        assert shown(user, viewer, types=frozenset({E.COINS_EARNED})) == []  # others never do
        assert E.MATCH_WON in shown(user, viewer, types=frozenset({E.MATCH_WON}))
    UserProfile.objects.filter(pk=user.pk).update(show_match_history=False)
    assert shown(user, UserFactory(), types=frozenset({E.MATCH_WON})) == []  # the flag hides matches from others


def test_types_are_validated_and_a_cursor_belongs_to_its_filter():
    assert parse_types(" match_won, match_lost ,") == {E.MATCH_WON, E.MATCH_LOST}
    assert parse_types("") is None and parse_types(None) is None
    with pytest.raises(InvalidEventTypesError, match="bogus"):
        parse_types("match_won,bogus")
    user = UserFactory()
    record(*[event(user, E.MATCH_WON, at=BASE_TIME + minutes(i)) for i in range(8)])
    relation = relation_between(user, UserProfile.objects.select_related("user").get(pk=user.pk))
    cursor = timeline(relation, limit=3, types=frozenset({E.MATCH_WON})).next_cursor
    assert len(timeline(relation, limit=3, types=frozenset({E.MATCH_WON}), cursor=cursor).items) == 3
    with pytest.raises(InvalidCursorError):
        timeline(relation, cursor=cursor)


def test_the_api_and_the_page_take_types(client):
    user = UserFactory()
    history(user)
    default = client.get(f"/api/users/{user.pk}/activity/").json()["results"]
    assert E.MATCH_WON not in {e["event_type"] for e in default}
    asked = client.get(f"/api/users/{user.pk}/activity/", {"types": "match_won"}).json()["results"]
    assert [e["event_type"] for e in asked] == [E.MATCH_WON]
    assert client.get(f"/api/users/{user.pk}/activity/", {"types": "nope"}).status_code == 400
    page = client.get(f"/u/{user.username}/activity/", {"types": "match_won,match_lost"})
    assert page.status_code == 200 and b'value="match_won,match_lost"' in page.content
    assert b"Won a QF match" in page.content
    assert b"Won a QF match" not in client.get(f"/u/{user.username}/activity/").content
    assert client.get(f"/u/{user.username}/activity/", {"types": "nope"}).status_code == 400
