"""Backfill: history recorded through the one append path, chunk after chunk, exactly once."""

from __future__ import annotations

import csv
import gzip
import io
import os
import threading
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activity import backfill
from activity.backfill import chunks, scheduling
from activity.events import InvalidEventError
from activity.models import BackfillLane, BackfillRun, UserActivity
from dispatch.names import TaskName
from dispatch.publish import PublishFailed
from monitoring import metrics
from tests.backfill_support import (
    MATCH,
    REGISTRATION,
    assert_projection_matches_ledger,
    drain,
    lane_of,
    ledger_keys,
    make_history,
    projected_counters,
)
from tests.career_data import csv_placements
from tests.conftest import wait_until

ATP_DIR = Path(os.environ.get("ATP_DIR") or Path(settings.BASE_DIR).parent / "shared" / "data" / "atp")
# A decade of the tour (about 28,000 matches, 650 tournaments, 1,000 players).
DECADE = (2015, 2024)


# --- the decade of real history --------------------------------------------------------------------------------


def counters_from_the_csv(first: int, last: int) -> dict[str, dict[str, int]]:
    """Each player's counters computed straight from the CSV with the import's published rules (issue 2, item 4),
    keyed by username: nothing here reads our tables."""
    rows = []
    with gzip.open(ATP_DIR / "atp_tour_matches.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if first <= int(row["tourney_id"][:4]) <= last and row["winner_id"] != row["loser_id"]:
                rows.append(row)
    c: dict[str, Counter] = defaultdict(Counter)
    entrants: dict[str, set[str]] = defaultdict(set)
    finals: dict[str, list[dict]] = defaultdict(list)
    semis: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        winner, loser, tid = row["winner_id"], row["loser_id"], row["tourney_id"]
        entrants[tid].update((winner, loser))
        score = row["score"].strip().lower()
        walkover = "w/o" in score or score == "walkover"
        c[winner]["matches_played"] += 1
        c[loser]["matches_played"] += 1
        if not walkover:
            c[winner]["matches_won"] += 1
            c[loser]["matches_lost"] += 1
        if row["round"] == "F":
            finals[tid].append(row)
        elif row["round"] == "SF":
            semis[tid].append(row)
    for tid, players in entrants.items():
        with_result = len(finals[tid]) == 1
        for player in players:
            c[player]["tournaments_registered"] += 1  # every entrant is a confirmed registration...
            c[player]["tournaments_played"] += 1  # ...and checked in
            if with_result:
                c[player]["tournaments_completed"] += 1
        if with_result:
            c[finals[tid][0]["winner_id"]]["tournaments_won"] += 1
            c[finals[tid][0]["loser_id"]]["tournaments_runner_up"] += 1
            if len(semis[tid]) == 2:
                for semi in semis[tid]:
                    c[semi["loser_id"]]["tournaments_top4"] += 1
    by_event: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_event[row["tourney_id"]].append(row)
    for event_rows in by_event.values():
        for player, place in csv_placements(event_rows).items():
            if place <= 10:  # average_placement's counters: the placements it averages
                c[player]["placements_counted"] += 1
                c[player]["placements_sum"] += place
    return {f"atp{player}": {k: v for k, v in counts.items() if v} for player, counts in c.items()}


@pytest.mark.integration
@pytest.mark.slow
def test_backfill_after_importing_a_decade_gives_every_player_the_counters_computed_from_the_csv(live_worker):
    assert (ATP_DIR / "atp_tour_matches.csv.gz").is_file(), f"the ATP data is expected at {ATP_DIR} (set ATP_DIR)"
    started = time.monotonic()
    call_command("import_atp", str(ATP_DIR), from_year=DECADE[0], to_year=DECADE[1], stdout=io.StringIO())
    imported = time.monotonic()
    assert not UserActivity.objects.exists(), "the import writes history only; recording it is the backfill's job"

    run = backfill.start_backfill(None, batch_size=2000)  # enqueued after commit, runs on the real worker
    run = wait_until(lambda: _ended(run.pk), timeout=240, interval=0.5, message="the backfill run to end")
    finished = time.monotonic()
    print(
        f"\nimport {imported - started:.1f}s, backfill {finished - imported:.1f}s: {run.events_created} events, "
        f"{run.rate:,.0f} events/s over {run.chunks_done} chunks"
    )

    assert run.status == BackfillRun.Status.SUCCEEDED, run.last_error
    assert run.events_created == UserActivity.objects.count()
    expected = counters_from_the_csv(*DECADE)
    user_ids = dict(get_user_model().objects.filter(username__startswith="atp").values_list("username", "id"))
    assert set(user_ids) == set(expected)
    stats = projected_counters()
    got = {username: stats.get(user_id, {}) for username, user_id in user_ids.items()}
    mismatched = {u: (got[u], expected[u]) for u in expected if got[u] != expected[u]}
    assert not mismatched, f"{len(mismatched)} players differ, e.g. {list(mismatched.items())[:3]}"


def _ended(run_id: int) -> BackfillRun | None:
    run = BackfillRun.objects.get(pk=run_id)
    return None if run.is_active else run


# --- idempotency and dry run -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_backfill_records_exactly_the_events_history_implies(history_mode):
    history = make_history(players=8, matches=30, coin_users=3, coins_each=4)
    run = drain(backfill.start_backfill(None, batch_size=7))
    assert run.status == BackfillRun.Status.SUCCEEDED
    assert ledger_keys() == Counter(history.expected.keys)
    assert run.events_created == len(history.expected.keys)
    assert projected_counters() == history.expected.user_counters()
    assert_projection_matches_ledger(history.expected.counters)


@pytest.mark.django_db
def test_a_second_backfill_creates_no_event(history_mode):
    history = make_history(players=6, matches=20)
    first = drain(backfill.start_backfill(None, batch_size=5))
    before = (ledger_keys(), projected_counters())

    second = drain(backfill.start_backfill(None, batch_size=5))

    assert first.events_created == len(history.expected.keys)
    assert second.status == BackfillRun.Status.SUCCEEDED
    assert second.events_created == 0
    assert (ledger_keys(), projected_counters()) == before


@pytest.mark.django_db
def test_a_dry_run_writes_nothing_and_reports_what_the_real_run_then_creates(history_mode):
    history = make_history(players=6, matches=20, coin_users=2, coins_each=3)
    stats_before = projected_counters()

    dry = drain(backfill.start_backfill(None, dry_run=True, batch_size=4))

    assert dry.status == BackfillRun.Status.SUCCEEDED
    assert not UserActivity.objects.exists()
    assert projected_counters() == stats_before
    assert dry.events_created == len(history.expected.keys)
    per_source = {label: p["events"] for label, p in dry.progress.items() if p["events"]}
    assert per_source == Counter(k[0] for k in history.expected.keys)

    assert backfill.progress_of(dry).by_type == dict(sorted(Counter(k[3] for k in history.expected.keys).items()))

    real = drain(backfill.start_backfill(None, batch_size=4))
    assert real.events_created == dry.events_created
    assert backfill.progress_of(real).by_type == backfill.progress_of(dry).by_type
    assert {label: p["events"] for label, p in real.progress.items() if p["events"]} == per_source


@pytest.mark.django_db
def test_a_dry_run_after_a_partial_history_counts_only_what_is_missing(history_mode):
    history = make_history(players=6, matches=12)
    drain(backfill.start_backfill([REGISTRATION], batch_size=50))

    dry = drain(backfill.start_backfill(None, dry_run=True))

    assert dry.events_created == len(history.expected.keys) - len(history.expected.by_source(REGISTRATION))


# --- input validation ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sources, batch_size, message",
    [
        (["tournaments.nonsense"], 100, "Unknown source(s): tournaments.nonsense"),
        ([MATCH], 0, "between 1 and"),
        ([MATCH], 10**9, "between 1 and"),
        ([MATCH], "ten", "whole number"),
    ],
)
def test_bad_sources_or_batch_size_are_refused_before_anything_is_written(sources, batch_size, message):
    with pytest.raises(backfill.BackfillError, match=message.replace("(", r"\(").replace(")", r"\)")):
        backfill.start_backfill(sources, batch_size=batch_size)
    assert not BackfillRun.objects.exists()


