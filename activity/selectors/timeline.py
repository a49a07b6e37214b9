"""A player's activity timeline: their major events, newest first, as the viewer may see them.

"Major" events (TIMELINE_EVENTS):
* tournament milestones: joined (checked in), completed, and the official placements (won / runner-up / top 4);
* match wins (every match, won, lost or forfeited, is in the match history; the timeline keeps the highlights);
* achievements, teams created / joined / left, DeltaCoins earned / spent (self and staff only, see activity.privacy),
  and joining the platform (profile_created, the first entry of everyone's timeline).
Left out: registrations (a check-in follows the ones that matter), match_played / match_lost.
Corrections: when a recorded win or placement is later withdrawn (a dispute resolved the other way), its compensating
event is shown as a correction entry right where it happened; the original stays, as in the ledger, so the
timeline is honest about what was announced and then corrected.
"""

from __future__ import annotations

from activity.cursors import Page, page_size, paginate
from activity.event_types import EventType as E
from activity.models import UserActivity
from activity.privacy import ViewerRelation, visible_events

DEFAULT_LIMIT = 20

TIMELINE_EVENTS: frozenset[str] = frozenset(
    {
        E.TOURNAMENT_JOINED,
        E.TOURNAMENT_COMPLETED,
        E.TOURNAMENT_WON,
        E.TOURNAMENT_RUNNER_UP,
        E.TOURNAMENT_TOP4,
        E.TOURNAMENT_WON_REVERSED,
        E.TOURNAMENT_RUNNER_UP_REVERSED,
        E.TOURNAMENT_TOP4_REVERSED,
        E.MATCH_WON,
        E.MATCH_WON_REVERSED,
        E.ACHIEVEMENT_UNLOCKED,
        E.TEAM_CREATED,
        E.TEAM_JOINED,
        E.TEAM_LEFT,
        E.COINS_EARNED,
        E.COINS_SPENT,
        E.PROFILE_CREATED,
    }
)


def timeline(relation: ViewerRelation, *, cursor: str | None = None, limit: int | None = None) -> Page[UserActivity]:
    """One page of the subject's timeline (default 20, at most 50 events); raises InvalidCursorError."""
    size = page_size(limit, DEFAULT_LIMIT)
    rows = UserActivity.objects.filter(visible_events(relation), event_type__in=sorted(TIMELINE_EVENTS))
    return paginate(rows, cursor=cursor, limit=size, scope=f"timeline:{relation.subject_id}")
