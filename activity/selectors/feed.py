"""The following feed: the major events of everyone a viewer follows, newest first, as a follower may see them.

Types: the timeline's default types (MAJOR_EVENTS and major-tier TIERED_EVENTS, one list for both surfaces) unless
the viewer asks for others (`types`, any event type a follower may see). Game filter: `metadata.game`, as the match
history.

Privacy is the viewer's relation *now* and is decided inside the page query, per followee, from the same rules as
every other surface (activity.privacy: a FOLLOWER's ViewerRelation for each combination of the followee's flags
gives the types withheld and the visibilities shown): `public` and `followers` events, never `private` ones, never
economy events (so never an amount), no match events of a followee hiding their match history, no participation
events of one hiding their tournament stats; deactivated (erased, banned) followees are left out. Follows are read by
the query itself, never cached: an unfollowed player is gone from the very next page. Filtering in the query, not in
Python after the LIMIT, also keeps every page full.

Fast at any follow count and history length: one page query, chosen by the follow count (activity/selectors/
feed_sql.py has both and their costs):
* few followees: PER_FOLLOWEE. For each followee, their newest visible event before the cursor (one index probe,
  LIMIT 1: the "heads"); the (limit)-th newest head is a bound: those `limit` followees each have an event at or after
  it, so the page's last event is no older than it, and only followees whose head is at or after it can contribute
  (exactly `limit` of them, positions being unique). Their newest `limit` events between bound and cursor (LATERAL
  top-N on the (user, -timestamp, -id) index) are merged by one sort of at most limit^2 rows.
* many followees (4 x followees^2 > limit x players: the scanned rows cost less than the probes): RECENT_FIRST,
  the newest events of the requested types across all players, kept when followed; its scan is capped and a page it
  cannot fill within the cap is answered by PER_FOLLOWEE (a third query, still independent of the follow count).
Deeper pages cost the same as the first: keyset on (timestamp, id), the cursor an index condition of every scan.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from activity.cursors import Page, Position, decode_cursor, encode_cursor, page_size
from activity.event_types import EventType
from activity.models import UserActivity
from activity.privacy import ECONOMY_EVENTS, ViewerClass, ViewerRelation
from activity.selectors import feed_sql
from activity.selectors.errors import InvalidQueryError
from activity.selectors.match_history import validate_game
from activity.selectors.timeline import MAJOR_EVENTS, MAJOR_TIER, TIERED_EVENTS
from project.one_trip_reads import Rows, fetch, instances

DEFAULT_LIMIT = 20
# What a follower may ever see in the feed: every type but the economy's (self and staff only).
FEED_ALLOWED_TYPES: frozenset[str] = frozenset(EventType.values) - ECONOMY_EVENTS
# The feed's default types are the timeline's major events (one list for both surfaces: a change of the timeline's
# defaults changes the feed's), without the economy's, which a follower never sees.
# Tiered types (achievements) count as major only when their metadata says so, in the feed as on the timeline.
FEED_DEFAULT_TYPES: frozenset[str] = (MAJOR_EVENTS | TIERED_EVENTS) & FEED_ALLOWED_TYPES


class InvalidFeedTypeError(InvalidQueryError):
    code = "invalid_type"


def parse_types(raw: str | Iterable[str] | None) -> frozenset[str] | None:
    """The event types asked for (comma-separated or a list), None for the default; raises InvalidFeedTypeError."""
    if raw is None:
        return None
    parts = raw.split(",") if isinstance(raw, str) else [p for item in raw for p in str(item).split(",")]
    types = {p.strip() for p in parts if p.strip()}
    if not types:
        return None
    economy = sorted(types & ECONOMY_EVENTS)
    if economy:
        raise InvalidFeedTypeError(f"The feed never shows economy events ({', '.join(economy)}): they are private.")
    unknown = sorted(types - FEED_ALLOWED_TYPES)
    if unknown:
        shown = ", ".join(t[:40] for t in unknown[:5])
        raise InvalidFeedTypeError(
            f"Unknown event type(s): {shown}. Known types: {', '.join(sorted(FEED_ALLOWED_TYPES))}."
        )
    return frozenset(types)


def _hidden(show_match_history: bool, show_tournament_stats: bool) -> frozenset[str]:
    # The rules of activity.privacy, as they apply to a follower of a followee with these flags.
    return ViewerRelation(ViewerClass.FOLLOWER, 0, show_match_history, show_tournament_stats).hidden_event_types()


_FOLLOWER_VISIBILITIES = sorted(ViewerRelation(ViewerClass.FOLLOWER, 0).visibilities)
_ALWAYS_HIDDEN = _hidden(True, True)
# Withheld only when the followee's match-history / tournament-stats flag is off.
_MATCH_TYPES = sorted(_hidden(False, True) - _ALWAYS_HIDDEN)
_PARTICIPATION_TYPES = sorted(_hidden(True, False) - _ALWAYS_HIDDEN)
# The queries test the two flags independently: right as long as each flag withholds its own types (checked here,
# so that a rule of activity.privacy that combined them would stop the app instead of leaking through the feed).
if _hidden(False, False) != _ALWAYS_HIDDEN | set(_MATCH_TYPES) | set(_PARTICIPATION_TYPES):
    raise RuntimeError("activity.privacy's flag rules no longer combine independently: update the feed queries.")

# RECENT_FIRST scans this many times the rows it expects to need, at most MAX_SCAN rows.
SCAN_MARGIN = 4
MAX_SCAN = 20_000


class Strategy(enum.StrEnum):
    """Which page query runs: AUTO chooses by the follow count; the others are for benchmarks and tests."""

    AUTO = "auto"
    PER_FOLLOWEE = "per_followee"
    RECENT_FIRST = "recent_first"


def page_query_for(followees: int, players: int, rows: int, strategy: Strategy = Strategy.AUTO) -> Strategy:
    """The page query to run first (PER_FOLLOWEE or RECENT_FIRST) for a viewer with this many followees."""
    if strategy is not Strategy.AUTO:
        return strategy
    return Strategy.RECENT_FIRST if _scan_is_cheaper(followees, players, rows) else Strategy.PER_FOLLOWEE


def _scan_is_cheaper(followees: int, players: int, rows: int) -> bool:
    # Rows RECENT_FIRST expects to scan (rows x players / followees, activity being alike) against PER_FOLLOWEE's
    # probes (one per followee). A probe (follow, account, profile, ledger index and row) costs about four scanned
    # rows (ledger row, follow pair): bench/read_path.py on 100k players measured ~38 us a probe at 1,000 followees
    # and ~10 us a scanned row, so the two meet near 700 followees there.
    return 4 * followees * followees > rows * players


def feed(
    viewer_id: int,
    *,
    cursor: str | None = None,
    limit: int | None = None,
    types: frozenset[str] | None = None,
    game: str | None = None,
    strategy: Strategy = Strategy.AUTO,
) -> Page[UserActivity]:
    """One page of the viewer's following feed (default 20, at most 50 events); each event carries its player as
    `player_public_id`, `player_display_name` and `player_username`. Two round trips (the follow count, the page),
    three when a capped RECENT_FIRST scan falls short.

    Raises InvalidCursorError, InvalidPageSizeError, InvalidFeedTypeError or InvalidGameError on bad input.
    """
    size = page_size(limit, DEFAULT_LIMIT)
    game = validate_game(game)
    chosen = FEED_DEFAULT_TYPES if types is None else types
    if not chosen <= FEED_ALLOWED_TYPES:
        raise InvalidFeedTypeError("The feed shows only event types a follower may see.")
    scope = f"feed:{viewer_id}:{','.join(sorted(chosen))}:{game or ''}"
    position = decode_cursor(cursor, scope)
    rows = size + 1  # one more than the page: whether another page exists, without a COUNT
    shown = sorted(chosen - _ALWAYS_HIDDEN)
    tiered = sorted(TIERED_EVENTS) if types is None else []  # the default shows their major tier only
    constants = feed_sql.Constants(
        types=tuple(shown),
        visibilities=tuple(_FOLLOWER_VISIBILITIES),
        match_types=tuple(_MATCH_TYPES),
        participation_types=tuple(_PARTICIPATION_TYPES),
        tiered_types=tuple(tiered),
        major_tier=MAJOR_TIER,
    )
    params: dict[str, object] = {"viewer": viewer_id, "bound_offset": rows - 1, "rows": rows}
    if position is not None:
        params.update(before_ts=position.timestamp, before_id=position.id)
    if game is not None:
        params["game"] = game
    filters = {"with_cursor": position is not None, "with_game": game is not None}
    events: list[UserActivity] = []
    followees, players = feed_sql.follow_count_and_players(viewer_id)
    recent_first = page_query_for(followees, players, rows, strategy) is Strategy.RECENT_FIRST
    if followees and shown and recent_first:
        params["scan"] = min(MAX_SCAN, max(rows, SCAN_MARGIN * rows * players // followees))
        events = _events(fetch(feed_sql.recent_first_read(constants, **filters), params))
    if followees and shown and len(events) < rows:  # few followees, or the capped scan could not fill the page
        events = _events(fetch(feed_sql.per_followee_read(constants, **filters), params))
    items = events[:size]
    next_cursor = None
    if len(events) > size:
        last = items[-1]
        next_cursor = encode_cursor(Position(last.timestamp, last.id), scope)
    return Page(items, next_cursor)


def _events(rows: Rows) -> list[UserActivity]:
    """The page's rows as ledger events, each with its player's names (the statement's last three columns)."""
    return instances(UserActivity, rows, extra=("player_public_id", "player_display_name", "player_username"))
