"""A player's tournament history: registrations, check-ins, completions and official placements, newest first.

With `show_tournament_stats` off, others get the official placements only (activity.privacy); the caller can tell
from `relation.can_see_tournament_participation` and say so.
"""

from __future__ import annotations

from activity.cursors import Page, page_size, paginate
from activity.models import UserActivity
from activity.privacy import PARTICIPATION_EVENTS, PLACEMENT_EVENTS, ViewerRelation, visible_events

DEFAULT_LIMIT = 20
TOURNAMENT_EVENTS: frozenset[str] = PARTICIPATION_EVENTS | PLACEMENT_EVENTS


def tournament_history(
    relation: ViewerRelation, *, cursor: str | None = None, limit: int | None = None
) -> Page[UserActivity]:
    """One page of tournament events (default 20, at most 50); raises InvalidCursorError."""
    size = page_size(limit, DEFAULT_LIMIT)
    rows = UserActivity.objects.filter(visible_events(relation), event_type__in=sorted(TOURNAMENT_EVENTS))
    return paginate(rows, cursor=cursor, limit=size, scope=f"tournaments:{relation.subject_id}")
