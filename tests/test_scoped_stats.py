"""Per-game and per-season stats: the rows equal a GROUP BY over the ledger after any workload (corrections, late
and repeated recordings, deleted rows), average_placement included, the recompute gives the same rows, the
reconciliation finds and repairs their drift, and events carry their tournament's game and season."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from activity.models import UserActivity
from activity.recording import record_events_for
from esports.tournaments.models import Match, Registration, TournamentResult
from stats.counters import AMOUNT_COUNT_FIELDS, AMOUNT_FIELDS, COUNTER_FIELDS, EFFECTS
from stats.models import UserGameStats, UserProfileStats, UserSeasonStats
from stats.recompute import recompute_stats
from stats.reconcile import run_reconciliation
from tests.factories import MatchFactory, RegistrationFactory, TournamentFactory, TransactionFactory, UserFactory
from tests.ledger_helpers import record

TOURNAMENTS = [("valorant", 2024), ("valorant", 2025), ("chess", None)]  # a game without seasons too
N_USERS = 4
PAIRS = [(0, 1), (2, 3), (0, 3)]  # per tournament: its matches, by user index
ROUNDS = ["QF", "R16", "R32"]  # ... and their rounds: a loss in them places the loser 5th, 9th or 17th
WHEN = st.sampled_from(("now", "now", "twice", "later"))
ops = st.one_of(
    st.tuples(
        st.just("match"),
        st.integers(0, len(TOURNAMENTS) * len(PAIRS) - 1),
        st.sampled_from(("p1", "p2", "p1", "p2", "forfeit", "disputed")),
        WHEN,
    ),
    st.tuples(
        st.just("registration"),
        st.integers(0, len(TOURNAMENTS) - 1),
        st.integers(0, N_USERS - 1),
        st.sampled_from(("pending", "confirmed", "cancelled")),
        st.booleans(),
        WHEN,
    ),
    # The result names 2 or 4 entrants: the others are placed by their losses (and re-placed when a match changes).
    st.tuples(
        st.just("result"),
        st.integers(0, len(TOURNAMENTS) - 1),
        st.permutations(range(N_USERS)),
        st.booleans(),
        WHEN,
    ),
    st.tuples(st.just("coins"), st.integers(0, N_USERS - 1), st.integers(1, 300), WHEN),
)
FLIPS_ACROSS_SEASONS = [
    ("match", 0, "p1", "now"),
    ("match", 3, "p2", "now"),
    ("match", 0, "p2", "twice"),
    ("match", 3, "disputed", "now"),
    ("match", 3, "p1", "later"),
    ("match", 6, "forfeit", "now"),
    ("match", 6, "p2", "now"),
    ("registration", 1, 1, "confirmed", True, "now"),
    ("registration", 1, 2, "confirmed", True, "now"),
    ("result", 1, [3, 0, 1, 2], True, "now"),
    ("result", 1, [0, 3, 1, 2], False, "later"),
    ("match", 4, "p2", "now"),
    ("coins", 0, 50, "now"),
]


def ledger_group_by(keys: tuple[str, ...]) -> dict[tuple, dict]:
    """The oracle: a GROUP BY over the ledger (user, *keys, event type), each group's count or amount signed by the
    event -> counter mapping; only events that carry every key."""
    not_null = " AND ".join(f"{k} IS NOT NULL" for k in keys) or "TRUE"  # no keys: the lifetime rows
    columns = "".join(f"{k}, " for k in keys)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT user_id, {columns}event_type, COUNT(*), COALESCE(SUM(amount), 0), COUNT(amount) "
            f"FROM {UserActivity._meta.db_table} WHERE {not_null} GROUP BY user_id, {columns}event_type"
        )
        rows = cursor.fetchall()
    expected: dict[tuple, dict] = defaultdict(lambda: dict.fromkeys(COUNTER_FIELDS, 0))
    for *key, event_type, n, amount, with_amount in rows:
        counters = expected[tuple(key)]
        for counter, sign in EFFECTS[event_type]:
            if counter in AMOUNT_FIELDS:
                counters[counter] += sign * int(amount)
            else:
                counters[counter] += sign * (with_amount if counter in AMOUNT_COUNT_FIELDS else n)
    for counters in expected.values():  # the mean of the placements <= 10, to 2 decimals, as the rows generate it
        counted = counters["placements_counted"]
        counters["average_placement"] = (
            (Decimal(counters["placements_sum"]) / counted).quantize(Decimal("0.01"), ROUND_HALF_UP)
            if counted
            else None
        )
    return dict(expected)


def game_rows() -> dict[tuple, dict[str, int]]:
    return {
        (r.pop("profile_id"), r.pop("game")): r
        for r in UserGameStats.objects.values("profile_id", "game", *COUNTER_FIELDS, "average_placement")
    }


def lifetime_rows() -> dict[tuple, dict[str, int]]:
    return {
        (r.pop("profile_id"),): r
        for r in UserProfileStats.objects.values("profile_id", *COUNTER_FIELDS, "average_placement")
    }


def season_rows() -> dict[tuple, dict[str, int]]:
    return {
        (r.pop("profile_id"), r.pop("game"), r.pop("season")): r
        for r in UserSeasonStats.objects.values("profile_id", "game", "season", *COUNTER_FIELDS, "average_placement")
    }


class Circuit:
    """Four players entered in three tournaments (two seasons of one game, one game without seasons)."""

    def __init__(self) -> None:
        self.users = [UserFactory() for _ in range(N_USERS)]
        record(*[u.profile for u in self.users])
        self.tournaments = [TournamentFactory(game=g, season=s) for g, s in TOURNAMENTS]
        self.regs = [
            [RegistrationFactory(tournament=t, user=u, status="pending", checked_in=False) for u in self.users]
            for t in self.tournaments
        ]
        self.matches = [
            MatchFactory(tournament=t, round=round_, participant1=self.regs[i][a], participant2=self.regs[i][b])
            for i, t in enumerate(self.tournaments)
            for (a, b), round_ in zip(PAIRS, ROUNDS, strict=True)
        ]
        self.outcome: dict[int, tuple[str, int | None]] = {}  # match id -> last recorded (state, winner reg id)
        self.pending: list = []

    def record(self, row) -> None:
        row.refresh_from_db()
        if isinstance(row, Match) and row.state in ("completed", "forfeit"):
            self.outcome[row.id] = (row.state, row.winner_id)
        record(row)

    def after(self, row, when: str) -> None:
        if when == "later":
            self.pending.append(row)
        else:
            for _ in range(2 if when == "twice" else 1):
                self.record(row)

    def catch_up(self, rng: random.Random) -> None:
        rng.shuffle(self.pending)
        for row in self.pending:
            self.record(row)
        self.pending.clear()

    def apply(self, op) -> None:
        kind, *args, when = op
        if kind == "match":
            index, outcome = args
            match = self.matches[index]
            if outcome in ("p1", "p2"):
                match.state = Match.State.COMPLETED
                p1, p2 = match.participant1, match.participant2
                match.winner, match.loser = (p1, p2) if outcome == "p1" else (p2, p1)
                match.completed_at = match.completed_at or timezone.now()
            else:
                match.state = outcome
            match.save()
            self.after(match, when)
        elif kind == "registration":
            t, u, status, checked_in = args
            reg = self.regs[t][u]
            reg.status, reg.checked_in = status, checked_in and status == Registration.Status.CONFIRMED
            reg.save()
            self.after(reg, when)
        elif kind == "result":
            t, order, semis = args
            placed = [self.regs[t][i] for i in order]
            result, _ = TournamentResult.objects.update_or_create(
                tournament=self.tournaments[t],
                defaults={
                    "winner": placed[0],
                    "runner_up": placed[1],
                    "third_place": placed[2] if semis else None,
                    "fourth_place": placed[3] if semis else None,
                },
            )
            self.after(result, when)
        else:
            u, amount = args
            self.after(TransactionFactory(wallet=self.users[u].profile.wallet, amount=amount), when)

    def expected_match_wins(self) -> Counter:
        """(user id, game, season) -> matches won, from the outcomes the recordings saw (not from the ledger)."""
        wins: Counter = Counter()
        for match in self.matches:
            state, winner = self.outcome.get(match.id, ("", None))
            if state == "completed" and winner is not None:
                t = match.tournament
                user = Registration.objects.get(pk=winner).user_id
                wins[(user, t.game, t.season)] += 1
        return wins


@pytest.mark.django_db
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(workload=st.lists(ops, min_size=1, max_size=25), seed=st.integers(0, 2**16))
@example(workload=FLIPS_ACROSS_SEASONS, seed=3)
def test_per_game_and_per_season_rows_equal_a_group_by_over_the_ledger(workload, seed):
    with transaction.atomic():  # each example in a savepoint rolled back at its end
        circuit = Circuit()
        rng = random.Random(seed)
        for op in workload:
            circuit.apply(op)
            if rng.random() < 0.2:
                circuit.catch_up(rng)
        circuit.catch_up(rng)

        by_game, by_season = ledger_group_by(("game",)), ledger_group_by(("game", "season"))
        assert game_rows() == by_game
        assert season_rows() == by_season
        for (user, game, season), n in circuit.expected_match_wins().items():
            assert by_game[(user, game)]["matches_won"] >= n
            if season is not None:
                assert by_season[(user, game, season)]["matches_won"] == n
        assert all(season is not None for _user, _game, season in season_rows())  # no season, no season row

        assert lifetime_rows() == ledger_group_by(())
        # The ledger -> stats pass of the reconciliation agrees (its pre-grouped pivot counts the amounts too).
        assert run_reconciliation(fix=False, skip_sources=True).users_drifted == 0

        recompute_stats([u.id for u in circuit.users])  # the recompute derives the same rows
        assert game_rows() == by_game
        assert season_rows() == by_season
        assert lifetime_rows() == ledger_group_by(())
        transaction.set_rollback(True)


def two_season_history():
    """One player's matches in two seasons of valorant and in chess; one valorant 2025 outcome flipped."""
    me, rival = UserFactory(), UserFactory()
    record(me.profile, rival.profile)
    matches = []
    for game, season in (("valorant", 2024), ("valorant", 2025), ("chess", None)):
        t = TournamentFactory(game=game, season=season)
        mine, theirs = RegistrationFactory(tournament=t, user=me), RegistrationFactory(tournament=t, user=rival)
        record(mine, theirs)
        match = MatchFactory(tournament=t, participant1=mine, participant2=theirs)
        match.state, match.winner, match.loser, match.completed_at = "completed", mine, theirs, timezone.now()
        match.save()
        record(match)
        matches.append(match)
    flipped = matches[1]
    flipped.winner, flipped.loser = flipped.participant2, flipped.participant1
    flipped.save()
    record(flipped)
    return me, rival, matches