@pytest.mark.django_db
def test_no_source_means_every_source_in_canonical_order():
    run = backfill.start_backfill([], batch_size=10)
    assert run.sources == list(backfill.SOURCES)
    assert backfill.start_backfill([MATCH, REGISTRATION, MATCH]).sources == [REGISTRATION, MATCH]


# --- chunks: one at a time, bounded, exactly once --------------------------------------------------------------


@pytest.mark.django_db
def test_each_chunk_advances_the_cursor_and_only_the_current_chunk_number_runs(history_mode):
    history = make_history(players=4, matches=10)
    run = backfill.start_backfill([MATCH], batch_size=4)

    assert backfill.run_backfill_chunk(run.pk, seq=0) is backfill.ChunkOutcome.CONTINUED
    run.refresh_from_db()
    first_ids = sorted(m.pk for m in history.matches)[:4]
    lane = lane_of(run)
    assert (run.chunks_done, lane.cursor, run.progress[MATCH]["done"]) == (1, first_ids[-1], 4)
    assert (lane.status, lane.chunks_done, lane.rows_done, lane.events_created) == (
        BackfillLane.Status.RUNNING,
        1,
        4,
        run.events_created,
    )
    assert run.status == BackfillRun.Status.RUNNING and run.heartbeat_at is not None
    recorded = ledger_keys([MATCH])

    # A redelivered or resumed duplicate of chunk 0 finds the lane at chunk 1: it does nothing.
    assert backfill.run_backfill_chunk(run.pk, seq=0) is backfill.ChunkOutcome.SKIPPED
    run.refresh_from_db()
    assert run.chunks_done == 1 and ledger_keys([MATCH]) == recorded
    again = lane_of(run)
    assert (again.chunks_done, again.cursor, again.rows_done, again.events_created, again.updated_at) == (
        1,
        lane.cursor,
        4,
        lane.events_created,
        lane.updated_at,
    )

    assert backfill.run_backfill_chunk(run.pk, seq=1) is backfill.ChunkOutcome.CONTINUED
    assert backfill.run_backfill_chunk(run.pk, seq=2) is backfill.ChunkOutcome.FINISHED
    run.refresh_from_db()
    assert run.status == BackfillRun.Status.SUCCEEDED and run.rows_done == 10
    assert ledger_keys([MATCH]) == Counter(history.expected.by_source(MATCH))
    assert lane_of(run).status == BackfillLane.Status.DONE and lane_of(run).finished_at is not None
    # A task for a chunk of a finished lane (redelivered late) does nothing either.
    assert backfill.run_backfill_chunk(run.pk, seq=2) is backfill.ChunkOutcome.FINISHED
    assert lane_of(run).chunks_done == 3 and ledger_keys([MATCH]) == Counter(history.expected.by_source(MATCH))


