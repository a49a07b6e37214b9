"""A player's follower and following lists, newest follow first, cursor-paginated on (followed at, follow id).

Privacy: DESIGN.md says nothing about these lists; they are public, like the follower counts on every profile, and
show only what is public about a player anyway (public ID, display name, username). Deactivated accounts (erased,
banned) are never listed (an erasure also deletes the player's follows).
"""

from __future__ import annotations

from django.db.models import F, QuerySet

from activity.cursors import Page, page_size, paginate
from esports.profiles.models import Follow

DEFAULT_LIMIT = 20


def _page(rows: QuerySet[Follow], *, cursor: str | None, limit: int | None, scope: str) -> Page[Follow]:
    rows = rows.annotate(timestamp=F("created_at"))
    return paginate(rows, cursor=cursor, limit=page_size(limit, DEFAULT_LIMIT), scope=scope)


def followers(subject_id: int, *, cursor: str | None = None, limit: int | None = None) -> Page[Follow]:
    """Who follows the subject; each Follow comes with `follower` and `follower.profile` (one query per page)."""
    rows = Follow.objects.filter(followee_id=subject_id, follower__is_active=True).select_related("follower__profile")
    return _page(rows, cursor=cursor, limit=limit, scope=f"followers:{subject_id}")


def following(subject_id: int, *, cursor: str | None = None, limit: int | None = None) -> Page[Follow]:
    """Whom the subject follows; each Follow comes with `followee` and `followee.profile` (one query per page)."""
    rows = Follow.objects.filter(follower_id=subject_id, followee__is_active=True).select_related("followee__profile")
    return _page(rows, cursor=cursor, limit=limit, scope=f"following:{subject_id}")