@pytest.mark.django_db
def test_events_carry_their_tournaments_game_and_season_and_compensations_count_in_the_same_rows():
    me, _rival, matches = two_season_history()
    scoped = set(UserActivity.objects.filter(user=me, source_model="tournaments.match").values_list("game", "season"))
    assert scoped == {("valorant", 2024), ("valorant", 2025), ("chess", None)}
    assert not UserActivity.objects.filter(user=me, event_type="profile_created").exclude(game=None).exists()
    rows = {
        (r.game, r.season): (r.matches_won, r.matches_lost) for r in UserSeasonStats.objects.filter(profile_id=me.pk)
    }
    assert rows == {("valorant", 2024): (1, 0), ("valorant", 2025): (0, 1)}  # the flip moved 2025 only
    games = {
        r.game: (r.matches_played, r.matches_won, r.tournaments_registered)
        for r in UserGameStats.objects.filter(profile_id=me.pk)
    }
    assert games == {"valorant": (2, 1, 2), "chess": (1, 1, 1)}

    # A deleted match is compensated from the ledger's own rows: its game and season columns go with it.
    chess = matches[2]
    chess_id = chess.pk
    chess.delete()
    record_events_for("tournaments.match", [chess_id])
    assert UserGameStats.objects.get(profile_id=me.pk, game="chess").matches_played == 0
    assert game_rows() == ledger_group_by(("game",))
    assert season_rows() == ledger_group_by(("game", "season"))