@pytest.mark.django_db
def test_a_chunk_takes_fewer_rows_when_its_rows_imply_many_events(history_mode, settings):
    settings.BACKFILL_MAX_EVENTS_PER_CHUNK = 20
    make_history(players=4, matches=30)
    run = backfill.start_backfill([MATCH], batch_size=25)

    backfill.run_backfill_chunk(run.pk, seq=0)  # a probe of at most PROBE_ROWS rows: 4 events per match row
    run.refresh_from_db()
    assert run.rows_done == min(25, backfill.PROBE_ROWS) and run.progress[MATCH]["rows_per_chunk"] == 5
    backfill.run_backfill_chunk(run.pk, seq=1)
    run.refresh_from_db()
    assert run.rows_done == min(25, backfill.PROBE_ROWS) + 5


@pytest.mark.django_db
def test_lanes_walk_disjoint_key_ranges_and_together_record_the_history_once(history_mode):
    history = make_history(players=8, matches=40, coin_users=4, coins_each=5)
    run = backfill.start_backfill(None, batch_size=3, lanes=3)
    bounds = run.progress[MATCH]["bounds"]
    assert len(bounds) == 4 and bounds == sorted(bounds) and bounds[-1] == run.progress[MATCH]["upto"]

    run = drain(run)

    assert run.status == BackfillRun.Status.SUCCEEDED and run.rows_done == run.rows_total
    lanes = list(run.lane_rows.all())
    assert [lane.lane for lane in lanes] == [0, 1, 2]
    assert all(lane.status == BackfillLane.Status.DONE and lane.chunks_done > 1 for lane in lanes)
    assert sum(lane.rows_done for lane in lanes) == run.rows_done
    assert sum(lane.events_created for lane in lanes) == run.events_created
    assert sum(lane.chunks_done for lane in lanes) == run.chunks_done
    assert ledger_keys() == Counter(history.expected.keys)
    assert projected_counters() == history.expected.user_counters()


