"""The sources pass compares keys in the database: the derived keys of a chunk go to the server, the anti-join on the
idempotency index answers with the absent ones, and only those are encoded and written. On a complete ledger a repair
pass therefore writes nothing at all (not even an INSERT that conflicts on every key), and the keys that differ from
a recorded one in any single column are the ones reported missing."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activity.append import _absent, append
from activity.derivation import Derivation
from activity.event_types import EventType
from activity.events import NewEvent
from activity.models import UserActivity
from activity.recording import record_events_for
from esports.tournaments.models import Match
from stats.reconcile import find_missing_events
from tests.factories import MatchFactory, UserFactory, complete_match
from tests.test_reconcile import record_everything

LEDGER = UserActivity._meta.db_table


def ledger_writes(captured: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].lstrip().upper().startswith("INSERT INTO " + LEDGER.upper())
    ]


def test_a_repair_pass_over_a_complete_ledger_sends_no_insert(db):
    for winner in ("participant1", "participant2"):
        match = MatchFactory()
        complete_match(match, getattr(match, winner))
    record_everything()
    before = UserActivity.objects.count()

    with CaptureQueriesContext(connection) as captured:
        missing = find_missing_events(fix=True)

    assert sum(sum(c.values()) for c in missing.values()) == 0
    assert ledger_writes(captured) == []  # without the anti-join: one INSERT .. ON CONFLICT per chunk
    assert UserActivity.objects.count() == before


def test_a_repair_pass_inserts_exactly_the_absent_events_of_a_signal_less_write(db):
    match = MatchFactory()
    record_everything()
    Match.objects.filter(pk=match.pk).update(  # no save(), no signal
        state=Match.State.COMPLETED, winner=match.participant1, loser=match.participant2, completed_at=timezone.now()
    )

    with CaptureQueriesContext(connection) as captured:
        missing = find_missing_events(fix=True)

    assert missing["tournaments.match"] == {"match_played": 2, "match_won": 1, "match_lost": 1}
    assert len(ledger_writes(captured)) == 1  # the one chunk with something absent
    assert find_missing_events(fix=False)["tournaments.match"] == {}


def test_the_absent_keys_are_those_differing_from_a_recorded_one_in_any_column(db):
    user, other = UserFactory(), UserFactory()
    recorded = NewEvent(user.pk, EventType.ACHIEVEMENT_UNLOCKED, timezone.now(), "bench.keys", 7, {})
    append([Derivation("bench.keys", 7, (recorded,))])
    variants = [
        recorded,
        recorded._replace(source_model="bench.other"),
        recorded._replace(source_id=8),
        recorded._replace(user_id=other.pk),
        recorded._replace(event_type=EventType.TEAM_JOINED),
        recorded._replace(seq=2),
        recorded,
    ]

    absent = _absent(variants)

    assert absent == variants[1:6]  # in their order; the recorded key (twice) is not among them
    assert _absent([]) == []


def test_a_report_only_run_counts_the_absent_events_and_writes_nothing(db):
    match = MatchFactory()
    complete_match(match, match.participant1)
    before = UserActivity.objects.count()

    result = record_events_for("tournaments.match", [match.pk], dry_run=True, origin="reconcile")

    assert result.would_insert_by_type == {"match_played": 2, "match_won": 1, "match_lost": 1}
    assert UserActivity.objects.count() == before
