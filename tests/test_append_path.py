"""The one append path: validates before writing, inserts exactly the missing events, compensates corrected outcomes,
and moves the projection by exactly what it inserted, in one transaction, set-based."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activity.append import append
from activity.derivation import Derivation
from activity.event_types import EventType as E
from activity.events import InvalidEventError, NewEvent
from activity.models import UserActivity
from activity.recording import record_events_for
from esports.tournaments.models import Match
from stats.models import UserProfileStats
from tests.factories import MatchFactory, TournamentFactory, TransactionFactory, UserFactory, complete_match
from tests.ledger_helpers import all_counters, counters, ledger_counts, nonzero, record

pytestmark = pytest.mark.django_db
NOW = timezone.now()


def event(user_id, event_type=E.ACHIEVEMENT_UNLOCKED, source_id=1, **kwargs) -> NewEvent:
    return NewEvent(user_id, event_type, kwargs.pop("timestamp", NOW), "test.source", source_id, **kwargs)


def derivation(*events: NewEvent) -> Derivation:
    return Derivation("test.source", events[0].source_id, tuple(events))


def failing_append(derivations) -> None:
    """append() joins its caller's transaction (savepoint=False): like any caller that carries on after an error,
    the test gives it a savepoint of its own."""
    with transaction.atomic():
        append(derivations)


# --- validation: bad input, clear error, nothing written ------------------------------------------------------


@pytest.fixture
def user():
    return UserFactory()


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"event_type": "match_tied"}, "Unknown event type 'match_tied'"),
        ({"event_type": E.COINS_EARNED, "amount": 0}, "positive integer amount"),
        ({"event_type": E.COINS_SPENT, "amount": -5}, "positive integer amount"),
        ({"event_type": E.COINS_EARNED, "amount": None}, "positive integer amount"),
        ({"event_type": E.COINS_EARNED, "amount": True}, "positive integer amount"),
        ({"event_type": E.MATCH_WON, "amount": 5}, "Only coin and placement events carry an amount"),
        ({"event_type": E.TOURNAMENT_PLACED, "amount": 0}, "A placement's amount is a positive integer or none"),
        ({"metadata": {"blob": "x" * 5000}}, "above the 4096-byte bound"),
        ({"metadata": {"when": datetime(2026, 1, 1)}}, "not JSON-serialisable"),
        ({"metadata": {"ratio": float("nan")}}, "not JSON-serialisable"),
        ({"metadata": {1: "numeric key"}}, "string keys"),
        ({"metadata": ["not", "an", "object"]}, "string keys"),
        ({"timestamp": datetime(2026, 1, 1)}, "aware datetime"),
        ({"visibility": "everyone"}, "Unknown visibility"),
        ({"seq": 0}, "seq must be a positive integer"),
    ],
)
def test_invalid_event_raises_a_clear_error_and_writes_nothing(user, bad, message):
    good = event(user.id, source_id=1)
    wrong = event(user.id, source_id=2, **bad)
    with pytest.raises(InvalidEventError, match=message):
        failing_append([derivation(good), derivation(wrong)])
    assert not UserActivity.objects.exists()
    assert nonzero(counters(user)) == {}


def test_invalid_user_id_is_rejected(user):
    with pytest.raises(InvalidEventError, match="Invalid user id"):
        failing_append([derivation(event(0))])
    assert not UserActivity.objects.exists()


def test_metadata_bound_is_a_setting(user, settings):
    settings.ACTIVITY_METADATA_MAX_BYTES = 64
    with pytest.raises(InvalidEventError, match="above the 64-byte bound"):
        failing_append([derivation(event(user.id, metadata={"note": "y" * 64}))])
    append([derivation(event(user.id, metadata={"note": "short"}))])
    assert UserActivity.objects.get().metadata == {"note": "short"}


# --- exactly the missing events -------------------------------------------------------------------------------


def test_append_returns_exactly_the_rows_it_inserted(user):
    first = append([derivation(event(user.id, source_id=1)), derivation(event(user.id, source_id=2))])
    assert len(first.inserted) == 2
    assert {e.id for e in first.inserted} == set(UserActivity.objects.values_list("id", flat=True))
    second = append([derivation(event(user.id, source_id=2)), derivation(event(user.id, source_id=3))])
    assert [(e.user_id, e.event_type) for e in second.inserted] == [(user.id, E.ACHIEVEMENT_UNLOCKED)]
    assert UserActivity.objects.get(id=second.inserted[0].id).source_id == 3
    assert counters(user)["achievements_count"] == 3


def test_duplicate_events_in_one_call_are_inserted_once(user):
    same = event(user.id)
    result = append([derivation(same), derivation(same, same)])
    assert len(result.inserted) == 1
    assert counters(user)["achievements_count"] == 1


def test_dry_run_counts_what_would_be_inserted_and_writes_nothing(user):
    append([derivation(event(user.id, source_id=1))])
    result = append([derivation(event(user.id, source_id=1)), derivation(event(user.id, source_id=2))], dry_run=True)
    assert (result.derived, result.would_insert, result.inserted) == (2, 1, [])
    assert UserActivity.objects.count() == 1
    assert counters(user)["achievements_count"] == 1


def test_stored_row_carries_recorded_at_default_visibility_and_compact_metadata(user):
    before = timezone.now()
    append([derivation(event(user.id, E.COINS_EARNED, amount=7, metadata={"reason": "prize"}))])
    row = UserActivity.objects.get()
    assert (row.timestamp, row.amount, row.visibility, row.metadata, row.seq) == (
        NOW,
        7,
        "private",
        {"reason": "prize"},
        1,
    )
    assert row.recorded_at >= before


# --- corrections: the original events stay, compensations make the stats follow -------------------------------


def flip(match: Match) -> Match:
    """Resolve a dispute the other way: the loser becomes the winner."""
    match.state = Match.State.DISPUTED
    match.save()
    record(match)  # disputed: nothing new, nothing compensated
    assert match.loser is not None, "only a decided match can flip"
    return complete_match(match, match.loser)


def test_outcome_flip_keeps_the_original_events_and_compensates_them():
    match = MatchFactory()
    a, b = match.participant1.user, match.participant2.user
    complete_match(match, match.participant1)
    record(match)
    original = set(UserActivity.objects.filter(source_model="tournaments.match").values_list("id", flat=True))
    flip(match)
    result = record(match)
    assert original <= set(UserActivity.objects.values_list("id", flat=True))
    assert sorted((e.user_id, e.event_type) for e in result.inserted) == sorted(
        [(a.id, E.MATCH_WON_REVERSED), (a.id, E.MATCH_LOST), (b.id, E.MATCH_LOST_REVERSED), (b.id, E.MATCH_WON)]
    )
    assert ledger_counts(a) == {E.MATCH_PLAYED: 1, E.MATCH_WON: 1, E.MATCH_WON_REVERSED: 1, E.MATCH_LOST: 1}
    assert (counters(a)["matches_won"], counters(a)["matches_lost"], counters(a)["matches_played"]) == (0, 1, 1)
    assert (counters(b)["matches_won"], counters(b)["matches_lost"], counters(b)["matches_played"]) == (1, 0, 1)
    reversal = UserActivity.objects.get(user=a, event_type=E.MATCH_WON_REVERSED)
    assert reversal.metadata["reverses"] == E.MATCH_WON
    assert reversal.visibility == "public"


@pytest.mark.parametrize("flips", [1, 2, 3, 4])
def test_any_number_of_flips_leaves_the_stats_on_the_final_outcome(flips):
    match = MatchFactory()
    a, b = match.participant1.user, match.participant2.user
    complete_match(match, match.participant1)
    record(match)
    for _ in range(flips):
        flip(match)
        record(match)
        record(match)  # redelivery adds nothing
    a_won = flips % 2 == 0
    assert nonzero(counters(a)) == nonzero(
        {"matches_played": 1, "matches_won": int(a_won), "matches_lost": int(not a_won)}
    )
    assert nonzero(counters(b)) == nonzero(
        {"matches_played": 1, "matches_won": int(not a_won), "matches_lost": int(a_won)}
    )
    # every flip appended to the ledger, nothing was removed: seq numbers keep the keys unique
    assert (
        UserActivity.objects.filter(source_model="tournaments.match", user=a, event_type=E.MATCH_WON).count()
        == 1 + flips // 2
    )


def test_completed_then_forfeit_reverses_win_and_loss_and_keeps_played():
    match = MatchFactory()
    a, b = match.participant1.user, match.participant2.user
    complete_match(match, match.participant1)
    record(match)
    match.state = Match.State.FORFEIT
    match.save()
    record(match)
    assert nonzero(counters(a)) == {"matches_played": 1}
    assert nonzero(counters(b)) == {"matches_played": 1}


def test_disputed_or_cancelled_after_completion_changes_nothing():
    match = MatchFactory()
    complete_match(match, match.participant1)
    record(match)
    before = (UserActivity.objects.count(), all_counters())
    for state in (Match.State.DISPUTED, Match.State.CANCELLED):
        match.state = state
        match.save()
        assert record(match).inserted == []
    assert (UserActivity.objects.count(), all_counters()) == before


def test_corrected_tournament_result_moves_the_placements():
    from tests.factories import RegistrationFactory, TournamentResultFactory

    tournament = TournamentFactory()
    first, second = RegistrationFactory.create_batch(2, tournament=tournament)
    result = TournamentResultFactory(tournament=tournament, winner=first, runner_up=second)
    record(result)
    result.winner, result.runner_up = second, first
    result.save()
    record(result)
    # ... and their tournament_placed with them: 1 compensated for 2, and 2 for 1.
    placed = {"placements_counted": 1}
    assert nonzero(counters(first.user)) == {
        "tournaments_runner_up": 1,
        "tournaments_completed": 1,
        **placed,
        "placements_sum": 2,
    }
    assert nonzero(counters(second.user)) == {
        "tournaments_won": 1,
        "tournaments_completed": 1,
        **placed,
        "placements_sum": 1,
    }


# --- set-based ------------------------------------------------------------------------------------------------


def recording_queries(n_matches: int) -> int:
    tournament = TournamentFactory()
    matches = [complete_match(m, m.participant1) for m in MatchFactory.create_batch(n_matches, tournament=tournament)]
    with CaptureQueriesContext(connection) as queries:
        result = record_events_for("tournaments.match", [m.id for m in matches])
    assert len(result.inserted) == n_matches * 4
    return len(queries)


def test_recording_many_rows_takes_as_many_queries_as_recording_one():
    one = recording_queries(1)
    assert recording_queries(40) == one
    assert UserProfileStats.objects.filter(matches_played=1).count() == 82
    # 12, plus 4 of the live rating update (stats.ratings.live) for a new latest match, plus 1 asking which results
    # the matches' tournaments have (a match moves placements: activity.sources.results_of_matches)
    assert one <= 17


# --- durability of the recording transaction ------------------------------------------------------------------


def sql_of(run) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        run()
    return [q["sql"] for q in queries.captured_queries]


@pytest.mark.django_db(transaction=True)
def test_a_recording_that_owns_its_transaction_skips_the_wal_flush_wait_and_a_callers_transaction_keeps_its_own(
    enqueued, settings
):
    first, second = TransactionFactory(), TransactionFactory()
    own = sql_of(lambda: record(first))
    assert own[:2] == ["BEGIN", "SET LOCAL synchronous_commit TO OFF"]

    def inside_a_callers_transaction():
        with transaction.atomic():
            record(second)

    assert not any("synchronous_commit" in sql for sql in sql_of(inside_a_callers_transaction))
    settings.ACTIVITY_ASYNC_COMMIT = False
    third = TransactionFactory()
    assert not any("synchronous_commit" in sql for sql in sql_of(lambda: record(third)))
    assert UserActivity.objects.filter(source_model="economy.deltacrowntransaction").count() == 3