@pytest.mark.django_db(transaction=True)
def test_two_lanes_executing_at_the_same_time_record_every_event_once(history_mode):
    history = make_history(players=10, matches=80, coin_users=6, coins_each=6)
    run = backfill.start_backfill(None, batch_size=4, lanes=2, enqueue=False)
    errors = []
    barrier = threading.Barrier(2)

    def lane_worker(lane: int) -> None:
        try:
            barrier.wait(10)
            while backfill.run_backfill_chunk(run.pk, lane) is not backfill.ChunkOutcome.FINISHED:
                pass
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=lane_worker, args=(lane,)) for lane in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    run.refresh_from_db()
    assert run.status == BackfillRun.Status.SUCCEEDED, run.last_error
    assert ledger_keys() == Counter(history.expected.keys)
    assert run.events_created == len(history.expected.keys)
    assert projected_counters() == history.expected.user_counters()
    assert_projection_matches_ledger(history.expected.counters)


@pytest.mark.django_db(transaction=True)
def test_two_executors_of_the_same_lane_cannot_both_advance_it(history_mode, monkeypatch):
    """A redelivered chunk task running while the original is still mid-chunk (both saw chunk number 0): the lane's
    row lock, held for the whole chunk, lets one through and turns the other away at once."""
    history = make_history(players=4, matches=10)
    run = backfill.start_backfill([MATCH], batch_size=4, enqueue=False)
    inside, second_over = threading.Event(), threading.Event()
    real = chunks.isolate_and_record

    def held_open(label, ids, **kwargs):
        result = real(label, ids, **kwargs)
        if not inside.is_set():  # the first executor keeps its chunk open until the second one is over
            inside.set()
            second_over.wait(5)
        return result

    monkeypatch.setattr(chunks, "isolate_and_record", held_open)
    outcomes = {}

    def executor(name: str) -> None:
        try:
            outcomes[name] = backfill.run_backfill_chunk(run.pk, 0, seq=0, enqueue_next=False)
        finally:
            if name == "second":
                second_over.set()
            connection.close()

    first = threading.Thread(target=executor, args=("first",))
    first.start()
    assert inside.wait(30)
    second = threading.Thread(target=executor, args=("second",))
    second.start()
    second.join(30)
    first.join(30)

    assert outcomes == {"first": backfill.ChunkOutcome.CONTINUED, "second": backfill.ChunkOutcome.SKIPPED}
    run.refresh_from_db()
    lane = lane_of(run)
    first_ids = sorted(m.pk for m in history.matches)[:4]
    assert (run.chunks_done, lane.chunks_done, lane.cursor, lane.rows_done) == (1, 1, first_ids[-1], 4)
    assert {k[1] for k in ledger_keys([MATCH])} == set(first_ids)


@pytest.mark.django_db
@pytest.mark.parametrize("lanes", [0, backfill.MAX_LANES + 1, "two"])
def test_an_impossible_number_of_lanes_is_refused(lanes):
    with pytest.raises(backfill.BackfillError, match="Lanes must be"):
        backfill.start_backfill([MATCH], lanes=lanes)
    assert not BackfillRun.objects.exists()


