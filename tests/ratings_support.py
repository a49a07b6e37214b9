"""Shared by the rating tests: playing matches through the ledger, and the rules computed here independently of
stats.ratings (their own Elo and order key, straight from the source rows), to compare the projection with."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from esports.tournaments.models import Match, Registration, Tournament
from stats.ratings.models import PlayerRating
from stats.ratings.pending import replay_pending_games
from tests.factories import RegistrationFactory, complete_match
from tests.ledger_helpers import record

RANKS = {"ER": 1, "R128": 2, "R64": 3, "R32": 4, "R16": 5, "RR": 6, "QF": 7, "SF": 8, "BR": 9, "F": 10}


def elo_delta(winner: float, loser: float) -> float:
    return 32 * (1 - 1 / (1 + 10 ** ((loser - winner) / 400)))


@dataclass
class Player:
    rating: float = 1500.0
    peak: float = 1500.0
    count: int = 0


def fold_from_scratch(decided: Iterable[tuple[tuple, list, list]]) -> dict[Any, Player]:
    """(sort key, winners, losers) in any order -> players; team entries rate as their members' mean."""
    players: dict[Any, Player] = {}
    for _key, winners, losers in sorted(decided, key=lambda d: d[0]):
        for u in (*winners, *losers):
            players.setdefault(u, Player())
        w = sum(players[u].rating for u in winners) / len(winners)
        lo = sum(players[u].rating for u in losers) / len(losers)
        delta = elo_delta(w, lo)
        for members, sign in ((winners, 1), (losers, -1)):
            for u in members:
                p = players[u]
                p.rating += sign * delta
                p.count += 1
                p.peak = max(p.peak, p.rating)
    return players


def source_key(match: Match) -> tuple:
    t = match.tournament
    at = t.starts_at or match.completed_at
    ext = t.external_id if t.external_id is not None else str(t.id)
    return (at, ext, RANKS.get(match.round, 0), -1 if match.match_num is None else match.match_num, match.id)


def solo_fold(game: str) -> dict[int, Player]:
    """The rules over the game's completed solo matches as the source rows are now."""
    matches = Match.objects.filter(tournament__game=game, state=Match.State.COMPLETED).select_related("tournament")
    user_of: dict[int | None, int] = dict(
        Registration.objects.filter(tournament__game=game).values_list("id", "user_id")
    )
    return fold_from_scratch((source_key(m), [user_of[m.winner_id]], [user_of[m.loser_id]]) for m in matches)


def stored(game: str) -> dict[int, Player]:
    return {r.profile_id: Player(r.rating, r.peak, r.matches_rated) for r in PlayerRating.objects.filter(game=game)}


def assert_close(got: dict[int, Player], want: dict[int, Player]) -> None:
    assert sorted(got) == sorted(want)
    for uid, p in want.items():
        g = got[uid]
        assert abs(g.rating - p.rating) < 1e-6 and abs(g.peak - p.peak) < 1e-6 and g.count == p.count, (uid, g, p)


def tournament(game: str = "chess", *, starts_at: datetime | None = None, external_id: str | None = None) -> Tournament:
    return Tournament.objects.create(
        name="t", game=game, status="ongoing", starts_at=starts_at, external_id=external_id
    )


def entries(t: Tournament, users: Iterable) -> list[Registration]:
    return [RegistrationFactory(tournament=t, user=u) for u in users]


def play(
    t: Tournament, winner: Registration, loser: Registration, *, round: str = "R16", num: int | None = None
) -> Match:
    """A completed match between two entries of `t`, recorded through the ledger (as the worker would)."""
    match = Match.objects.create(
        tournament=t,
        round=round,
        match_num=num,
        participant1=winner,
        participant2=loser,
        completed_at=t.starts_at or datetime(2024, 1, 1, tzinfo=UTC),
    )
    complete_match(match, winner)
    record(match)
    return match


def settle() -> None:
    """Run the maintenance job until no replay is pending (what beat and the published task do)."""
    replay_pending_games()
