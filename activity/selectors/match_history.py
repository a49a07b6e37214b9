"""A player's match history: one entry per match played, newest first, with the outcome as it stands now.

Entries are the `match_played` events (seq 1: one per match and player). The outcome comes from the same user's
ledger rows of the same match, net of compensations, computed in the page query itself (correlated aggregates on the
idempotency-key index, no per-row query):
  won  - net match_won > 0;  lost - net match_lost > 0;  forfeit - played with neither (a forfeited match).
A match whose `match_played` was itself withdrawn (net 0) is not listed. Corrections therefore show at once: a match
whose winner was changed flips from won to lost.

Order: newest first by date, then by round within the date (R128 ... QF, SF, F; activity.rounds), then id: an
imported tournament's matches share its date, so its final is the latest match. Each item also carries the match id,
the score and the opponent (activity.selectors.match_facts, two queries per page at most).

Game filter: `metadata.game` of the events (the tournament's game, copied in at derivation). The filter applies to one
player's rows (found through the (user, -timestamp, -id) index), so it needs no index of its own.
"""

from __future__ import annotations

import enum
import re

from django.db.models import IntegerField
from django.db.models.expressions import RawSQL

from activity.cursors import Page, page_size
from activity.derivation import MATCH
from activity.event_types import REVERSAL_OF
from activity.event_types import EventType as E
from activity.models import UserActivity
from activity.privacy import ViewerRelation, require, visible_events
from activity.ranked_cursors import paginate_ranked, ranked_newest_first, ranked_newest_page
from activity.rounds import metadata_round_rank
from activity.selectors.errors import InvalidQueryError
from activity.selectors.match_facts import attach_match_facts
from activity.subject_shapes import first_rows

DEFAULT_LIMIT = 10
MATCH_HISTORY_PRIVATE = "This player keeps their match history private."
_RANK = "round_rank"  # the annotation ordering a day's matches (R128 ... F)
_GAME = re.compile(r"^[\w .:+\-]{1,50}$")


class Outcome(enum.StrEnum):
    WON = "won"
    LOST = "lost"
    FORFEIT = "forfeit"


class InvalidGameError(InvalidQueryError):
    code = "invalid_game"


def validate_game(game: str | None) -> str | None:
    if game is None or game == "":
        return None
    if not isinstance(game, str) or not _GAME.match(game):
        raise InvalidGameError("game must be 1-50 letters, digits, spaces or . : + - _")
    return game


_LEDGER = UserActivity._meta.db_table


def _net(event_type: str) -> RawSQL:
    """The user's count of `event_type` for the outer row's match, minus its compensations: a correlated aggregate
    on the idempotency-key index (source_model, source_id, user_id, event_type, seq). Written as SQL because the page
    query is built on every request and the ORM form of three such subqueries costs more to compile than to run."""
    sql = (
        f"(SELECT COALESCE(SUM(CASE WHEN n.event_type = %s THEN 1 ELSE -1 END), 0) FROM {_LEDGER} n "
        f"WHERE n.source_model = {_LEDGER}.source_model AND n.source_id = {_LEDGER}.source_id "
        f"AND n.user_id = {_LEDGER}.user_id AND n.event_type IN (%s, %s))"
    )
    return RawSQL(sql, (event_type, event_type, REVERSAL_OF[event_type]), output_field=IntegerField())


def _outcome(net_won: int, net_lost: int) -> Outcome:
    if net_won > 0:
        return Outcome.WON
    if net_lost > 0:
        return Outcome.LOST
    return Outcome.FORFEIT


def match_history(
    relation: ViewerRelation, *, cursor: str | None = None, limit: int | None = None, game: str | None = None
) -> Page[UserActivity]:
    """One page of matches (default 10, at most 50); each item carries `.outcome` (Outcome), `.match_id`, `.score`
    and `.opponent` (match_facts.Opponent or None).

    Raises NotPermitted when the subject hides their match history from this viewer, InvalidCursorError,
    InvalidPageSizeError or InvalidGameError on bad input.
    """
    require(relation.can_see_match_history, MATCH_HISTORY_PRIVATE)
    game = validate_game(game)
    scope = f"matches:{relation.subject_id}:{game or ''}"
    if not cursor and game is None:  # the profile's read: its query compiled once per viewer class and flags
        size = page_size(limit, DEFAULT_LIMIT)
        rows = first_rows(played_rows, relation, order=ranked_newest_first(_RANK), count=size + 1)
        return _with_facts(ranked_newest_page(rows, _RANK, size, scope), relation)
    return page_of_matches(played_rows(relation, game=game), relation, cursor=cursor, limit=limit, scope=scope)


def played_rows(relation: ViewerRelation, *, game: str | None = None):
    """The subject's listed matches (match_played rows whose match still counts), with `net_won` / `net_lost`."""
    rows = UserActivity.objects.filter(visible_events(relation), event_type=E.MATCH_PLAYED, source_model=MATCH, seq=1)
    if game is not None:
        rows = rows.filter(metadata__game=game)
    return (
        rows.alias(net_played=_net(E.MATCH_PLAYED))
        .filter(net_played__gt=0)
        .annotate(net_won=_net(E.MATCH_WON), net_lost=_net(E.MATCH_LOST), **{_RANK: metadata_round_rank(_LEDGER)})
    )


def page_of_matches(rows, relation: ViewerRelation, *, cursor: str | None, limit: int | None, scope: str) -> Page:
    size = page_size(limit, DEFAULT_LIMIT)
    return _with_facts(paginate_ranked(rows, rank=_RANK, cursor=cursor, limit=size, scope=scope), relation)


def _with_facts(page: Page, relation: ViewerRelation) -> Page:
    for item in page.items:
        item.outcome = _outcome(item.net_won, item.net_lost)
    attach_match_facts(page.items, relation.subject_id)
    return page