@pytest.mark.django_db
def test_queries_per_chunk_do_not_grow_with_the_chunk_size(history_mode, django_assert_max_num_queries):
    make_history(players=20, matches=260)
    counts = []
    for size in (20, 200):
        run = backfill.start_backfill([MATCH], batch_size=size)
        backfill.run_backfill_chunk(run.pk, seq=0)  # the probe chunk
        probed = BackfillRun.objects.get(pk=run.pk).rows_done
        # 26: the projection's per-game / per-season rows add two statements per append (stats.scoped_apply), the
        # rating projection's live fold two (stats.ratings.live: the game's state row, the fold's writes), the
        # chunk's asynchronous commit one (SET LOCAL), the plain INSERT's savepoint two (activity.append.insert); a
        # chunk of more than overlapped.MIN_PART_ROWS rows goes in parts, at most overlapped.PARTS (that test is in
        # test_backfill_overlap).
        with django_assert_max_num_queries(26), CaptureQueriesContext(connection) as queries:
            assert backfill.run_backfill_chunk(run.pk, seq=1) is backfill.ChunkOutcome.CONTINUED
        run.refresh_from_db()
        assert run.rows_done - probed == size
        counts.append(len(queries))
    # A bigger chunk may cost one statement fewer, never more: past LIVE_BATCH_MAX matches the rating projection
    # only marks the game for replay instead of folding in the chunk (stats.ratings.live).
    assert counts[1] <= counts[0], counts


@pytest.mark.django_db
def test_rows_added_after_the_start_are_left_to_live_recording(history_mode):
    make_history(players=4, matches=6)
    run = backfill.start_backfill([MATCH], batch_size=100)
    in_scope = run.progress[MATCH]["upto"]
    late = make_history(players=4, matches=1, seed=3).matches[0]

    run = drain(run)

    assert late.pk > in_scope
    assert run.rows_done == 6 and not UserActivity.objects.filter(source_model=MATCH, source_id=late.pk).exists()


@pytest.mark.django_db
def test_a_chunk_that_fails_ends_the_run_failed_and_keeps_nothing_of_that_chunk(history_mode, monkeypatch):
    make_history(players=4, matches=9)
    real = chunks.isolate_and_record
    calls = []

    def second_chunk_breaks(label, ids, **kwargs):
        calls.append(ids)
        result = real(label, ids, **kwargs)  # writes, then the chunk fails: all of it must roll back
        if len(calls) == 2:
            raise InvalidEventError("metadata too large (simulated)")
        return result

    monkeypatch.setattr(chunks, "isolate_and_record", second_chunk_breaks)
    run = drain(backfill.start_backfill([MATCH], batch_size=4))

    assert run.status == BackfillRun.Status.FAILED and "metadata too large" in run.last_error
    lane = lane_of(run)
    assert run.finished_at is not None and run.chunks_done == 1 and lane.cursor == calls[0][-1]
    assert lane.status == BackfillLane.Status.FAILED and "metadata too large" in lane.last_error
    assert (lane.chunks_done, lane.rows_done) == (1, 4)
    assert {k[1] for k in ledger_keys([MATCH])} == set(calls[0])


# --- cancel ------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_cancelling_a_run_with_no_chunk_executing_ends_it_at_once(history_mode):
    make_history(players=4, matches=6)
    run = backfill.start_backfill([MATCH], batch_size=2)
    backfill.run_backfill_chunk(run.pk, seq=0)

    run = backfill.cancel_backfill(run.pk)

    assert run.status == BackfillRun.Status.CANCELLED and run.finished_at is not None
    assert lane_of(run).status == BackfillLane.Status.STOPPED
    assert backfill.run_backfill_chunk(run.pk, seq=1) is backfill.ChunkOutcome.FINISHED
    run.refresh_from_db()
    assert run.chunks_done == 1 and run.rows_done == 2
    assert UserActivity.objects.filter(source_model=MATCH).values("source_id").distinct().count() == 2


@pytest.mark.django_db(transaction=True)
def test_cancelling_while_a_chunk_executes_stops_the_run_when_that_chunk_commits(history_mode):
    make_history(players=4, matches=6)
    run = backfill.start_backfill([MATCH], batch_size=2, enqueue=False)
    executing = connections.create_connection("default")  # stands for a worker in the middle of a chunk
    try:
        with executing.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT id FROM activity_backfilllane WHERE run_id = %s AND lane = 0 FOR UPDATE", [run.pk])
            assert cursor.fetchone()
        run = backfill.cancel_backfill(run.pk)
        assert run.cancel_requested and run.status == BackfillRun.Status.QUEUED
        with executing.cursor() as cursor:
            cursor.execute("ROLLBACK")
    finally:
        executing.close()

    # The chunk task that comes next sees the request and ends the run instead of starting another chunk.
    assert backfill.run_backfill_chunk(run.pk, seq=0) is backfill.ChunkOutcome.FINISHED
    run.refresh_from_db()
    assert run.status == BackfillRun.Status.CANCELLED and run.finished_at is not None
    assert run.chunks_done == 0 and not UserActivity.objects.exists()
    assert lane_of(run).status == BackfillLane.Status.STOPPED


