"""Concurrent recorders (threads, each with its own database connection, committing for real): no deadlock, no
duplicate, exact counters, and convergence on the source rows' final state."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from django.db import connection

from activity.event_types import EventType as E
from activity.models import UserActivity
from activity.recording import record_events_for
from esports.economy.models import DeltaCrownTransaction
from esports.tournaments.models import Match
from stats.recompute import recompute_stats
from tests.factories import (
    MatchFactory,
    RegistrationFactory,
    TournamentFactory,
    TournamentResultFactory,
    TransactionFactory,
    UserFactory,
    complete_match,
)
from tests.ledger_helpers import all_counters, counters, ledger_counts, nonzero, run_in_threads

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("enqueued"), pytest.mark.slow]


def assert_no_duplicate_keys() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT source_model, source_id, user_id, event_type, seq, COUNT(*) FROM {UserActivity._meta.db_table} "
            "GROUP BY 1, 2, 3, 4, 5 HAVING COUNT(*) > 1"
        )
        assert cursor.fetchall() == []


def assert_stats_equal_recompute(user_ids) -> None:
    incremental = all_counters()
    recompute_stats(user_ids)
    recomputed = all_counters()
    assert {u: recomputed[u] for u in user_ids} == {u: incremental[u] for u in user_ids}


def test_ten_threads_recording_the_same_rows_neither_deadlock_nor_duplicate():
    tournament = TournamentFactory()
    regs = RegistrationFactory.create_batch(8, tournament=tournament)
    matches = [
        MatchFactory(tournament=tournament, participant1=regs[i], participant2=regs[i + 1]) for i in range(0, 8, 2)
    ]
    for m in matches:
        complete_match(m, m.participant1)
    result = TournamentResultFactory(
        tournament=tournament, winner=regs[0], runner_up=regs[2], third_place=regs[4], fourth_place=regs[6]
    )
    coins = [TransactionFactory(wallet=r.user.profile.wallet, amount=10 * (i + 1)) for i, r in enumerate(regs)]
    work = [
        ("tournaments.registration", [r.id for r in regs]),
        ("tournaments.match", [m.id for m in matches]),
        ("tournaments.tournamentresult", [result.id]),
        ("economy.deltacrowntransaction", [c.id for c in coins]),
    ]

    def recorder(i: int) -> None:
        rng = random.Random(i)
        jobs = list(work) + [(label, [pk]) for label, ids in work for pk in ids]  # batches and single rows
        rng.shuffle(jobs)
        for label, ids in jobs:
            record_events_for(label, ids)

    assert run_in_threads(10, recorder) == []
    assert_no_duplicate_keys()
    # 8 registrations x 2 + 4 matches x 4 + 4 placements + 8 completed + 8 coin events + 8 placed (1-4, and 9th for
    # each R16 loser: the matches' recordings re-derive the result too, concurrently with the result's own)
    assert UserActivity.objects.count() == 16 + 16 + 4 + 8 + 8 + 8
    champion = regs[0].user
    assert nonzero(counters(champion)) == {
        "tournaments_registered": 1,
        "tournaments_played": 1,
        "tournaments_completed": 1,
        "tournaments_won": 1,
        "matches_played": 1,
        "matches_won": 1,
        "total_earned": 10,
        "placements_counted": 1,
        "placements_sum": 1,
    }
    assert_stats_equal_recompute([r.user_id for r in regs])


def test_ten_threads_times_one_hundred_events_on_one_user_give_exact_counts():
    user = UserFactory()
    wallet = user.profile.wallet
    amounts = [(i + 1) * (1 if i % 3 else -1) for i in range(1000)]
    DeltaCrownTransaction.objects.bulk_create(
        [DeltaCrownTransaction(wallet=wallet, amount=a, reason="x") for a in amounts]
    )
    ids = sorted(DeltaCrownTransaction.objects.filter(wallet=wallet).values_list("id", flat=True))

    def recorder(i: int) -> None:
        for pk in ids[i * 100 : (i + 1) * 100]:  # 100 separate recordings (transactions) per thread
            record_events_for("economy.deltacrowntransaction", [pk])

    assert run_in_threads(10, recorder) == []
    earned = sum(a for a in amounts if a > 0)
    spent = -sum(a for a in amounts if a < 0)
    assert ledger_counts(user) == {
        E.COINS_EARNED: sum(1 for a in amounts if a > 0),
        E.COINS_SPENT: sum(1 for a in amounts if a < 0),
    }
    assert nonzero(counters(user)) == {"total_earned": earned, "total_spent": spent}
    assert_stats_equal_recompute([user.id])


def test_ten_threads_redelivering_the_same_hundred_events_to_one_user_count_each_once():
    user = UserFactory()
    DeltaCrownTransaction.objects.bulk_create(
        [DeltaCrownTransaction(wallet=user.profile.wallet, amount=5, reason="x")] * 100
    )
    ids = list(DeltaCrownTransaction.objects.filter(wallet__profile__user=user).values_list("id", flat=True))

    def recorder(i: int) -> None:
        for pk in random.Random(i).sample(ids, len(ids)):
            record_events_for("economy.deltacrowntransaction", [pk])

    assert run_in_threads(10, recorder) == []
    assert ledger_counts(user) == {E.COINS_EARNED: 100}
    assert nonzero(counters(user)) == {"total_earned": 500}


def test_concurrent_flips_and_recordings_of_one_match_converge_on_its_final_state():
    match = MatchFactory()
    a, b = match.participant1, match.participant2
    complete_match(match, a)

    def flipper(i: int) -> None:
        rng = random.Random(i)
        for _ in range(8):
            winner, loser = (a, b) if rng.random() < 0.5 else (b, a)
            state = rng.choice(
                [Match.State.COMPLETED, Match.State.COMPLETED, Match.State.FORFEIT, Match.State.DISPUTED]
            )
            Match.objects.filter(pk=match.pk).update(state=state, winner=winner, loser=loser)
            record_events_for("tournaments.match", [match.pk])

    assert run_in_threads(10, flipper) == []
    final = Match.objects.get(pk=match.pk)
    if final.state == Match.State.DISPUTED:  # disputed records nothing: settle it to get a definite expectation
        complete_match(final, final.winner)
    record_events_for("tournaments.match", [match.pk])
    assert_no_duplicate_keys()
    final.refresh_from_db()
    for reg in (a, b):
        won = int(final.state == Match.State.COMPLETED and final.winner_id == reg.id)
        lost = int(final.state == Match.State.COMPLETED and final.loser_id == reg.id)
        assert nonzero(counters(reg.user)) == nonzero({"matches_played": 1, "matches_won": won, "matches_lost": lost})
    assert_stats_equal_recompute([a.user_id, b.user_id])


def test_two_tournament_results_recorded_concurrently_both_count_for_shared_players():
    shared = UserFactory.create_batch(4)
    results = []
    for _ in range(2):
        tournament = TournamentFactory()
        regs = [RegistrationFactory(tournament=tournament, user=u) for u in shared]
        regs += RegistrationFactory.create_batch(3, tournament=tournament)
        results.append(
            TournamentResultFactory(
                tournament=tournament, winner=regs[0], runner_up=regs[1], third_place=regs[2], fourth_place=regs[3]
            )
        )

    def recorder(i: int) -> None:
        for _ in range(5):
            record_events_for("tournaments.tournamentresult", [results[i % 2].id])

    assert run_in_threads(10, recorder) == []
    placed_1st, placed_4th = (
        {"placements_counted": 2, "placements_sum": 2},
        {"placements_counted": 2, "placements_sum": 8},
    )
    assert nonzero(counters(shared[0])) == {"tournaments_completed": 2, "tournaments_won": 2, **placed_1st}
    assert nonzero(counters(shared[3])) == {"tournaments_completed": 2, "tournaments_top4": 2, **placed_4th}
    assert Counter(UserActivity.objects.values_list("event_type", flat=True)) == {
        E.TOURNAMENT_COMPLETED: 14,
        E.TOURNAMENT_WON: 2,
        E.TOURNAMENT_RUNNER_UP: 2,
        E.TOURNAMENT_TOP4: 4,
        E.TOURNAMENT_PLACED: 8,  # the four the results name, per tournament (the others lost no match)
    }
