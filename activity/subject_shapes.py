"""A subject's first rows, read through a query compiled once per shape (project.compiled_queries).

The first page of a player's timeline or match history is the profile page's hottest read. Its queryset depends on
the viewer's relation to the player (activity.privacy: which event types and visibilities are shown) and on the
list's own conditions, and varies per request only in the player. So the relation, with its subject replaced by a
marker, names the shape (viewer class and privacy flags included), and each request binds its player's id.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import replace

from django.db.models import QuerySet

from activity.privacy import ViewerRelation
from project.compiled_queries import Marker, compiled

SUBJECT = Marker("subject")


def first_rows(
    build: Callable[..., QuerySet], relation: ViewerRelation, *args: Hashable, order: tuple[str, ...], count: int
) -> list:
    """The first `count` rows of `build(relation, *args)` in `order` (a module-level `build`, hashable `args`)."""
    shape = compiled(
        _ordered, build, replace(relation, subject_id=SUBJECT.sentinel), args, order, count, markers=(SUBJECT,)
    )
    return shape.rows({SUBJECT.name: relation.subject_id})


def _ordered(build, relation, args, order, count) -> QuerySet:
    return build(relation, *args).order_by(*order)[:count]