@pytest.mark.django_db(transaction=True)
def test_a_cancel_arriving_during_a_chunk_lets_that_chunk_commit_and_enqueues_no_other(history_mode, monkeypatch):
    make_history(players=4, matches=6)
    run = backfill.start_backfill([MATCH], batch_size=2, enqueue=False)
    published = []
    monkeypatch.setattr(scheduling, "schedule_chunk", lambda run_id, lane, seq: published.append(seq))
    real = chunks.isolate_and_record

    statuses = []

    def cancel_from_another_connection() -> None:
        try:
            statuses.append(backfill.cancel_backfill(run.pk).status)
        finally:
            connection.close()

    def cancelled_meanwhile(label, ids, **kwargs):
        result = real(label, ids, **kwargs)
        admin_request = threading.Thread(target=cancel_from_another_connection)
        admin_request.start()
        admin_request.join(30)
        return result

    monkeypatch.setattr(chunks, "isolate_and_record", cancelled_meanwhile)
    assert backfill.run_backfill_chunk(run.pk, seq=0) is backfill.ChunkOutcome.FINISHED

    run.refresh_from_db()
    assert statuses == [BackfillRun.Status.QUEUED]  # a chunk was executing: the cancel was only requested
    assert run.status == BackfillRun.Status.CANCELLED and run.chunks_done == 1 and run.rows_done == 2
    assert UserActivity.objects.filter(source_model=MATCH).values("source_id").distinct().count() == 2
    assert published == []
    assert lane_of(run).status == BackfillLane.Status.STOPPED


# --- stalled runs ------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_stalled_run_is_re_enqueued_from_its_cursor_and_a_busy_one_is_left_alone(history_mode, monkeypatch, settings):
    make_history(players=4, matches=6)
    published = []
    monkeypatch.setattr(scheduling, "publish", lambda name, args: published.append((name, args)))
    settings.BACKFILL_STALE_SECONDS = 60
    stalled = backfill.start_backfill([MATCH], batch_size=2)
    backfill.run_backfill_chunk(stalled.pk, seq=0)
    busy = backfill.start_backfill([MATCH], batch_size=2)
    fresh = backfill.start_backfill([MATCH], batch_size=2)
    long_ago = timezone.now() - timedelta(minutes=5)
    BackfillRun.objects.filter(pk__in=[stalled.pk, busy.pk]).update(heartbeat_at=long_ago, created_at=long_ago)
    # The stalled run's last chunk committed five minutes ago; the busy one started then and has none yet.
    BackfillLane.objects.filter(run__in=[stalled, busy]).update(updated_at=long_ago)
    published.clear()

    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT id FROM activity_backfilllane WHERE run_id = %s FOR UPDATE", [busy.pk])
        resumed = backfill.resume_stale_backfills()
    finally:
        holder.close()

    assert resumed == [stalled.pk]
    assert published == [(TaskName.RUN_BACKFILL_CHUNK, (stalled.pk, 0, 1))]
    stalled.refresh_from_db()
    assert stalled.resumes == 1 and lane_of(stalled).updated_at > long_ago
    # Once its chunk is over, the formerly busy run (still no committed chunk) is stale; the resumed one is not
    # resumed again before another stale period.
    assert backfill.resume_stale_backfills() == [busy.pk]
    assert backfill.resume_stale_backfills() == []
    assert fresh.pk not in resumed


