"""A player's DeltaCoin movements (coins earned / spent), newest first: self and staff only."""

from __future__ import annotations

from activity.cursors import Page, page_size, paginate
from activity.models import UserActivity
from activity.privacy import ECONOMY_EVENTS, ViewerRelation, require, visible_events

DEFAULT_LIMIT = 10
ECONOMY_PRIVATE = "Only the player and staff can see a player's DeltaCoin economy."


def coin_events(relation: ViewerRelation, *, cursor: str | None = None, limit: int | None = None) -> Page[UserActivity]:
    """One page of coin events (default 10, at most 50); raises NotPermitted for anyone but self and staff."""
    require(relation.can_see_economy, ECONOMY_PRIVATE)
    size = page_size(limit, DEFAULT_LIMIT)
    rows = UserActivity.objects.filter(visible_events(relation), event_type__in=sorted(ECONOMY_EVENTS))
    return paginate(rows, cursor=cursor, limit=size, scope=f"economy:{relation.subject_id}")
