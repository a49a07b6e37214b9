"""First-page caches (UP-05): a timeline's first page for 30 seconds, a match history's for 1 minute, beside the
lifetime stats' 5 minutes (stats.selectors.lifetime).

Each entry lives under the subject's stats generation (stats.cache): every writer that changes a user's ledger or
stats drops that user's generation after commit (the projector for appended events, recompute, erasure), so a
cached first page never outlives a change to exactly the users it touched. The key holds everything else the page
depends on: the viewer's class and the subject's privacy flags (a follower and a stranger see different pages) and
the page size. Only the default lists are cached (no `types`, no `game`): their keys are bounded, and a filtered list
is read far less often. Later pages (a cursor) always read the database.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from activity.cursors import Page
from activity.privacy import ViewerRelation
from activity.selectors.match_history import match_history
from activity.selectors.timeline import timeline
from stats import cache as stats_cache

TIMELINE_TTL = 30
MATCH_HISTORY_TTL = 60
_VERSION = "v1"
P = TypeVar("P")


def _key(surface: str, relation: ViewerRelation, limit: int | None) -> str:
    flags = f"{int(relation.show_match_history)}{int(relation.show_tournament_stats)}"
    return f"page:{_VERSION}:{surface}:{relation.subject_id}:{relation.viewer_class}:{flags}:{limit or '-'}"


def _cached(surface: str, relation: ViewerRelation, limit: int | None, ttl: int, load: Callable[[], P]) -> P:
    gkey = stats_cache.generation_key(relation.subject_id)
    return stats_cache.generational_get(_key(surface, relation, limit), gkey, load, ttl)


def timeline_page(
    relation: ViewerRelation,
    *,
    cursor: str | None = None,
    limit: int | None = None,
    types: frozenset[str] | None = None,
) -> Page:
    """activity.selectors.timeline.timeline, its default first page cached for TIMELINE_TTL."""
    if cursor or types is not None or (limit is not None and not isinstance(limit, int)):
        return timeline(relation, cursor=cursor, limit=limit, types=types)
    return _cached("timeline", relation, limit, TIMELINE_TTL, lambda: timeline(relation, limit=limit))


def match_history_page(
    relation: ViewerRelation, *, cursor: str | None = None, limit: int | None = None, game: str | None = None
) -> Page:
    """activity.selectors.match_history.match_history, its unfiltered first page cached for MATCH_HISTORY_TTL
    (NotPermitted is raised before anything is cached)."""
    if cursor or game or (limit is not None and not isinstance(limit, int)):
        return match_history(relation, cursor=cursor, limit=limit, game=game)
    return _cached("matches", relation, limit, MATCH_HISTORY_TTL, lambda: match_history(relation, limit=limit))