# --- publishing through dispatch ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_lanes_first_chunk_is_published_through_dispatch_after_commit(
    history_mode, monkeypatch, django_capture_on_commit_callbacks
):
    make_history(players=4, matches=6)
    sent = []
    monkeypatch.setattr(
        "dispatch.publish.current_app.send_task",
        lambda name, args, kwargs, queue, retry: sent.append((name, args, queue)),
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run = backfill.start_backfill([MATCH], batch_size=2, lanes=2)
        assert sent == []  # nothing before the commit: a worker must find the run's rows
    assert len(callbacks) == 2
    assert sent == [(TaskName.RUN_BACKFILL_CHUNK.value, (run.pk, lane, 0), "maintenance") for lane in (0, 1)]


@pytest.mark.django_db
def test_a_chunk_whose_publish_fails_is_noted_on_the_run_and_re_enqueued_by_the_resume(
    history_mode, monkeypatch, settings, django_capture_on_commit_callbacks
):
    make_history(players=4, matches=6)
    settings.BACKFILL_STALE_SECONDS = 60

    def broker_down(name, args):
        raise PublishFailed("broker down (simulated)")

    monkeypatch.setattr(scheduling, "publish", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        run = backfill.start_backfill([MATCH], batch_size=2)
    run.refresh_from_db()
    assert "enqueue of lane 0 chunk 0 failed" in run.last_error and "resume_stale_backfills" in run.last_error
    assert "broker down" in lane_of(run).last_error and run.status == BackfillRun.Status.QUEUED

    published = []
    monkeypatch.setattr(scheduling, "publish", lambda name, args: published.append((name, args)))
    BackfillLane.objects.filter(run=run).update(updated_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert backfill.resume_stale_backfills() == [run.pk]
    assert published == [(TaskName.RUN_BACKFILL_CHUNK, (run.pk, 0, 0))]


def test_the_backfill_code_knows_no_celery_and_no_other_database():
    package = Path(backfill.__file__).parent
    command = package.parent / "management" / "commands" / "backfill_user_activity.py"
    for path in [*package.glob("*.py"), command]:
        text = path.read_text()
        assert "celery" not in text.lower().replace("celery workers", ""), path
        assert "connection.vendor" not in text and "runs_in_process" not in text, path
        assert "in-process" not in text and "in process" not in text, path


# --- the command ---------------------------------------------------------------------------------------------------


def a_progress(rows_done: int, events: int, status: str = "running", total: int = 40) -> backfill.Progress:
    return backfill.Progress(
        run_id=7,
        status=status,
        dry_run=False,
        percent=100.0 * rows_done / total,
        rows_done=rows_done,
        rows_total=total,
        events=events,
        events_per_second=120.0,
        elapsed_seconds=2.0,
        eta_seconds=None if status != "running" else 3.0,
        sources=(),
        lanes=(),
        last_error="",
    )


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_the_progress_is_one_plain_line_per_step():
    from activity.management.commands.backfill_user_activity import ProgressDisplay

    out = io.StringIO()
    display = ProgressDisplay(out)
    for p in (a_progress(0, 0, "queued"), a_progress(10, 30), a_progress(10, 30), a_progress(40, 120, "succeeded")):
        display.step(p)  # the repeated state (a poll with no committed chunk in between) is no step
    display.close()

    lines = out.getvalue().split("\n")
    assert lines[-1] == "" and "\r" not in out.getvalue()
    assert [line.split()[2] for line in lines[:-1]] == ["0.0%", "25.0%", "100.0%"]
    assert "rows 10/40  events 30  120 ev/s  ETA 0m03s  [running]" in lines[1]
    assert lines[2].endswith("[succeeded]")


def test_on_a_terminal_the_progress_is_one_bar_redrawn_in_place():
    from activity.management.commands.backfill_user_activity import ProgressDisplay

    out = Terminal()
    display = ProgressDisplay(out)
    for p in (a_progress(10, 30), a_progress(20, 60), a_progress(40, 120, "succeeded")):
        display.step(p)
    before_close = out.getvalue()
    display.close()

    assert before_close.count("\r") >= 3 and "\n" not in before_close  # redrawn, never a new line per step
    assert "10/40" in before_close and "20/40" in before_close and "40/40" in before_close
    assert out.getvalue().endswith("\n") and "succeeded" in out.getvalue()


@pytest.mark.integration
def test_the_command_starts_the_run_for_the_workers_and_follows_it_one_line_per_step(history_mode, live_worker):
    history = make_history(players=6, matches=25, coin_users=2, coins_each=3)
    events_before = metrics.BACKFILL_EVENTS._value.get()
    out = io.StringIO()  # not a terminal, as in a log or a CI job

    call_command("backfill_user_activity", "--wait", "--batch-size", "4", "--interval", "0.05", stdout=out)

    text = out.getvalue()
    run = BackfillRun.objects.get()
    assert run.status == BackfillRun.Status.SUCCEEDED and run.chunks_done > 5
    assert "\r" not in text and "queue maintenance" in text
    steps = [line for line in text.splitlines() if line.startswith(f"backfill #{run.pk} ") and "ETA" in line]
    rows = [int(line.split("rows ")[1].split("/")[0]) for line in steps]
    assert steps and len(steps) == len(set(steps)) and rows == sorted(rows)  # a line per change, never backwards
    assert steps[-1].split()[2] == "100.0%" and steps[-1].endswith("[succeeded]")
    assert f"{len(history.expected.keys)} events created" in text
    assert "by event type" not in text and "lane 0:" not in text  # the detail is for -v 2
    assert ledger_keys() == Counter(history.expected.keys)
    assert projected_counters() == history.expected.user_counters()
    assert metrics.BACKFILL_EVENTS._value.get() - events_before == len(history.expected.keys)
    assert metrics.BACKFILL_PROGRESS._value.get() == 1.0


@pytest.mark.integration
def test_the_command_dry_run_reports_in_detail_with_v2_and_writes_nothing(history_mode, live_worker):
    history = make_history(players=5, matches=12)
    out = io.StringIO()
    call_command(
        "backfill_user_activity",
        "--dry-run",
        "--source",
        MATCH,
        "--wait",
        "--interval",
        "0.05",
        verbosity=2,
        stdout=out,
    )
    text = out.getvalue()
    assert text.startswith("database: postgresql") and "Celery workers" in text
    assert f"{len(history.expected.by_source(MATCH))} events would be created" in text
    assert "by event type: match_lost" in text and "lane 0: done" in text
    assert not UserActivity.objects.exists()


@pytest.mark.django_db
def test_without_wait_the_command_only_starts_the_run(history_mode):
    make_history(players=4, matches=4)
    out = io.StringIO()
    call_command("backfill_user_activity", "--source", MATCH, stdout=out)
    run = BackfillRun.objects.get()
    assert run.status == BackfillRun.Status.QUEUED and run.lane_rows.count() == 1
    started = f"backfill #{run.pk} started: {MATCH}; 4 source rows; batch size {run.batch_size}; 1 lane(s)"
    assert out.getvalue().splitlines() == [
        f"{started}; chunks on queue maintenance",
        "follow it in the admin, or with --wait",
    ]


@pytest.mark.django_db
def test_the_command_refuses_a_bad_batch_size_clearly():
    with pytest.raises(CommandError, match="between 1 and"):
        call_command("backfill_user_activity", "--batch-size", "0")
    assert not BackfillRun.objects.exists()


# --- reading progress ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_progress_reports_percent_rate_and_eta(history_mode):
    make_history(players=4, matches=20)
    run = backfill.start_backfill([MATCH], batch_size=5)
    backfill.run_backfill_chunk(run.pk, seq=0)
    run.refresh_from_db()
    BackfillRun.objects.filter(pk=run.pk).update(started_at=run.heartbeat_at - timedelta(seconds=10))
    run.refresh_from_db()

    p = backfill.progress_of(run)

    assert (p.percent, p.rows_done, p.rows_total) == (25.0, 5, 20)
    assert p.events == run.events_created == UserActivity.objects.count()
    assert p.eta_seconds == pytest.approx(30.0, rel=0.01)  # 5 rows in 10 s, 15 to go
    assert p.as_dict()["sources"][0]["label"] == MATCH
    assert p.as_dict()["lanes"] == [
        {
            "lane": 0,
            "status": "running",
            "source": MATCH,
            "cursor": lane_of(run).cursor,
            "chunks": 1,
            "rows": 5,
            "events": run.events_created,
            "last_error": "",
            "finished": False,
        }
    ]
