"""A backfill chunk derived beside its insert (activity.overlapped, issue 19): the events and counters the rules
imply, the helper thread deriving one part while the connection inserts the part before and never touching the
database, errors and recorded rows handled as before, statements per chunk bounded."""

from __future__ import annotations

import threading

import pytest
from django.db import transaction
from django.test.utils import CaptureQueriesContext

from activity import backfill, overlapped
from activity import derivation as rules
from activity.models import PoisonRow, UserActivity
from activity.phases import BESIDE, collecting
from activity.recording import record_events_for
from tests.backfill_support import (  # noqa: F401 - fixture
    assert_projection_matches_ledger,
    drain,
    history_mode,
    ledger_keys,
    make_history,
    projected_counters,
)

MATCH = rules.MATCH
WAIT = 5.0  # seconds a thread waits for the other before the test gives up


@pytest.fixture
def small_parts(monkeypatch) -> None:
    """Chunks of a test's size cut into several parts, on a machine with cores to spare for a 1-lane backfill."""
    monkeypatch.setattr(overlapped, "MIN_PART_ROWS", 4)
    monkeypatch.setattr(overlapped, "_usable_cpus", lambda: 2)


@pytest.fixture
def inserts(monkeypatch) -> list[int]:
    """The row count of every insert statement of the overlapped way."""
    counts: list[int] = []
    real = overlapped.insert

    def counted(rows, *args, **kwargs):
        counts.append(len(rows))
        return real(rows, *args, **kwargs)

    monkeypatch.setattr(overlapped, "insert", counted)
    return counts


@pytest.mark.django_db
def test_a_backfill_cut_into_parts_records_every_event_and_counter_once(history_mode, small_parts, inserts):  # noqa: F811
    history = make_history(players=10, matches=40, coin_users=3, coins_each=5)
    run = drain(backfill.start_backfill(batch_size=30, enqueue=False))
    assert run.status == run.Status.SUCCEEDED
    assert ledger_keys() == dict.fromkeys(history.expected.keys, 1)
    assert projected_counters() == history.expected.user_counters()
    assert len(inserts) > run.chunks_done  # chunks really went in part by part
    assert_projection_matches_ledger(u.pk for u in history.users)


@pytest.mark.django_db
def test_the_next_part_is_derived_in_a_helper_thread_while_the_part_before_is_inserted(
    history_mode,  # noqa: F811
    small_parts,
    monkeypatch,
):
    history = make_history(players=8, matches=12)
    ids = [m.pk for m in history.matches]  # three parts of four
    second_part = set(ids[4:8])
    inserting, derived_meanwhile = threading.Event(), threading.Event()
    derived_in: set[str] = set()
    inserts_saw_the_derivation: list[bool] = []
    real_derive, real_insert = rules.derive_match, overlapped.insert

    def derive(match, members):
        derived_in.add(threading.current_thread().name)
        if match.id in second_part and inserting.wait(WAIT):
            derived_meanwhile.set()
        return real_derive(match, members)

    def insert(rows, *args, **kwargs):
        inserting.set()
        inserts_saw_the_derivation.append(derived_meanwhile.wait(WAIT))
        try:
            return real_insert(rows, *args, **kwargs)
        finally:
            inserting.clear()

    monkeypatch.setattr(rules, "derive_match", derive)
    monkeypatch.setattr(overlapped, "insert", insert)
    with collecting() as phases, transaction.atomic():
        result = record_events_for(MATCH, ids, origin="backfill", overlap=True)
    assert inserts_saw_the_derivation[0], "the second part was not derived during the first part's insert"
    assert threading.current_thread().name not in derived_in
    assert {key for key in ledger_keys() if key[0] == MATCH} == history.expected.by_source(MATCH)
    assert len(result.inserted) == len(history.expected.by_source(MATCH))
    assert phases.wall[BESIDE + "derive"] > 0 and "wait for derivation" in phases.wall


@pytest.mark.django_db
def test_a_derivation_that_queries_the_database_fails_and_writes_nothing(history_mode, monkeypatch):  # noqa: F811
    history = make_history(players=4, matches=3)
    real = rules.derive_match

    def querying(match, members):
        UserActivity.objects.filter(source_id=match.id).exists()  # the helper thread is outside the transaction
        return real(match, members)

    monkeypatch.setattr(rules, "derive_match", querying)
    with pytest.raises(overlapped.DatabaseAccessInHelper, match="must not query"), transaction.atomic():
        record_events_for(MATCH, [m.pk for m in history.matches], origin="backfill", overlap=True)
    assert not UserActivity.objects.filter(source_model=MATCH).exists()


@pytest.mark.django_db
def test_a_derivation_error_in_a_later_part_is_isolated_to_its_row(history_mode, small_parts, monkeypatch):  # noqa: F811
    history = make_history(players=8, matches=16)
    bad = history.matches[13].pk  # the fourth part of a 16-row chunk
    real = rules.derive_match

    def derive(match, members):
        if match.id == bad:
            raise ValueError(f"cannot derive match {match.id}")
        return real(match, members)

    monkeypatch.setattr(rules, "derive_match", derive)
    run = drain(backfill.start_backfill([MATCH], batch_size=16, enqueue=False))
    assert run.status == run.Status.SUCCEEDED
    assert list(PoisonRow.objects.values_list("source_id", flat=True)) == [bad]
    want = {key for key in history.expected.by_source(MATCH) if key[1] != bad}
    assert set(ledger_keys([MATCH])) == want


@pytest.mark.django_db
def test_a_chunk_with_a_recorded_row_is_recorded_the_sequential_way(history_mode, small_parts, inserts):  # noqa: F811
    history = make_history(players=8, matches=12)
    first = history.matches[0].pk
    with transaction.atomic():
        record_events_for(MATCH, [first])  # live, before the backfill reaches it
    drain(backfill.start_backfill([MATCH], batch_size=100, enqueue=False))
    assert inserts == []  # no part of the overlapped way
    assert ledger_keys([MATCH]) == dict.fromkeys(history.expected.by_source(MATCH), 1)


@pytest.mark.django_db
@pytest.mark.parametrize(("lanes", "overlaps"), [(1, True), (2, False)])
def test_a_backfill_overlaps_only_with_a_core_to_spare(history_mode, small_parts, inserts, lanes, overlaps):  # noqa: F811
    history = make_history(players=8, matches=24)
    run = drain(backfill.start_backfill([MATCH], batch_size=12, lanes=lanes, enqueue=False))  # two cores
    assert bool(inserts) is overlaps
    assert ledger_keys([MATCH]) == dict.fromkeys(history.expected.by_source(MATCH), 1)
    assert run.status == run.Status.SUCCEEDED


@pytest.mark.django_db
def test_statements_per_chunk_are_bounded_by_the_part_count(history_mode, monkeypatch):  # noqa: F811
    monkeypatch.setattr(overlapped, "MIN_PART_ROWS", 1)
    history = make_history(players=20, matches=260)
    ids = [m.pk for m in history.matches]
    counts = []
    for chunk in (ids[: 2 * overlapped.PARTS], ids[100 : 100 + 20 * overlapped.PARTS]):
        with CaptureQueriesContext(transaction.get_connection()) as queries, transaction.atomic():
            record_events_for(MATCH, chunk, origin="backfill", overlap=True)
        counts.append(len(queries))
    assert counts[0] == counts[1]
