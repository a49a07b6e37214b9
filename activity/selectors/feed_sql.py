"""The two page queries of the following feed (see activity/selectors/feed.py for when each one runs).

Both select the same rows: events of active followees of the viewer, of the requested types, that a follower may
see (the privacy condition, built once below from activity.privacy), before the cursor, newest first. They differ in
which index drives them:

* PER_FOLLOWEE (few followees): a top-N per followee on the (user, -timestamp, -id) index, bounded by the heads'
  pass, then merged. Cost: one index probe of one row per followee, plus limit^2 rows; never the followees' history.
* RECENT_FIRST (many followees): the newest events of the requested types, merged across the per-type
  (event_type, -timestamp) index ranges, each kept if its player is followed (an index probe of the follow pair),
  active and allows it. Cost: the rows scanned, about limit x players / followees; capped (`scan`): when the cap is
  reached before the page is full, the caller runs PER_FOLLOWEE instead, so no page ever costs more than both.

Each runs as a prepared statement with a generic plan, in one round trip (project/one_trip_reads.py): what varies
per call (the viewer, the cursor, the game, the page and scan sizes) is a parameter; what is composed in is
identifiers, fixed SQL and the shape's constant lists as literals.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection
from psycopg import sql

from activity.models import UserActivity
from esports.profiles.models import Follow, UserProfile
from project.one_trip_reads import Read

# The privacy condition for one ledger row `a` of a followee whose flags are {smh} / {sts}. The type lists come from
# activity.privacy (feed.py): the types shown at all, and those withheld when the respective flag is off.
_VISIBLE = """a.event_type = ANY ({types}) AND a.visibility = ANY ({visibilities}) AND {tier}
          AND ({smh} OR a.event_type <> ALL ({match_types}))
          AND ({sts} OR a.event_type <> ALL ({participation_types}))"""
# The cursor as an index condition: timestamp <= t bounds the range scan, the row comparison settles ties at t.
# The default feed shows achievements of the major tier only, as the timeline does (tiered_types empty otherwise).
_TIER = "(a.event_type <> ALL ({tiered_types}) OR a.metadata ->> 'tier' = {major_tier})"
_BEFORE = "AND a.timestamp <= %(before_ts)s AND (a.timestamp, a.id) < (%(before_ts)s, %(before_id)s)"
_GAME = "AND a.metadata ->> 'game' = %(game)s"
_PLAYER = "p.public_id AS player_public_id, p.display_name AS player_display_name, u.username AS player_username"

PER_FOLLOWEE = """
WITH followees AS MATERIALIZED (
    -- Two primary-key probes per followee; the LIMIT keeps the planner from hashing both tables whole instead.
    -- The player's names ride along to the page (no join after the merge).
    SELECT f.followee_id AS user_id, fl.*
    FROM {follow} f
    CROSS JOIN LATERAL (
        SELECT p.show_match_history AS smh, p.show_tournament_stats AS sts, {player}
        FROM {user} u JOIN {profile} p ON p.user_id = u.id
        WHERE u.id = f.followee_id AND u.is_active
        LIMIT 1
    ) fl
    WHERE f.follower_id = %(viewer)s
),
heads AS MATERIALIZED (
    SELECT fo.*, h.timestamp AS head_timestamp, h.id AS head_id
    FROM followees fo
    CROSS JOIN LATERAL (
        SELECT a.timestamp, a.id FROM {ledger} a
        WHERE a.user_id = fo.user_id AND {visible} {before} {game}
        ORDER BY a.timestamp DESC, a.id DESC
        LIMIT 1
    ) h
),
bound AS (
    SELECT b.timestamp, b.id
    FROM (SELECT 1) one
    LEFT JOIN LATERAL (
        SELECT head_timestamp AS timestamp, head_id AS id FROM heads
        ORDER BY head_timestamp DESC, head_id DESC OFFSET %(bound_offset)s LIMIT 1
    ) b ON true
)
SELECT e.*, fo.player_public_id, fo.player_display_name, fo.player_username
FROM heads fo
CROSS JOIN bound
CROSS JOIN LATERAL (
    SELECT a.* FROM {ledger} a
    WHERE a.user_id = fo.user_id AND {visible} {before} {game}
          AND (bound.id IS NULL OR (a.timestamp, a.id) >= (bound.timestamp, bound.id))
    ORDER BY a.timestamp DESC, a.id DESC
    LIMIT %(rows)s
) e
WHERE bound.id IS NULL OR (fo.head_timestamp, fo.head_id) >= (bound.timestamp, bound.id)
ORDER BY e.timestamp DESC, e.id DESC
LIMIT %(rows)s
"""

RECENT_FIRST = """
SELECT e.*, page.player_public_id, page.player_display_name, page.player_username
FROM (
    SELECT c.id, c.timestamp, fl.*
    FROM (
        SELECT s.* FROM ({branches}) s
        ORDER BY s.timestamp DESC, s.id DESC
        LIMIT %(scan)s
    ) c
    -- Per scanned row, in the scan's order: is its player active and showing this type (two primary-key probes,
    -- for followed players' rows only)? The LIMIT keeps the planner from hashing whole tables and sorting the capped
    -- scan again: in order, the page stops after its rows are found, not after `scan` rows.
    CROSS JOIN LATERAL (
        SELECT {player}
        FROM {user} u JOIN {profile} p ON p.user_id = u.id
        WHERE u.id = c.user_id AND u.is_active
              AND (p.show_match_history OR c.event_type <> ALL ({match_types}))
              AND (p.show_tournament_stats OR c.event_type <> ALL ({participation_types}))
        LIMIT 1
    ) fl
    -- Followed? The viewer's follows read once into a hash (a hashed SubPlan), each scanned row checked in memory,
    -- the scan's order kept. "OR c.id < 0" (never true: ids are positive) keeps the planner from turning the IN
    -- into a semi-join, which would either probe the follow index per row or hash-join and lose the order.
    WHERE (c.user_id IN (SELECT followee_id FROM {follow} WHERE follower_id = %(viewer)s) OR c.id < 0)
    ORDER BY c.timestamp DESC, c.id DESC
    LIMIT %(rows)s
) page
JOIN {ledger} e ON e.id = page.id
ORDER BY page.timestamp DESC, page.id DESC
"""
# One branch per requested type: an ordered range of the (event_type, -timestamp, -id) INCLUDE (user, visibility)
# index, read index-only (the scan touches no ledger row; only the page's rows are fetched, by id). A tiered type
# shown at the major tier only reads the partial index of major-tier rows (activity 0012) instead: filtering the
# type's range by its metadata would read every minor achievement's row to skip it (100k heap pages for one page at
# 100k players, ~1.5 s).
_BRANCH = """(SELECT a.id, a.timestamp, a.user_id, a.event_type FROM {ledger} a
     WHERE a.event_type = {type} AND a.visibility = ANY ({visibilities}) {tier} {before} {game}
     ORDER BY a.timestamp DESC, a.id DESC LIMIT %(scan)s)"""
# Character for character the predicate of activity_major_tier_time_idx (activity 0012), with the tier composed in as
# a literal: the planner proves the partial index applies from it (a parameter would not do).
_MAJOR_TIER_ONLY = "AND a.metadata ->> 'tier' = {major_tier}"


# What varies per call is a parameter; everything else of a shape is composed in as a literal (`Constants`), so the
# prepared statement's generic plan is the plan those literals get (project/one_trip_reads.py). JIT off: the
# statements' cost estimates (many LATERAL loops) pass jit_above_cost, and compiling them would take far longer
# (~0.8 s at 10,000 followees) than running them.
PARAMETERS = {
    "viewer": "bigint",
    "rows": "bigint",
    "bound_offset": "bigint",
    "scan": "bigint",
    "before_ts": "timestamptz",
    "before_id": "bigint",
    "game": "text",
}
_SETTINGS = {"jit": "off"}


@dataclass(frozen=True)
class Constants:
    """A feed shape's fixed lists (from activity.privacy, via feed.py): the types shown, the visibilities a follower
    sees, the types withheld by each flag, the tiered types shown at `major_tier` only."""

    types: tuple[str, ...]
    visibilities: tuple[str, ...]
    match_types: tuple[str, ...]
    participation_types: tuple[str, ...]
    tiered_types: tuple[str, ...]
    major_tier: str

    def composed(self) -> dict[str, sql.Composable]:
        def text_array(values: tuple[str, ...]) -> sql.Composable:
            return sql.SQL("{}::text[]").format(sql.Literal(list(values)))

        return {
            "types": text_array(self.types),
            "visibilities": text_array(self.visibilities),
            "match_types": text_array(self.match_types),
            "participation_types": text_array(self.participation_types),
            "tiered_types": text_array(self.tiered_types),
            "major_tier": sql.Literal(self.major_tier),
        }


def _tables() -> dict[str, sql.Composable]:
    return {
        "follow": sql.Identifier(Follow._meta.db_table),
        "user": sql.Identifier(get_user_model()._meta.db_table),
        "profile": sql.Identifier(UserProfile._meta.db_table),
        "ledger": sql.Identifier(UserActivity._meta.db_table),
        "player": sql.SQL(_PLAYER),
    }


def _filters(*, with_cursor: bool, with_game: bool) -> dict[str, sql.Composable]:
    return {"before": sql.SQL(_BEFORE if with_cursor else ""), "game": sql.SQL(_GAME if with_game else "")}


@functools.lru_cache(maxsize=256)
def per_followee_read(constants: Constants, *, with_cursor: bool, with_game: bool) -> Read:
    lists = constants.composed()
    tier = sql.SQL(_TIER).format(**lists)
    visible = sql.SQL(_VISIBLE).format(smh=sql.SQL("fo.smh"), sts=sql.SQL("fo.sts"), tier=tier, **lists)
    query = sql.SQL(PER_FOLLOWEE).format(
        visible=visible, **_tables(), **_filters(with_cursor=with_cursor, with_game=with_game)
    )
    return Read(query.as_string(connection.connection), PARAMETERS, _SETTINGS)


@functools.lru_cache(maxsize=256)
def recent_first_read(constants: Constants, *, with_cursor: bool, with_game: bool) -> Read:
    """The RECENT_FIRST statement for these constants: one branch per type shown; the tiered types read major-tier
    rows only."""
    tables = _tables()
    lists = constants.composed()
    filters = _filters(with_cursor=with_cursor, with_game=with_game)
    branches = sql.SQL(" UNION ALL ").join(
        sql.SQL(_BRANCH).format(
            ledger=tables["ledger"],
            type=sql.Literal(t),
            tier=sql.SQL(_MAJOR_TIER_ONLY if t in constants.tiered_types else "").format(**lists),
            visibilities=lists["visibilities"],
            **filters,
        )
        for t in constants.types
    )
    query = sql.SQL(RECENT_FIRST).format(branches=branches, **tables, **lists)
    return Read(query.as_string(connection.connection), PARAMETERS, _SETTINGS)


_COUNTS = (
    "SELECT (SELECT count(*) FROM {follow} WHERE follower_id = %s), "
    "(SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass)"
)


def follow_count_and_players(viewer_id: int) -> tuple[int, int]:
    """(followees of the viewer, players on the platform); the latter from the planner's statistics (no count)."""
    query = sql.SQL(_COUNTS).format(follow=sql.Identifier(Follow._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(query.as_string(connection.connection), [viewer_id, get_user_model()._meta.db_table])
        followees, players = cursor.fetchone()
    # reltuples is -1 before the first ANALYZE: never fewer players than followees.
    return int(followees), max(int(players), int(followees), 1)