@pytest.mark.django_db
def test_the_scoped_apply_is_two_statements_for_every_scope_whatever_the_batch(django_assert_num_queries):
    from activity.append import append
    from activity.derivation import MATCH, Derivation
    from activity.events import NewEvent

    users = [UserFactory() for _ in range(30)]
    now = timezone.now()
    events = [
        NewEvent(u.id, "match_played", now, MATCH, 9_000 + 2 * i + j, {"game": g}, game=g, season=s)
        for i, u in enumerate(users)
        for j, (g, s) in enumerate((("valorant", 2024), ("chess", None)))
    ]
    # insert, lifetime rows (create, lock, update), then the scoped rows of both scopes (create, add)
    with django_assert_num_queries(6):
        append([Derivation(MATCH, e.source_id, (e,)) for e in events])
    assert UserGameStats.objects.filter(matches_played=1).count() == 60
    assert UserSeasonStats.objects.filter(matches_played=1).count() == 30


@pytest.mark.django_db
def test_reconciliation_finds_and_repairs_drift_in_the_scoped_rows():
    me, rival, _matches = two_season_history()
    UserGameStats.objects.filter(profile_id=me.pk, game="valorant").update(matches_won=7)
    UserSeasonStats.objects.filter(profile_id=rival.pk, game="valorant", season=2024).delete()
    UserSeasonStats.objects.create(profile=rival.profile, game="chess", season=1999, matches_played=2)

    report = run_reconciliation(fix=False, skip_sources=True)
    assert report.users_drifted == 2
    assert report.field_drift == {
        "game_stats.matches_won": 1,
        "season_stats.no_row": 1,
        "season_stats.extra_row": 1,
    }
    assert game_rows() != ledger_group_by(("game",))  # report only: nothing written

    repaired = run_reconciliation(fix=True, skip_sources=True)
    assert repaired.users_fixed == 2
    assert game_rows() == ledger_group_by(("game",))
    assert season_rows() == ledger_group_by(("game", "season"))
    assert run_reconciliation(fix=False, skip_sources=True).users_drifted == 0
