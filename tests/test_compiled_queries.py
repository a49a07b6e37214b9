"""project/compiled_queries.py and activity/subject_shapes.py: a first page's ORM query is compiled once per shape
(the viewer's class and the subject's privacy flags included) and each call binds its own player; what it loads is
what the ORM loads, and no two shapes ever share a compiled statement."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, DecimalField
from django.db.models.functions import Cast
from django.test.utils import CaptureQueriesContext

import project.compiled_queries as cq
from activity.cursors import paginate
from activity.event_types import EventType as E
from activity.models import UserActivity, Visibility
from activity.privacy import ViewerClass, ViewerRelation
from activity.selectors.match_history import match_history, page_of_matches, played_rows
from activity.selectors.timeline import _shown_rows, timeline
from project.compiled_queries import Marker, compiled
from tests.factories import UserFactory
from tests.read_side import BASE_TIME, event, play_match, record

USER = Marker("user")
builds: list[int] = []


def _team_events(user_id: int):
    builds.append(user_id)
    return UserActivity.objects.filter(user_id=user_id, event_type=E.TEAM_JOINED).order_by("-timestamp", "-id")


def _everyones_events(user_id: int):
    return UserActivity.objects.order_by("id")


def _event_types(user_id: int):
    return UserActivity.objects.filter(user_id=user_id).values_list("event_type", flat=True)


@pytest.fixture(autouse=True)
def _no_shapes_from_other_tests():
    cq._compile.cache_clear()
    builds.clear()
    yield
    cq._compile.cache_clear()


@pytest.mark.django_db
def test_a_shape_is_built_and_compiled_once_and_each_call_binds_its_own_id_in_one_query():
    alice, bob = UserFactory(), UserFactory()
    record(
        event(alice, E.TEAM_JOINED, at=BASE_TIME, meta={"team": "Red"}),
        event(alice, E.TEAM_JOINED, at=BASE_TIME + timedelta(hours=1), meta={"team": "Blue"}),
        event(bob, E.TEAM_JOINED, at=BASE_TIME, meta={"team": "Green"}),
    )
    for user in (alice, bob, alice):
        with CaptureQueriesContext(connection) as queries:
            loaded = compiled(_team_events, USER.sentinel, markers=(USER,)).rows({"user": user.pk})
        assert len(queries.captured_queries) == 1
        orm = list(_team_events(user.pk))
        assert [(e.pk, e.user_id, e.timestamp, e.metadata) for e in loaded] == [
            (e.pk, e.user_id, e.timestamp, e.metadata) for e in orm
        ]
    assert [m["team"] for m in (e.metadata for e in loaded)] == ["Blue", "Red"]  # JSON decoded as the ORM does
    assert builds.count(USER.sentinel) == 1  # built (and compiled) once for the three calls


def test_a_marker_that_is_not_a_parameter_of_the_sql_or_a_query_it_cannot_load_is_refused():
    with pytest.raises(ValueError, match=r"markers \['user'\] are not parameters"):
        compiled(_everyones_events, USER.sentinel, markers=(USER,))
    with pytest.raises(ValueError, match="only model and values"):
        compiled(_event_types, USER.sentinel, markers=(USER,))


@pytest.mark.django_db
def test_a_value_bound_to_a_marker_must_be_an_integer():
    shape = compiled(_team_events, USER.sentinel, markers=(USER,))
    with pytest.raises(TypeError, match="user must be an integer"):
        shape.rows({"user": "1 OR 1=1"})


RELATIONS = [
    ViewerRelation(viewer_class, 0, show_match_history=history, show_tournament_stats=stats)
    for viewer_class in ViewerClass
    for history in (True, False)
    for stats in (True, False)
]


@pytest.mark.django_db
def test_every_viewer_class_and_privacy_flag_gets_its_own_first_pages_equal_to_the_orms():
    """The shapes are read one after another in one process, most permissive first: a cache keyed without the
    viewer's class or a flag would serve a stranger the follower's or the player's own page."""
    player = UserFactory()
    record(
        event(player, E.TOURNAMENT_REGISTERED, at=BASE_TIME),
        event(player, E.TOURNAMENT_JOINED, at=BASE_TIME + timedelta(minutes=1), visibility=Visibility.FOLLOWERS),
        event(player, E.KYC_VERIFIED, at=BASE_TIME + timedelta(minutes=2), meta={}),
        event(player, E.TEAM_JOINED, at=BASE_TIME + timedelta(minutes=3), visibility=Visibility.PRIVATE),
    )
    play_match(player, "won", at=BASE_TIME + timedelta(hours=1), round="SF")
    play_match(player, "lost", at=BASE_TIME + timedelta(hours=1), round="F")
    play_match(player, "won", at=BASE_TIME + timedelta(hours=2), visibility=Visibility.FOLLOWERS)
    seen = set()
    for shape in sorted(RELATIONS, key=lambda r: r.viewer_class in (ViewerClass.SELF, ViewerClass.STAFF), reverse=True):
        relation = ViewerRelation(shape.viewer_class, player.pk, shape.show_match_history, shape.show_tournament_stats)
        page = timeline(relation, limit=3)
        orm = paginate(_shown_rows(relation, None), cursor=None, limit=3, scope=f"timeline:{player.pk}")
        assert [e.pk for e in page.items] == [e.pk for e in orm.items], relation
        assert (page.next_cursor, page.previous_cursor) == (orm.next_cursor, orm.previous_cursor)
        seen.add(tuple(e.pk for e in page.items))
        if relation.can_see_match_history:
            matches = match_history(relation, limit=2)
            orm = page_of_matches(played_rows(relation), relation, cursor=None, limit=2, scope=f"matches:{player.pk}:")
            assert [(m.pk, m.outcome, m.round_rank, m.match_id) for m in matches.items] == [
                (m.pk, m.outcome, m.round_rank, m.match_id) for m in orm.items
            ], relation
            assert matches.next_cursor == orm.next_cursor
            if matches.next_cursor:  # the next page goes on from the compiled page's cursor
                rest = match_history(relation, cursor=matches.next_cursor, limit=2)
                assert rest.items and {m.pk for m in rest.items}.isdisjoint(m.pk for m in matches.items)
    assert len(seen) >= 3  # the shapes really differ: the player, a follower and a stranger see different pages


def _joined_per_team(user_id: int):
    return (
        UserActivity.objects.filter(user_id=user_id, event_type=E.TEAM_JOINED)
        .values("metadata__team")
        .annotate(joins=Count("id"), share=Cast(Count("id"), DecimalField(max_digits=6, decimal_places=2)) / 4)
        .order_by("metadata__team")
    )


@pytest.mark.django_db
def test_a_values_query_loads_the_dicts_the_orm_loads_its_converters_applied():
    player = UserFactory()
    record(
        *(
            event(player, E.TEAM_JOINED, at=BASE_TIME + timedelta(minutes=i), meta={"team": t})
            for i, t in enumerate("ABA")
        )
    )
    loaded = compiled(_joined_per_team, USER.sentinel, markers=(USER,)).rows({"user": player.pk})
    assert loaded == list(_joined_per_team(player.pk))
    assert loaded == [
        {"metadata__team": "A", "joins": 2, "share": Decimal("0.50")},
        {"metadata__team": "B", "joins": 1, "share": Decimal("0.25")},
    ]
