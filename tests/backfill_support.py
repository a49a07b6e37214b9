"""Shared by the backfill and catch-up tests: a small platform history written while nothing records it, with the
ledger and counters it must end up with computed here, straight from what was written (not through the derivation
rules under test)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.utils import timezone

from activity.models import BackfillLane, BackfillRun, UserActivity
from esports.tournaments.models import Match, Registration
from stats.counters import COUNTER_FIELDS
from stats.models import UserProfileStats
from stats.recompute import recompute_stats
from tests.factories import (
    AchievementFactory,
    MatchFactory,
    RegistrationFactory,
    TournamentFactory,
    TournamentResultFactory,
    TransactionFactory,
    UserAchievementFactory,
    UserFactory,
    solo_user_id,
)

Key = tuple[str, int, int, str, int]

PROFILE = "profiles.userprofile"
REGISTRATION = "tournaments.registration"
MATCH = "tournaments.match"
RESULT = "tournaments.tournamentresult"
TRANSACTION = "economy.deltacrowntransaction"
UNLOCK = "achievements.userachievement"


@pytest.fixture
def history_mode(monkeypatch) -> None:
    """Source rows written in this test are history from before the ledger: the receivers enqueue nothing."""
    monkeypatch.setattr("tasks.receivers.enqueue_source_change", lambda label, pk: None)


@pytest.fixture
def no_grace(settings) -> None:
    """The catch-up sweep takes rows however young (the live tasks in these tests are lost for sure, not in flight)."""
    settings.ACTIVITY_SWEEP_GRACE_SECONDS = 0


@dataclass
class Expected:
    """What the ledger must hold: the events' keys, and per user each counter (only non-zero ones)."""

    keys: set[Key] = field(default_factory=set)
    counters: dict[int, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def event(self, source: str, source_id: int, user_id: int, event_type: str, **effects: int) -> None:
        self.keys.add((source, source_id, user_id, event_type, 1))
        self.counters[user_id].update(effects)

    def by_source(self, source: str) -> set[Key]:
        return {k for k in self.keys if k[0] == source}

    def user_counters(self) -> dict[int, dict[str, int]]:
        return {u: {k: v for k, v in c.items() if v} for u, c in self.counters.items() if any(c.values())}


@dataclass
class History:
    users: list
    tournament: object
    registrations: list
    matches: list
    transactions: list
    coin_users: list
    expected: Expected


def make_history(
    *, players: int = 8, matches: int = 24, coin_users: int = 0, coins_each: int = 0, seed: int = 7
) -> History:
    """One tournament: `players` confirmed, checked-in solo entries; `matches` matches among them (about one in six a
    forfeit), a final result; then `coin_users` further users with `coins_each` transactions each (ids grouped by user).
    Written through the ORM (factories); call under `history_mode` so nothing is recorded live."""
    rng = random.Random(seed)
    expected = Expected()
    tournament = TournamentFactory()
    users = [UserFactory() for _ in range(players)]
    for u in users:
        expected.event(PROFILE, u.pk, u.pk, "profile_created")
    regs = [
        RegistrationFactory(tournament=tournament, user=u, checked_in_at=timezone.now() - timedelta(days=2))
        for u in users
    ]
    for r in regs:
        expected.event(REGISTRATION, r.pk, solo_user_id(r), "tournament_registered", tournaments_registered=1)
        expected.event(REGISTRATION, r.pk, solo_user_id(r), "tournament_joined", tournaments_played=1)
    played = []
    for i in range(matches):
        a, b = rng.sample(regs, 2)
        forfeit = i % 6 == 5
        m = MatchFactory(
            tournament=tournament,
            participant1=a,
            participant2=b,
            winner=a,
            loser=b,
            state=Match.State.FORFEIT if forfeit else Match.State.COMPLETED,
            completed_at=timezone.now() - timedelta(days=1, minutes=i),
        )
        played.append(m)
        expected.event(MATCH, m.pk, solo_user_id(a), "match_played", matches_played=1)
        expected.event(MATCH, m.pk, solo_user_id(b), "match_played", matches_played=1)
        if not forfeit:
            expected.event(MATCH, m.pk, solo_user_id(a), "match_won", matches_won=1)
            expected.event(MATCH, m.pk, solo_user_id(b), "match_lost", matches_lost=1)
    result = TournamentResultFactory(
        tournament=tournament, winner=regs[0], runner_up=regs[1], third_place=regs[2], fourth_place=regs[3]
    )
    expected.event(RESULT, result.pk, solo_user_id(regs[0]), "tournament_won", tournaments_won=1)
    expected.event(RESULT, result.pk, solo_user_id(regs[1]), "tournament_runner_up", tournaments_runner_up=1)
    expected.event(RESULT, result.pk, solo_user_id(regs[2]), "tournament_top4", tournaments_top4=1)
    expected.event(RESULT, result.pk, solo_user_id(regs[3]), "tournament_top4", tournaments_top4=1)
    for r in regs:
        expected.event(RESULT, result.pk, solo_user_id(r), "tournament_completed", tournaments_completed=1)
    # Placed: 1-4 as the result names them, anyone else who lost a match by its round (MatchFactory's R16: 9th).
    losers = {m.loser_id for m in played}
    for place, r in enumerate(regs, start=1):
        if place > 4 and r.pk not in losers:
            continue
        placement = place if place <= 4 else 9
        expected.event(
            RESULT,
            result.pk,
            solo_user_id(r),
            "tournament_placed",
            placements_counted=1,
            placements_sum=placement,
        )
    unlock = UserAchievementFactory(user=users[0], achievement=AchievementFactory(code="first-blood"))
    expected.event(UNLOCK, unlock.pk, users[0].pk, "achievement_unlocked", achievements_count=1)

    others = [UserFactory() for _ in range(coin_users)]
    transactions = []
    for u in others:
        expected.event(PROFILE, u.pk, u.pk, "profile_created")
        for j in range(coins_each):
            amount = rng.choice([-1, 1]) * rng.randint(1, 500) if j else rng.randint(501, 900)
            t = TransactionFactory(wallet=u.profile.wallet, amount=amount, reason=f"txn {j}")
            transactions.append(t)
            if amount > 0:
                expected.event(TRANSACTION, t.pk, u.pk, "coins_earned", total_earned=amount)
            else:
                expected.event(TRANSACTION, t.pk, u.pk, "coins_spent", total_spent=-amount)
    return History(users, tournament, regs, played, transactions, others, expected)


def ledger_keys(sources: Iterable[str] | None = None) -> Counter:
    """Every ledger row's idempotency key, counted (a count above 1 would be a doubled event)."""
    rows = UserActivity.objects.all()
    if sources is not None:
        rows = rows.filter(source_model__in=list(sources))
    return Counter(rows.values_list("source_model", "source_id", "user_id", "event_type", "seq"))


def projected_counters(user_ids: Iterable[int] | None = None) -> dict[int, dict[str, int]]:
    """Non-zero counters per user as the projection holds them."""
    rows = UserProfileStats.objects.all()
    if user_ids is not None:
        rows = rows.filter(profile_id__in=list(user_ids))
    result = {}
    for row in rows.values("profile_id", *COUNTER_FIELDS):
        uid = row.pop("profile_id")
        nonzero = {k: v for k, v in row.items() if v}
        if nonzero:
            result[uid] = nonzero
    return result


def assert_projection_matches_ledger(user_ids: Iterable[int]) -> None:
    """The incrementally projected counters equal a set-based recomputation from the ledger alone."""
    ids = list(user_ids)
    before = projected_counters(ids)
    recompute_stats(ids)
    assert projected_counters(ids) == before


def drain(run: BackfillRun) -> BackfillRun:
    """Execute a run's chunks in this process until it ends (unit tests of the service, no broker)."""
    from activity.backfill import drive_inline

    return drive_inline(run.pk)


def lane_of(run: BackfillRun, lane: int = 0) -> BackfillLane:
    """The committed row of one lane of the run."""
    return BackfillLane.objects.get(run_id=run.pk, lane=lane)


def registrations_of(users) -> list[Registration]:
    return list(Registration.objects.filter(user__in=users))
