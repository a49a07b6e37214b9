"""First-page caches: a timeline's and a match history's first page are served from the cache until a change to
that player is committed, never across viewers who may see different things."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activity.event_types import EventType as E
from activity.models import UserActivity
from activity.privacy import NotPermitted, relation_between
from esports.profiles.models import UserProfile
from stats.selectors.first_pages import match_history_page, timeline_page
from tests.factories import FollowFactory, UserFactory
from tests.read_side import BASE_TIME, event, fresh_cache, minutes, play_match, record  # noqa: F401 - fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]
LEDGER = UserActivity._meta.db_table


def ledger_reads(fn) -> tuple[object, int]:
    with CaptureQueriesContext(connection) as captured:
        result = fn()
    return result, sum(1 for q in captured.captured_queries if LEDGER in q["sql"])


def relation(viewer, subject):
    return relation_between(viewer, UserProfile.objects.select_related("user").get(pk=subject.pk))


def ids(page) -> list[int]:
    return [e.id for e in page.items]


@pytest.mark.parametrize("surface", [timeline_page, match_history_page])
def test_the_first_page_is_cached_until_a_change_to_that_player_commits(surface, django_capture_on_commit_callbacks):
    player, other = UserFactory(), UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        record(event(player, E.TOURNAMENT_JOINED, at=BASE_TIME))
        play_match(player, "won", at=BASE_TIME + minutes(1))
    first, reads = ledger_reads(lambda: surface(relation(player, player)))
    assert reads >= 1 and first.items
    again, reads = ledger_reads(lambda: surface(relation(player, player)))
    assert (ids(again), reads) == (ids(first), 0)  # from the cache

    with django_capture_on_commit_callbacks(execute=True):
        play_match(other, "won", at=BASE_TIME + minutes(2))  # another player's change: this cache stays
    _page, reads = ledger_reads(lambda: surface(relation(player, player)))
    assert reads == 0

    with django_capture_on_commit_callbacks(execute=True):
        record(event(player, E.TOURNAMENT_JOINED, at=BASE_TIME + minutes(3)))
        play_match(player, "lost", at=BASE_TIME + minutes(4))
    fresh, reads = ledger_reads(lambda: surface(relation(player, player)))
    assert reads >= 1 and len(fresh.items) == len(first.items) + 1  # the change is on the next read


def test_a_cached_page_is_never_served_to_a_viewer_who_may_see_less():
    player, fan = UserFactory(), UserFactory()
    FollowFactory(follower=fan, followee=player)
    record(event(player, E.TOURNAMENT_JOINED, at=BASE_TIME, visibility="followers"))
    assert len(timeline_page(relation(fan, player)).items) == 1  # cached for followers
    assert timeline_page(relation(UserFactory(), player)).items == []
    stranger = UserFactory()
    play_match(player, "won")
    assert match_history_page(relation(stranger, player)).items  # cached while the history is shown
    UserProfile.objects.filter(pk=player.pk).update(show_match_history=False)  # no ledger change, no invalidation
    with pytest.raises(NotPermitted):  # the flags are part of the key: the cached page is not served
        match_history_page(relation(stranger, player))


def test_later_pages_and_filtered_lists_read_the_database():
    player = UserFactory()
    record(*[event(player, E.TOURNAMENT_JOINED, at=BASE_TIME + minutes(i)) for i in range(30)])
    first = timeline_page(relation(player, player))
    _page, reads = ledger_reads(lambda: timeline_page(relation(player, player), cursor=first.next_cursor))
    assert reads == 1
    _page, reads = ledger_reads(lambda: timeline_page(relation(player, player), types=frozenset({E.TOURNAMENT_JOINED})))
    assert reads == 1
