"""The player a page or endpoint is about: looked up once, with the user and follower counts in the same query."""

from __future__ import annotations

import functools
import unicodedata

from django.contrib.auth import get_user_model
from django.db import connection

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


# The page's subject (with its counts), as one statement written once per lookup column: every page and endpoint
# about a player starts with it, and composing it through the ORM (three annotated subqueries) cost more Python than
# the statement costs PostgreSQL (~4 ms of compiling per request against ~0.3 ms of execution at 100k players).
# Followers and following: an index-only count each. "Member since": the player's first recorded activity when it
# predates the account (imported history: a career that began in 2003 on an account made today), else the
# account's creation - one probe of the (user, timestamp) index.
_LOOKUP = """
SELECT {profile_columns}, {user_columns}{counts}
  FROM {profile} p JOIN {user} u ON u.id = p.user_id
 WHERE {where} = %s
 LIMIT 1
"""
_COUNTS = """,
       (SELECT count(*) FROM {follow} f WHERE f.followee_id = p.user_id) AS followers_count,
       (SELECT count(*) FROM {follow} f WHERE f.follower_id = p.user_id) AS following_count,
       LEAST(COALESCE((SELECT a.timestamp FROM {ledger} a WHERE a.user_id = p.user_id
                       ORDER BY a.timestamp LIMIT 1), p.created_at), p.created_at) AS member_since"""


def _fields(model) -> list:
    fields = list(model._meta.concrete_fields)
    # Rows become instances without the ORM's converters: a field that needs one (JSON, say) must not pass silently.
    converted = [f.name for f in fields if hasattr(f, "from_db_value")]
    assert not converted, f"{model.__name__} fields need converters: {converted}"
    return fields


@functools.cache
def _lookup_sql(where: str, with_counts: bool) -> tuple[str, list[str], list[str]]:
    user_model = get_user_model()
    profile_fields, user_fields = _fields(UserProfile), _fields(user_model)
    counts = _COUNTS.format(follow=Follow._meta.db_table, ledger=UserActivity._meta.db_table) if with_counts else ""
    sql = _LOOKUP.format(
        counts=counts,
        profile_columns=", ".join(f'p."{f.column}"' for f in profile_fields),
        user_columns=", ".join(f'u."{f.column}"' for f in user_fields),
        profile=UserProfile._meta.db_table,
        user=user_model._meta.db_table,
        where=where,
    )
    return sql, [f.attname for f in profile_fields], [f.attname for f in user_fields]


def _fetch(where: str, value: int | str, with_counts: bool) -> UserProfile | None:
    sql, profile_names, user_names = _lookup_sql(where, with_counts)
    with connection.cursor() as cursor:
        cursor.execute(sql, [value])
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(profile_names)
    profile = UserProfile.from_db(connection.alias, profile_names, row[:split])
    profile.user = get_user_model().from_db(connection.alias, user_names, row[split : split + len(user_names)])
    if with_counts:
        # Read as the ORM's annotations were (the templates and the API serialise these attributes).
        followers, following, member_since = row[split + len(user_names) :]
        profile.followers_count = followers  # type: ignore[attr-defined]
        profile.following_count = following  # type: ignore[attr-defined]
        profile.member_since = member_since  # type: ignore[attr-defined]
    return profile


def _lookup(viewer, *, with_counts: bool, where: str, value: int | str) -> UserProfile:
    profile = _fetch(where, value, with_counts)
    # A deactivated account (erased, banned, or an erasure tombstone) is only visible to staff.
    is_staff = bool(viewer is not None and getattr(viewer, "is_authenticated", False) and viewer.is_staff)
    if profile is None or (not profile.user.is_active and not is_staff):
        raise SubjectNotFound("No such player.")
    return profile


def profile_by_username(username: str, viewer=None, *, with_counts: bool = False) -> UserProfile:
    """The profile (with its user) of `username`; raises SubjectNotFound."""
    if not is_possible_username(username):
        raise SubjectNotFound("No such player.")
    return _lookup(viewer, with_counts=with_counts, where="u.username", value=username)


def profile_by_id(user_id: int, viewer=None, *, with_counts: bool = False) -> UserProfile:
    """The profile (with its user) of the user with this id; raises SubjectNotFound."""
    low, high = connection.ops.integer_field_range(get_user_model()._meta.pk.get_internal_type())
    if isinstance(user_id, bool) or not isinstance(user_id, int) or not low <= user_id <= high:
        raise SubjectNotFound("No such player.")  # an id no account can have (PostgreSQL would refuse to compare it)
    return _lookup(viewer, with_counts=with_counts, where="p.user_id", value=user_id)
