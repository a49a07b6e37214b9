"""The pinned rating rules (issue 17): Elo, start 1500, K 32, and the order matches are folded in.

Pure functions, no database: the fold, the replay, the live update and the tests all compute through these.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

START = 1500.0
K = 32.0

# Round rank of the order key; any other round value ranks 0 (before ER).
ROUND_RANK: dict[str, int] = {
    "ER": 1,
    "R128": 2,
    "R64": 3,
    "R32": 4,
    "R16": 5,
    "RR": 6,
    "QF": 7,
    "SF": 8,
    "BR": 9,
    "F": 10,
}
NO_MATCH_NUM = -1  # a match without match_num sorts before numbered ones of the same round

# (starts_at or completed_at, external_id or tournament id as text, round rank, match_num, match id)
OrderKey = tuple[datetime, str, int, int, int]
# Before every real key: "replay the whole game".
KEY_MIN: OrderKey = (datetime(1, 1, 1, tzinfo=UTC), "", -1, NO_MATCH_NUM - 1, 0)


def round_rank(round_value: str) -> int:
    return ROUND_RANK.get(round_value, 0)


def order_key(
    *,
    starts_at: datetime | None,
    completed_at: datetime | None,
    created_at: datetime,
    external_id: str | None,
    tournament_id: int,
    round_value: str,
    match_num: int | None,
    match_id: int,
) -> OrderKey:
    """A match's position in its game (the SQL twin is stats.ratings.source.KEY_COLUMNS_SQL). A match without either
    date (never the case for a completed one) falls back to its created_at."""
    at = starts_at or completed_at or created_at
    ext = external_id if external_id is not None else str(tournament_id)
    return (at, ext, round_rank(round_value), NO_MATCH_NUM if match_num is None else match_num, match_id)


def key_from_date(at: datetime) -> OrderKey:
    """The first position at or after a date (recompute_ratings --from)."""
    return (at, "", -1, NO_MATCH_NUM - 1, 0)


def expected_score(rating_a: float, rating_b: float) -> float:
    return 1 / (1 + 10 ** ((rating_b - rating_a) / 400))


def entry_rating(ratings: Sequence[float]) -> float:
    """A team entry rates as the mean of its members' ratings (a solo entry is a team of one)."""
    return sum(ratings) / len(ratings)


def winner_gain(winner_rating: float, loser_rating: float) -> float:
    """What the winning entry gains and the losing entry loses."""
    return K * (1 - expected_score(winner_rating, loser_rating))


Sides = tuple[tuple[int, ...], tuple[int, ...]]


def rated_sides(winners: Sequence[int], losers: Sequence[int]) -> Sides | None:
    """The (winners, losers) a decided match rates, each sorted: a player the ledger counts on both sides (a member
    of both teams) played against themselves and is rated by neither, each entry rating as its other members. None
    when a side is left empty: nobody to play against, the match rates nobody."""
    if len(winners) == 1 and len(losers) == 1:  # a solo match (nearly every one of a full replay): no sets
        return None if winners[0] == losers[0] else ((winners[0],), (losers[0],))
    won, lost = set(winners), set(losers)
    w, lo = tuple(sorted(won - lost)), tuple(sorted(lost - won))
    return (w, lo) if w and lo else None
