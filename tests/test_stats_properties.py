"""Property: after any workload of source changes (outcome flips, late and repeated recordings included), the
incrementally maintained stats equal recompute_stats over the ledger, and follow the outcomes that were recorded."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from esports.economy.models import DeltaCrownTransaction
from esports.teams.models import TeamMembership
from esports.tournaments.models import Match, Registration, TournamentResult
from stats.recompute import recompute_stats
from tests.factories import (
    AchievementFactory,
    MatchFactory,
    RegistrationFactory,
    TeamFactory,
    TeamMembershipFactory,
    TournamentFactory,
    UserAchievementFactory,
    UserFactory,
)
from tests.ledger_helpers import all_counters, record

N_SOLO = 4
PAIRS = [(0, 1), (1, 4)]  # registration indexes; 4 is the team entry
WHEN = st.sampled_from(("now", "now", "twice", "later"))
# Flips are the interesting part: half the operations change a match outcome, on only two matches, so most workloads
# record corrections (the test reports how many through hypothesis' statistics).
match_op = st.tuples(
    st.just("match"),
    st.integers(0, len(PAIRS) - 1),
    st.sampled_from(("p1", "p2", "p1", "p2", "forfeit", "disputed", "cancelled", "live")),
    WHEN,
)
other_op = st.one_of(
    st.tuples(
        st.just("registration"),
        st.integers(0, N_SOLO),
        st.sampled_from(("pending", "confirmed", "cancelled", "no_show")),
        st.booleans(),
        WHEN,
    ),
    st.tuples(
        st.just("coins"),
        st.integers(0, N_SOLO - 1),
        st.integers(1, 500).flatmap(lambda n: st.sampled_from((n, -n))),
        WHEN,
    ),
    st.tuples(st.just("achievement"), st.integers(0, N_SOLO - 1), st.integers(0, 2), WHEN),
    st.tuples(st.just("membership"), st.integers(0, N_SOLO - 1), st.booleans(), WHEN),
    st.tuples(st.just("result"), st.permutations(range(N_SOLO + 1)), WHEN),
)


@st.composite
def workloads(draw) -> list[tuple]:
    """Match outcome changes and other source changes, interleaved in any order."""
    ops = draw(st.lists(match_op, min_size=2, max_size=15)) + draw(st.lists(other_op, max_size=15))
    return [ops[i] for i in draw(st.permutations(range(len(ops))))]


THREE_FLIPS_AND_LATE_DELIVERIES = [
    ("match", 1, "p1", "now"),
    ("match", 1, "disputed", "now"),
    ("match", 1, "p2", "now"),
    ("match", 1, "p1", "twice"),
    ("match", 0, "p2", "later"),
    ("match", 1, "p2", "now"),
    ("match", 0, "forfeit", "now"),
    ("coins", 0, -40, "later"),
    ("result", [4, 0, 1, 2, 3], "now"),
    ("result", [0, 4, 1, 2, 3], "later"),
]


class Season:
    """A tournament with four solo entries and one team entry (three members), and two matches among them."""

    def __init__(self) -> None:
        self.tournament = TournamentFactory()
        self.solo = [UserFactory() for _ in range(N_SOLO)]
        team = TeamFactory()
        self.members = [TeamMembershipFactory(team=team).user for _ in range(3)]
        self.side_team = TeamFactory()  # memberships that come and go during the season
        self.regs = [
            RegistrationFactory(tournament=self.tournament, user=u, status="pending", checked_in=False)
            for u in self.solo
        ]
        self.regs.append(
            RegistrationFactory(tournament=self.tournament, user=None, team=team, status="pending", checked_in=False)
        )
        self.matches = [
            MatchFactory(tournament=self.tournament, participant1=self.regs[a], participant2=self.regs[b])
            for a, b in PAIRS
        ]
        self.achievements = [AchievementFactory() for _ in range(3)]
        self.users = [u.id for u in self.solo + self.members]
        record(*[u.profile for u in self.solo + self.members])
        # Oracle: what the recordings saw. Sticky facts (registered, joined) and the last recorded match outcome.
        self.registered: set[int] = set()
        self.joined: set[int] = set()
        self.outcome: dict[int, tuple[str, int | None]] = {}  # match id -> (state, winner registration id)
        self.pending: list = []
        self.corrections = 0  # recorded outcome changes (flips, completed <-> forfeit)

    def users_of(self, reg_id: int) -> list[int]:
        reg = next(r for r in self.regs if r.id == reg_id)
        return [reg.user_id] if reg.user_id else [u.id for u in self.members]

    def record(self, row) -> None:
        row.refresh_from_db()
        if isinstance(row, Registration) and row.status == "confirmed":
            self.registered.add(row.id)
            if row.checked_in:
                self.joined.add(row.id)
        if isinstance(row, Match) and row.state in ("completed", "forfeit"):
            if self.outcome.get(row.id, (row.state, row.winner_id)) != (row.state, row.winner_id):
                self.corrections += 1
            self.outcome[row.id] = (row.state, row.winner_id)
        record(row)

    def after(self, row, when: str) -> None:
        if when == "later":
            self.pending.append(row)
        else:
            for _ in range(2 if when == "twice" else 1):
                self.record(row)

    def catch_up(self, rng: random.Random) -> None:
        rng.shuffle(self.pending)  # late recordings arrive in any order
        for row in self.pending:
            self.record(row)
        self.pending.clear()

    def apply(self, op) -> None:
        kind, *args, when = op
        now = timezone.now()
        if kind == "match":
            index, outcome = args
            match = self.matches[index]
            if outcome in ("p1", "p2"):
                match.state = Match.State.COMPLETED
                match.winner, match.loser = (
                    (match.participant1, match.participant2)
                    if outcome == "p1"
                    else (match.participant2, match.participant1)
                )
                match.completed_at = match.completed_at or now
            elif outcome == "forfeit":
                match.state = Match.State.FORFEIT
            else:
                match.state = outcome
            match.save()
            self.after(match, when)
        elif kind == "registration":
            index, status, checked_in = args
            reg = self.regs[index]
            reg.status, reg.checked_in = status, checked_in and status == "confirmed"
            reg.save()
            self.after(reg, when)
        elif kind == "coins":
            index, amount = args
            self.after(
                DeltaCrownTransaction.objects.create(wallet=self.solo[index].profile.wallet, amount=amount, reason="x"),
                when,
            )
        elif kind == "achievement":
            index, which = args
            user, achievement = self.solo[index], self.achievements[which]
            if not user.achievements.filter(achievement=achievement).exists():
                self.after(UserAchievementFactory(user=user, achievement=achievement), when)
        elif kind == "membership":
            index, join = args
            user = self.solo[index]
            active = TeamMembership.objects.filter(team=self.side_team, user=user, left_at__isnull=True).first()
            if join and active is None:
                self.after(TeamMembershipFactory(team=self.side_team, user=user, joined_at=now), when)
            elif not join and active is not None:
                active.left_at = now
                active.save()
                self.after(active, when)
        elif kind == "result":
            (order,) = args
            placed = [self.regs[i] for i in order]
            result, _ = TournamentResult.objects.update_or_create(
                tournament=self.tournament,
                defaults={
                    "winner": placed[0],
                    "runner_up": placed[1],
                    "third_place": placed[2],
                    "fourth_place": placed[3],
                },
            )
            self.after(result, when)

    def expected_match_counters(self) -> dict[int, Counter]:
        expected: dict[int, Counter] = defaultdict(Counter)
        for match in self.matches:
            if match.id not in self.outcome:
                continue
            state, winner_id = self.outcome[match.id]
            for side in (match.participant1_id, match.participant2_id):
                for user in self.users_of(side):
                    expected[user]["matches_played"] += 1
                    if state == "completed":
                        expected[user]["matches_won" if side == winner_id else "matches_lost"] += 1
        return expected


@pytest.mark.django_db
@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(ops=workloads(), seed=st.integers(0, 2**16))
@example(ops=THREE_FLIPS_AND_LATE_DELIVERIES, seed=1)
def test_recompute_equals_incremental_after_a_random_workload(ops, seed):
    with transaction.atomic():  # each example in a savepoint rolled back at its end
        season = Season()
        rng = random.Random(seed)
        for op in ops:
            season.apply(op)
            if rng.random() < 0.2:
                season.catch_up(rng)
        season.catch_up(rng)
        event(f"recorded corrections: {min(season.corrections, 3)}{'+' if season.corrections >= 3 else ''}")

        incremental = all_counters()
        recompute_stats(season.users)
        recomputed = all_counters()
        assert {u: recomputed[u] for u in season.users} == {u: incremental[u] for u in season.users}

        expected = season.expected_match_counters()
        for user in season.users:
            got = incremental[user]
            assert {k: got[k] for k in ("matches_played", "matches_won", "matches_lost")} == {
                k: expected[user][k] for k in ("matches_played", "matches_won", "matches_lost")
            }, user
        registered = Counter(u for r in season.registered for u in season.users_of(r))
        joined = Counter(u for r in season.joined for u in season.users_of(r))
        earned, spent = Counter(), Counter()
        for wallet_user, amount in DeltaCrownTransaction.objects.filter(
            wallet__profile__user_id__in=season.users
        ).values_list("wallet__profile__user_id", "amount"):
            (earned if amount > 0 else spent)[wallet_user] += abs(amount)
        for user in season.users:
            got = incremental[user]
            assert (got["tournaments_registered"], got["tournaments_played"]) == (registered[user], joined[user])
            assert (got["total_earned"], got["total_spent"]) == (earned[user], spent[user])
        transaction.set_rollback(True)
