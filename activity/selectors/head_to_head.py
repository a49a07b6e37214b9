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

from django.db.models import IntegerField
from django.db.models.expressions import RawSQL

from activity.cursors import Page
from activity.derivation import MATCH
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


def _net_of(user_id: int, event_type: str) -> RawSQL:
    """`user_id`'s net count of `event_type` for the outer row's match (the idempotency-key index)."""
    sql = (
        f"(SELECT COALESCE(SUM(CASE WHEN n.event_type = %s THEN 1 ELSE -1 END), 0) FROM {_LEDGER} n "
        f"WHERE n.source_model = {_LEDGER}.source_model AND n.source_id = {_LEDGER}.source_id "
        f"AND n.user_id = %s AND n.event_type IN (%s, %s))"
    )
    return RawSQL(sql, (event_type, user_id, event_type, REVERSAL_OF[event_type]), output_field=IntegerField())


def _meetings_of(a_id: int, b_id: int):
    """A's match_played rows of the matches B played too (both still counting)."""
    b_matches = UserActivity.objects.filter(user_id=b_id, event_type=E.MATCH_PLAYED, source_model=MATCH, seq=1)
    return UserActivity.objects.filter(
        user_id=a_id,
        event_type=E.MATCH_PLAYED,
        source_model=MATCH,
        seq=1,
        source_id__in=b_matches.values("source_id"),
    )


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
    rows = (
        _meetings_of(a_id, b_id)
        .alias(a_played=_net_of(a_id, E.MATCH_PLAYED), b_played=_net_of(b_id, E.MATCH_PLAYED))
        .filter(a_played__gt=0, b_played__gt=0)
        .annotate(a_won=_net_of(a_id, E.MATCH_WON), b_won=_net_of(b_id, E.MATCH_WON))
        .values_list("metadata__game", "a_won", "b_won")
    )
    total = Tally()
    by_game: dict[str, Tally] = defaultdict(Tally)
    for game, a_won, b_won in rows:
        for tally in (total, by_game[game or ""]):
            if a_won > 0:
                tally.a_wins += 1
            elif b_won > 0:
                tally.b_wins += 1
            else:
                tally.walkovers += 1
    result = HeadToHead(total, dict(sorted(by_game.items())))
    if relation_a.can_see_match_history and relation_b.can_see_match_history:
        shared = _meetings_of(b_id, a_id).values("source_id")
        listed = played_rows(relation_a).filter(source_id__in=shared)
        result.matches = page_of_matches(
            listed, relation_a, cursor=cursor, limit=limit or H2H_LIMIT, scope=f"h2h:{a_id}:{b_id}"
        )
    return result
