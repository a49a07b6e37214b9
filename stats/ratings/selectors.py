"""Read side of the ratings: a player's ratings, their rating history (keyset pages in rating order, newest first,
behind signed cursors), the per-game rating leaderboard (one index range scan), and the rating change of match rows."""

from __future__ import annotations

import binascii
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.core import signing
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from activity.cursors import MAX_CURSOR_LENGTH, InvalidCursorError, page_size
from activity.privacy import ViewerRelation, require
from activity.selectors.errors import InvalidQueryError
from activity.selectors.match_history import MATCH_HISTORY_PRIVATE
from project.compiled_queries import rows_by_id
from stats.ratings.models import PlayerRating, RatingGame, RatingHistory

HISTORY_DEFAULT_LIMIT = 20
BOARD_DEFAULT_LIMIT = 100
BOARD_MAX_LIMIT = 100
_SALT = "stats.ratings.history.v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KEY = ("key_at", "key_ext", "key_round", "key_num", "match_id")


class InvalidMinMatchesError(InvalidQueryError):
    code = "invalid_min_matches"


@dataclass(frozen=True, slots=True)
class RatingEntry:
    rank: int
    user_id: int
    rating: float
    peak: float
    matches_rated: int


@dataclass(frozen=True, slots=True)
class HistoryPage:
    items: list[RatingHistory]
    next_cursor: str | None


def ratings_of(profile_id: int) -> list[dict]:
    """Every game the player is rated in: rating, peak (and when), matches rated. Public, like the counters."""
    return rows_by_id(_ratings, profile_id)


def _ratings(profile_id: int) -> QuerySet:
    # Compiled once (project.compiled_queries): the profile page reads it on every request.
    rows = PlayerRating.objects.filter(profile_id=profile_id).order_by("game")
    return rows.values("game", "rating", "peak", "peak_at", "matches_rated")


def rating_history(
    relation: ViewerRelation, game: str, *, cursor: str | None = None, limit: int | None = None
) -> HistoryPage:
    """The player's rated matches of one game, newest first in rating order; hidden with the match history."""
    require(relation.can_see_match_history, MATCH_HISTORY_PRIVATE)
    size = page_size(limit, HISTORY_DEFAULT_LIMIT)
    scope = f"{relation.subject_id}:{game}"
    rows = RatingHistory.objects.filter(_published(game), profile_id=relation.subject_id, game=game)
    after = _decode(cursor, scope)
    if after is not None:
        rows = rows.filter(_before(after))
    found = list(rows.order_by(*(f"-{f}" for f in _KEY))[: size + 1])
    items = found[:size]
    next_cursor = _encode(items[-1], scope) if len(found) > size else None
    return HistoryPage(items, next_cursor)


def rating_leaderboard(game: str, *, min_matches: int = 1, limit: int = BOARD_DEFAULT_LIMIT) -> list[RatingEntry]:
    """Top `limit` ratings of a game among active players with at least `min_matches` rated matches
    (rating_lb_game_idx: the scan walks the index in board order and filters the count from the index itself). As on
    every board, erased (their tombstones) and deactivated accounts are not ranked: one primary-key probe per row."""
    if isinstance(min_matches, bool) or not isinstance(min_matches, int) or min_matches < 1:
        raise InvalidMinMatchesError(f"min_matches must be a positive integer, got {min_matches!r}.")
    rows = (
        PlayerRating.objects.filter(game=game, matches_rated__gte=min_matches)
        .filter(Exists(get_user_model().objects.filter(pk=OuterRef("profile_id"), is_active=True)))
        .order_by("-rating", "profile_id")
        .values_list("profile_id", "rating", "peak", "matches_rated")[: max(1, min(limit, BOARD_MAX_LIMIT))]
    )
    return [RatingEntry(i, *row) for i, row in enumerate(rows, start=1)]


def rating_changes(profile_id: int, match_ids: Iterable[int]) -> dict[int, float]:
    """match id -> the player's rating change in it (one query): for the rows of a match-history page."""
    ids = sorted(set(match_ids))
    if not ids:
        return {}
    rows = RatingHistory.objects.filter(_published(), profile_id=profile_id, match_id__in=ids).values_list(
        "match_id", "before", "after"
    )
    return {m: after - before for m, before, after in rows}


def _published(game: str | None = None) -> Q:
    """The rows of the published folds of `game` (of each row's game when None: RatingGame.fold, and span_fold
    while a partial replay's span is not merged), read in the reading statement itself, so the rows and the folds
    come from one snapshot: a running replay's draft (the next fold) is never read. No RatingGame row: fold 0."""
    games = RatingGame.objects.filter(game=OuterRef("game") if game is None else game)
    return Q(fold=Coalesce(Subquery(games.values("fold")[:1]), 0)) | Q(fold=Subquery(games.values("span_fold")[:1]))


def _before(key: tuple) -> Q:
    """Rows strictly before `key` in rating order (a row comparison spelled out for the ORM)."""
    condition = Q()
    for i in range(len(_KEY)):
        term = Q(**{f"{_KEY[i]}__lt": key[i]}, **{_KEY[j]: key[j] for j in range(i)})
        condition |= term
    return condition


def _encode(row: RatingHistory, scope: str) -> str:
    delta = row.key_at - _EPOCH
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    value = [micros, row.key_ext, row.key_round, row.key_num, row.match_id]
    return signing.dumps(value, salt=f"{_SALT}:{scope}", compress=False)


def _decode(raw: str | None, scope: str) -> tuple | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > MAX_CURSOR_LENGTH:
        raise InvalidCursorError("Invalid cursor: not a cursor issued by this list.")
    try:
        value = signing.loads(raw, salt=f"{_SALT}:{scope}")
    except signing.BadSignature:
        raise InvalidCursorError("Invalid cursor: it was altered or belongs to another list.") from None
    except (ValueError, TypeError, UnicodeError, binascii.Error, zlib.error):
        raise InvalidCursorError("Invalid cursor: malformed.") from None
    if not isinstance(value, list) or len(value) != 5 or not isinstance(value[1], str):
        raise InvalidCursorError("Invalid cursor: malformed.")
    if not all(isinstance(value[i], int) and not isinstance(value[i], bool) for i in (0, 2, 3, 4)):
        raise InvalidCursorError("Invalid cursor: malformed.")
    try:
        at = _EPOCH + timedelta(microseconds=value[0])
    except OverflowError:
        raise InvalidCursorError("Invalid cursor: malformed.") from None
    return (at, value[1], value[2], value[3], value[4])
