"""The fold: ratings after a sequence of rated matches, in memory. Replay, live update, dry run and the
reconciliation pass all fold through `fold_match`, so there is one implementation of the arithmetic."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from stats.ratings.rules import START, OrderKey, entry_rating, winner_gain


@dataclass(frozen=True, slots=True)
class RatedMatch:
    """A match the ledger counts as won by `winners` and lost by `losers` (users, net of compensations)."""

    key: OrderKey
    at: datetime
    winners: tuple[int, ...]
    losers: tuple[int, ...]


@dataclass(slots=True)
class PlayerState:
    rating: float = START
    peak: float = START
    peak_at: datetime | None = None
    matches_rated: int = 0


@dataclass(frozen=True, slots=True)
class HistoryRow:
    profile_id: int
    key: OrderKey
    at: datetime
    before: float
    after: float


def fold_match(states: dict[int, PlayerState], match: RatedMatch) -> list[HistoryRow]:
    """Apply one match to `states` (missing profiles start at 1500) and return its history rows. Both entries are
    rated from the ratings before the match; every member gets the entry's delta."""
    for uid in (*match.winners, *match.losers):
        if uid not in states:
            states[uid] = PlayerState()
    delta = winner_gain(
        entry_rating([states[u].rating for u in match.winners]),
        entry_rating([states[u].rating for u in match.losers]),
    )
    rows: list[HistoryRow] = []
    for members, sign in ((match.winners, 1.0), (match.losers, -1.0)):
        for uid in members:
            state = states[uid]
            before = state.rating
            state.rating = before + sign * delta
            state.matches_rated += 1
            if state.rating > state.peak:
                state.peak, state.peak_at = state.rating, match.at
            rows.append(HistoryRow(uid, match.key, match.at, before, state.rating))
    return rows


def fold(matches: Iterable[RatedMatch], states: dict[int, PlayerState] | None = None) -> dict[int, PlayerState]:
    """Fold matches (already in order) into `states` (from scratch when None)."""
    states = {} if states is None else states
    for match in matches:
        fold_match(states, match)
    return states
