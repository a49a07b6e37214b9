"""The fold: ratings after a sequence of rated matches, in memory. Replay, live update, dry run and the
reconciliation pass all fold through `fold_match`, so there is one implementation of the arithmetic."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from stats.ratings.rules import START, OrderKey, entry_rating, winner_gain


class RatedMatch(NamedTuple):
    """A match the ledger counts as won by `winners` and lost by `losers` (users, net of compensations). A named
    tuple, not a frozen dataclass: a full replay builds one per match of the game, and a frozen dataclass's
    __init__ (object.__setattr__ per field) cost seconds of it."""

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


class HistoryRow(NamedTuple):
    """One history row of a fold (two per solo match): a named tuple for the same reason as RatedMatch."""

    profile_id: int
    key: OrderKey
    at: datetime
    before: float
    after: float


def fold_match(states: dict[int, PlayerState], match: RatedMatch) -> list[HistoryRow]:
    """Apply one match to `states` (missing profiles start at 1500) and return its history rows. Both entries are
    rated from the ratings before the match; every member gets the entry's delta."""
    key, at, winners, losers = match
    for uid in (*winners, *losers):
        if uid not in states:
            states[uid] = PlayerState()
    if len(winners) == 1 and len(losers) == 1:
        # A solo match (nearly every one): the same arithmetic as the general case (a mean of one rating is that
        # rating exactly), without building the two lists.
        delta = winner_gain(states[winners[0]].rating, states[losers[0]].rating)
    else:
        delta = winner_gain(
            entry_rating([states[u].rating for u in winners]), entry_rating([states[u].rating for u in losers])
        )
    rows: list[HistoryRow] = []
    for members, sign in ((winners, 1.0), (losers, -1.0)):
        for uid in members:
            state = states[uid]
            before = state.rating
            state.rating = after = before + sign * delta
            state.matches_rated += 1
            if after > state.peak:
                state.peak, state.peak_at = after, at
            rows.append(HistoryRow(uid, key, at, before, after))
    return rows


def fold(matches: Iterable[RatedMatch], states: dict[int, PlayerState] | None = None) -> dict[int, PlayerState]:
    """Fold matches (already in order) into `states` (from scratch when None)."""
    states = {} if states is None else states
    for match in matches:
        fold_match(states, match)
    return states
