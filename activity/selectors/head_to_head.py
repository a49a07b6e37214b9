"""Head-to-head of two players: how many of their meetings each won, the walkovers, a per-game split, and the list of
their matches.

What counts, from the ledger (match_played rows of both players for the same match, net of compensations):
  a_wins / b_wins - completed matches the player won (net match_won > 0); walkovers - meetings neither side won
  (forfeits: the ATP's "W/O"), excluded from the wins. A voided match (net match_played 0) is not a meeting.

The privacy rule (DESIGN §7: "head-to-head hides the match list from others when either player hides match history"):
* the totals and the per-game split are aggregate results, public like the counters on the profile card and the
  leaderboards: everyone sees them, whatever either player's flags;
* the list of matches (dates, rounds, scores) is match history: it is shown only when the viewer may see the match
  history of *both* players (self and staff always may); otherwise `matches` is None (the API says
  `matches_visible: false`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import connection

from activity.cursors import Page
from activity.event_types import REVERSAL_OF
from activity.event_types import EventType as E
from activity.models import UserActivity
from activity.privacy import ViewerRelation
from activity.selectors.errors import InvalidQueryError
from activity.selectors.match_history import _LEDGER, page_of_matches, played_rows

H2H_LIMIT = 10


class SamePlayerError(InvalidQueryError):
    code = "same_player"


@dataclass(slots=True)
class Tally:
    a_wins: int = 0
    b_wins: int = 0
    walkovers: int = 0

    @property
    def meetings(self) -> int:
        return self.a_wins + self.b_wins + self.walkovers


@dataclass(slots=True)
class HeadToHead:
    total: Tally
    by_game: dict[str, Tally] = field(default_factory=dict)
    matches: Page[UserActivity] | None = None

    @property
    def matches_visible(self) -> bool:
        return self.matches is not None


def _net(side: str, kind: str) -> str:
    # Built from constants only (event type names; the side's parameter name): no input reaches the SQL text.
    return (
        f"SUM(CASE WHEN user_id = %({side})s AND event_type = '{kind}' THEN 1 "
        f"WHEN user_id = %({side})s AND event_type = '{REVERSAL_OF[kind]}' THEN -1 ELSE 0 END)"
    )


_TYPES = sorted({E.MATCH_PLAYED, E.MATCH_WON, *(REVERSAL_OF[t] for t in (E.MATCH_PLAYED, E.MATCH_WON)), E.MATCH_WON})
# Both players' match rows (the (user, event_type) index), netted per match; a meeting is a match both still played.
# Grouping first and filtering after keeps the plan one pass over ~2 careers whatever the statistics say. No
# source_model condition: match events only ever come from matches (activity.derivation.derive_match), and with one
# the planner may AND in the idempotency-key index's whole tournaments.match range.
_MEETINGS_SQL = f"""
SELECT source_id, MAX(metadata ->> 'game') AS game, {_net("b", E.MATCH_WON)} AS b_won, {_net("a", E.MATCH_WON)} AS a_won
  FROM {_LEDGER}
 WHERE user_id IN (%(a)s, %(b)s) AND event_type = ANY(%(types)s)
 GROUP BY source_id
HAVING {_net("a", E.MATCH_PLAYED)} > 0 AND {_net("b", E.MATCH_PLAYED)} > 0
"""


def _meetings(a_id: int, b_id: int) -> list[tuple[int, str | None, int, int]]:
    """(match id, game, B's net wins, A's net wins) of every match both players played."""
    with connection.cursor() as cur:
        cur.execute(_MEETINGS_SQL, {"a": a_id, "b": b_id, "types": _TYPES})
        return cur.fetchall()


def head_to_head(
    relation_a: ViewerRelation,
    relation_b: ViewerRelation,
    *,
    cursor: str | None = None,
    limit: int | None = None,
) -> HeadToHead:
    """Totals (one query over the pair's meetings) and, when the viewer may see both match histories, one page of
    the meetings from A's side (newest first, default 10, at most 50). Raises SamePlayerError, InvalidCursorError,
    InvalidPageSizeError."""
    a_id, b_id = relation_a.subject_id, relation_b.subject_id
    if a_id == b_id:
        raise SamePlayerError("A head-to-head needs two different players.")
    meetings = _meetings(a_id, b_id)
    total = Tally()
    by_game: dict[str, Tally] = defaultdict(Tally)
    for _match_id, game, b_won, a_won in meetings:
        for tally in (total, by_game[game or ""]):
            if a_won > 0:
                tally.a_wins += 1
            elif b_won > 0:
                tally.b_wins += 1
            else:
                tally.walkovers += 1
    result = HeadToHead(total, dict(sorted(by_game.items())))
    if relation_a.can_see_match_history and relation_b.can_see_match_history:
        listed = played_rows(relation_a).filter(source_id__in=[m[0] for m in meetings])
        result.matches = page_of_matches(
            listed, relation_a, cursor=cursor, limit=limit or H2H_LIMIT, scope=f"h2h:{a_id}:{b_id}"
        )
    return result
