"""The player a page or endpoint is about: looked up once, with the user and follower counts in the same query."""

from __future__ import annotations

import unicodedata

from django.db.models import Count, DateTimeField, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce, Least

from activity.models import UserActivity
from activity.selectors.errors import SubjectNotFound
from esports.profiles.models import Follow, UserProfile

MAX_USERNAME_LENGTH = 150
# Control characters, line/paragraph separators and lone surrogates name nobody (Django's username validator refuses
# them). A NUL would even reach PostgreSQL, which rejects it in text: a 500 on every /u/<name>/ page before this check.
_NOT_IN_NAMES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def is_possible_username(username: object) -> bool:
    return (
        isinstance(username, str)
        and 0 < len(username) <= MAX_USERNAME_LENGTH
        and not any(unicodedata.category(c) in _NOT_IN_NAMES for c in username)
    )


def _count_of(**filters) -> Coalesce:
    field = next(iter(filters))
    counted = Follow.objects.filter(**filters).order_by().values(field).annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def _member_since() -> Least:
    """The "member since" date: the player's first recorded activity when it predates the account (imported
    history: a career that began in 2003 on an account made today), else the account's creation. One index probe on
    (user, timestamp)."""
    first = UserActivity.objects.filter(user_id=OuterRef("user_id")).order_by("timestamp").values("timestamp")[:1]
    return Least(Coalesce(Subquery(first, output_field=DateTimeField()), "created_at"), "created_at")


def _lookup(viewer, *, with_counts: bool, **filters) -> UserProfile:
    qs = UserProfile.objects.select_related("user").filter(**filters)
    if with_counts:
        qs = qs.annotate(
            followers_count=_count_of(followee_id=OuterRef("user_id")),
            following_count=_count_of(follower_id=OuterRef("user_id")),
            member_since=_member_since(),
        )
    profile = qs.first()
    # A deactivated account (erased, banned, or an erasure tombstone) is only visible to staff.
    is_staff = bool(viewer is not None and getattr(viewer, "is_authenticated", False) and viewer.is_staff)
    if profile is None or (not profile.user.is_active and not is_staff):
        raise SubjectNotFound("No such player.")
    return profile


def profile_by_username(username: str, viewer=None, *, with_counts: bool = False) -> UserProfile:
    """The profile (with its user) of `username`; raises SubjectNotFound."""
    if not is_possible_username(username):
        raise SubjectNotFound("No such player.")
    return _lookup(viewer, with_counts=with_counts, user__username=username)


def profile_by_id(user_id: int, viewer=None, *, with_counts: bool = False) -> UserProfile:
    """The profile (with its user) of the user with this id; raises SubjectNotFound."""
    return _lookup(viewer, with_counts=with_counts, user_id=user_id)
