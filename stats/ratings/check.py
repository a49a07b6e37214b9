"""Proof and repair: the stored ratings against a fresh fold of the ledger from scratch (the dry run of
recompute_ratings, and the reconciliation pass). Reads only; a repair is a replay (request_replay + run_replay)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from django.db import connection, transaction

from esports.tournaments.models import Tournament
from stats.ratings import source, store
from stats.ratings.fold import PlayerState, fold_match
from stats.ratings.models import PlayerRating
from stats.ratings.pending import games_with_a_replay_pending

TOLERANCE = 1e-6
DEFAULT_SAMPLE = 200


@dataclass(frozen=True, slots=True)
class RatingDrift:
    game: str
    profile_id: int
    stored: PlayerState | None
    fresh: PlayerState | None


@dataclass
class RatingCheck:
    games: list[str] = field(default_factory=list)
    checked: int = 0
    drift: list[RatingDrift] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # games left out: a replay is marked or running

    def as_dict(self) -> dict:
        return {"games": self.games, "checked": self.checked, "drifted": len(self.drift), "pending": self.pending}


def rated_games() -> list[str]:
    return sorted(Tournament.objects.values_list("game", flat=True).distinct())


def fresh_fold(game: str) -> dict[int, PlayerState]:
    """Every player's state after folding the game's whole history as the ledger has it now (no writes)."""
    states: dict[int, PlayerState] = {}
    for match in source.rated_after(game, None):
        fold_match(states, match)
    return states


def _differs(a: PlayerState | None, b: PlayerState | None) -> bool:
    if a is None or b is None:
        return a is not b
    return (
        abs(a.rating - b.rating) > TOLERANCE
        or abs(a.peak - b.peak) > TOLERANCE
        or a.peak_at != b.peak_at
        or a.matches_rated != b.matches_rated
    )


def compare(
    game: str, fresh: dict[int, PlayerState], profile_ids: Sequence[int] | None
) -> tuple[int, list[RatingDrift]]:
    """(profiles compared, those whose stored row differs from `fresh`); every profile when `profile_ids` is None."""
    if profile_ids is None:
        stored_ids = PlayerRating.objects.filter(game=game).values_list("profile_id", flat=True)
        profile_ids = sorted(set(stored_ids) | fresh.keys())
    stored = store.load_states(game, profile_ids)
    drift = [
        RatingDrift(game, p, stored.get(p), fresh.get(p)) for p in profile_ids if _differs(stored.get(p), fresh.get(p))
    ]
    return len(profile_ids), drift


def check_ratings(*, sample: int | None = DEFAULT_SAMPLE, games: Sequence[str] | None = None) -> RatingCheck:
    """Compare a random sample of each game's rated players (all of them when `sample` is None) with a fresh fold."""
    report = RatingCheck(games=list(games) if games is not None else rated_games())
    for game in report.games:
        fresh = fresh_fold(game)
        ids: list[int] | None = None
        if sample is not None:
            pool = sorted(
                set(PlayerRating.objects.filter(game=game).values_list("profile_id", flat=True)) | fresh.keys()
            )
            ids = sorted(random.sample(pool, min(sample, len(pool))))
        checked, drift = compare(game, fresh, ids)
        report.checked += checked
        report.drift.extend(drift)
    return report


def check_ratings_in_one_snapshot(*, sample: int | None = DEFAULT_SAMPLE) -> RatingCheck:
    """check_ratings of every game whose ratings are meant to equal its ledger now, all read in one REPEATABLE READ
    snapshot: so it may run while the ledger is written (beside the reconciliation's sources pass, under live
    traffic). A recording commits its match's rating change or its game's replay mark with its events, so in one
    snapshot a game without a mark or a running replay has ratings equal to a fold of the ledger it sees; a game
    with one is behind by design (the minutely job replays it) and is left out, as `pending`. Read by separate
    statements instead, a match committed between the fold and the stored rows' read would show as drift.
    Inside a caller's transaction (a test's) it reads in that one."""
    fresh = not connection.in_atomic_block
    with transaction.atomic():
        if fresh:
            with connection.cursor() as cursor:  # the transaction's first statement, as PostgreSQL requires
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        pending = games_with_a_replay_pending()
        report = check_ratings(sample=sample, games=[g for g in rated_games() if g not in pending])
    report.pending = pending
    return report


def reconcile_ratings(
    *, fix: bool, progress: Callable[[str], None] | None = None, sample: int | None = DEFAULT_SAMPLE
) -> RatingCheck:
    """The ratings part of a reconciliation run: a sample of each game's players against a fresh fold, in one
    snapshot (check_ratings_in_one_snapshot); with `fix`, a game that drifted gets a replay from the start requested
    (the maintenance task runs it, serialised)."""
    from stats.ratings.replay import request_replay

    say = progress or (lambda message: None)
    report = check_ratings_in_one_snapshot(sample=sample)
    drifted_games = sorted({d.game for d in report.drift})
    say(
        f"ratings: {report.checked} player(s) checked in {len(report.games)} game(s), {len(report.drift)} drifted"
        + (f"; {len(report.pending)} game(s) with a replay pending, not compared" if report.pending else "")
    )
    if fix:
        for game in drifted_games:
            request_replay(game)
    return report
