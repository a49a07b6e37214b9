"""A player's activity timeline, newest first, as the viewer may see it: the major events by default, any event types
on request (`types`). The ledger keeps everything; which events a timeline shows is a read-side choice.

The default (UP-05's major events, MAJOR_EVENTS):
* joining the platform (profile_created, the first entry of everyone's timeline);
* tournament registrations and check-ins (joined);
* titles and podiums: the official placements (won / runner-up / top 4);
* achievements of the major tier only (metadata `tier`); team joins; level-ups (every 5 levels); identity
  verification (a private event: the player and staff only).
Left out by default: every match (the match history lists them), DeltaCoins, minor achievements, completions, teams
created or left. `types` names the event types to show instead (any of EventType); privacy still applies to each
(activity.privacy.visible_events): asking for coins as another player shows nothing.
Corrections: when a shown event is later withdrawn (a dispute resolved the other way), its compensating event is
shown as a correction entry right where it happened; the original stays, as in the ledger.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q

from activity.cursors import NEWEST_FIRST, Page, newest_page, page_size, paginate
from activity.event_types import REVERSAL_OF
from activity.event_types import EventType as E
from activity.models import UserActivity
from activity.privacy import ViewerRelation, visible_events
from activity.selectors.errors import InvalidQueryError
from activity.subject_shapes import first_rows

DEFAULT_LIMIT = 20
MAJOR_TIER = "major"
MAX_TYPES = len(E.values)


def _with_reversals(types: Iterable[str]) -> frozenset[str]:
    return frozenset({str(t) for t in types} | {str(REVERSAL_OF[t]) for t in types if t in REVERSAL_OF})


MAJOR_EVENTS: frozenset[str] = _with_reversals(
    {
        E.PROFILE_CREATED,
        E.TOURNAMENT_REGISTERED,
        E.TOURNAMENT_JOINED,
        E.TOURNAMENT_WON,
        E.TOURNAMENT_RUNNER_UP,
        E.TOURNAMENT_TOP4,
        E.TEAM_JOINED,
        E.LEVEL_UP,
        E.KYC_VERIFIED,  # private: only the player (and staff) see it
    }
)
# Shown by default only when of the major tier (their metadata says which).
TIERED_EVENTS: frozenset[str] = _with_reversals({E.ACHIEVEMENT_UNLOCKED})


class InvalidEventTypesError(InvalidQueryError):
    code = "invalid_types"


def parse_types(raw: str | Iterable[str] | None) -> frozenset[str] | None:
    """`types` as given (comma-separated text or a list) -> the event types asked for, or None for the default;
    raises InvalidEventTypesError naming the unknown ones."""
    if raw is None:
        return None
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    wanted = {t.strip() for t in items if isinstance(t, str) and t.strip()}
    if not wanted:
        return None
    unknown = sorted(t for t in wanted if t not in E.values)
    if unknown or len(wanted) > MAX_TYPES:
        raise InvalidEventTypesError(f"Unknown event type(s): {', '.join(unknown[:5])}; see EventType for the list.")
    return frozenset(wanted)


def timeline(
    relation: ViewerRelation,
    *,
    cursor: str | None = None,
    limit: int | None = None,
    types: frozenset[str] | None = None,
) -> Page[UserActivity]:
    """One page of the subject's timeline (default 20, at most 50 events): the major events, or the event `types`
    asked for (with their corrections); raises InvalidCursorError."""
    size = page_size(limit, DEFAULT_LIMIT)
    if types is None:
        scope = f"timeline:{relation.subject_id}"
    else:
        # A cursor belongs to its filter: one page's cursor cannot continue another filter's list.
        scope = f"timeline:{relation.subject_id}:{','.join(sorted(_with_reversals(types)))}"
    if not cursor and types is None:  # the profile's read: its query compiled once per viewer class and flags
        return newest_page(first_rows(_shown_rows, relation, None, order=NEWEST_FIRST, count=size + 1), size, scope)
    return paginate(_shown_rows(relation, types), cursor=cursor, limit=size, scope=scope)


def _shown_rows(relation: ViewerRelation, types: frozenset[str] | None):
    if types is None:
        shown = Q(event_type__in=sorted(MAJOR_EVENTS)) | Q(
            event_type__in=sorted(TIERED_EVENTS), metadata__tier=MAJOR_TIER
        )
    else:
        shown = Q(event_type__in=sorted(_with_reversals(types)))
    return UserActivity.objects.filter(visible_events(relation)).filter(shown)
