"""A random sequence of matches - late inserts, outcome flips, walkovers, deletions, replays cut short at random
chunk sizes - leaves the ratings equal to a from-scratch fold of the source rows (computed here, independently)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from activity.recording import record_events_for
from esports.tournaments.models import Match
from stats.ratings.replay import run_replay
from tests.factories import UserFactory, complete_match
from tests.ledger_helpers import record
from tests.ratings_support import assert_close, entries, settle, solo_fold, stored, tournament

ROUNDS = ["Q1", "ER", "R32", "R16", "QF", "SF", "F"]
START = datetime(2024, 1, 1, tzinfo=UTC)

ops = st.lists(
    st.tuples(
        st.sampled_from(["play", "play", "play", "flip", "walkover", "delete", "replay"]),
        st.integers(0, 10_000),
    ),
    min_size=1,
    max_size=30,
)


@pytest.mark.django_db
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(ops=ops, seed=st.integers(0, 2**16))
# Found by this test: a partial replay rebuilt a player's rating from their oldest history row, not the newest.
@example(ops=[("play", 1), ("play", 0), ("play", 0), ("play", 2), ("replay", 0), ("play", 1)], seed=0)
def test_ratings_after_random_late_inserts_and_corrections_equal_a_fold_from_scratch(ops, seed) -> None:
    with transaction.atomic():  # each example in a savepoint rolled back at its end
        rng = random.Random(seed)
        users = [UserFactory() for _ in range(5)]
        # Four tournaments, two of them starting at the same time (the external id breaks the tie), one with no id.
        starts = [START, START + timedelta(days=3), START + timedelta(days=3), START + timedelta(days=9)]
        cups = [tournament(starts_at=s, external_id=(None if i == 3 else f"X{i}")) for i, s in enumerate(starts)]
        regs = {c.pk: entries(c, users) for c in cups}
        numbers = {c.pk: iter(range(1, 1000)) for c in cups}
        played: list[Match] = []
        for op, n in ops:
            live = [m for m in played if m.pk is not None]
            if op == "play" or not live:
                cup = cups[n % 4]
                a, b = rng.sample(regs[cup.pk], 2)
                num = None if n % 5 == 0 else next(numbers[cup.pk])
                match = Match.objects.create(
                    tournament=cup,
                    round=ROUNDS[n % len(ROUNDS)],
                    match_num=num,
                    participant1=a,
                    participant2=b,
                    completed_at=cup.starts_at,
                )
                complete_match(match, a)
                record(match)
                played.append(match)
            elif op == "flip":
                match = live[n % len(live)]
                match.refresh_from_db()
                other = match.participant2 if match.winner_id == match.participant1_id else match.participant1
                complete_match(match, other)
                record(match)
            elif op == "walkover":
                match = live[n % len(live)]
                Match.objects.filter(pk=match.pk).update(state=Match.State.FORFEIT)
                record(match)
            elif op == "delete":
                match = live[n % len(live)]
                pk = match.pk
                match.delete()
                record_events_for("tournaments.match", [pk])
            else:
                run_replay("chess", chunk_size=1 + n % 4)
        settle()
        assert_close(stored("chess"), solo_fold("chess"))
        transaction.set_rollback(True)
