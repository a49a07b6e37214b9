"""Backfill: record the events of all existing source rows, chunk after chunk, through the one recording path.

A run walks each chosen source table by primary-key range (activity.chunks.iter_id_chunks) up to the highest key
present when it started (later rows are recorded live). Each chunk is one task and one transaction: the events go
through record_events_for (derive, INSERT .. ON CONFLICT DO NOTHING, stats projection) and the run's progress and
resume cursor are written in that same transaction, so a worker killed mid-chunk leaves the run exactly at its last
committed chunk. The next chunk is enqueued only after the commit, so live work on other queues interleaves.

Chunks are bounded twice: by the operator's batch size (source rows) and by an events budget
(BACKFILL_MAX_EVENTS_PER_CHUNK): a source whose rows imply many events (a tournament result: one event per entrant)
gets proportionally fewer rows per chunk, learnt from the chunk before. Worker memory and the time a chunk holds its
stats-row locks stay flat whatever the table.

A run has one or more lanes: chains of chunks over disjoint key ranges of every source, executing in parallel on as
many worker processes (the default, one lane, keeps one process for live recording on a two-process worker).

Exactly-once execution of a chunk does not rely on the broker: every chunk task carries its lane's chunk sequence
number, and the executor holds the lane's advisory lock; a duplicate task (broker redelivery after the visibility
timeout, a resume racing a slow worker) finds the number moved on and does nothing. Re-recording a row would add
nothing anyway (the ledger's unique key); the guard avoids the wasted work and a forked chain.
"""
from __future__ import annotations

import enum
import logging
import threading
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from celery import current_app
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from activity.catchup import advance_watermarks
from activity.chunks import IdChunk, iter_id_chunks
from activity.models import BackfillRun
from activity.poison import isolate_and_record
from activity.sources import SOURCES, SourceKind, source_kind
from monitoring import metrics

logger = logging.getLogger(__name__)

CHUNK_TASK = "tasks.maintenance.run_backfill_chunk"
QUEUE = "maintenance"
# pg advisory lock key space (two-int form) for "a chunk of lane L of run N is executing"; recording uses 1 and 2.
RUN_LOCK_SPACE = 4101
# Above this many rows (planner estimate) a source's total is the estimate: an exact COUNT(*) of a huge table in the
# request that starts the run is not worth it (the total only feeds the percent and the ETA).
EXACT_COUNT_LIMIT = 5_000_000
MIN_BATCH_SIZE = 1
MAX_LANES = 8
# The first chunk of a source, before its events per row are known, takes at most this many rows.
PROBE_ROWS = 50

Status = BackfillRun.Status


class BackfillError(ValueError):
    """Bad input to the backfill service; the message says what and what is allowed."""


class ChunkOutcome(enum.Enum):
    CONTINUED = "continued"  # a chunk was committed and its lane has more to do
    FINISHED = "finished"  # the lane or the run is over (succeeded, cancelled, failed, or already was)
    SKIPPED = "skipped"  # nothing done: a duplicate task, another executor busy with this lane, or no such run


# --- starting ---------------------------------------------------------------------------------------------------

def validate_sources(sources: Iterable[str] | None) -> list[str]:
    """The labels to backfill, in the canonical SOURCES order; all of them when none are given."""
    wanted = [s.strip() for s in (sources or []) if s and s.strip()]
    if not wanted:
        return list(SOURCES)
    unknown = sorted(set(wanted) - set(SOURCES))
    if unknown:
        raise BackfillError(f"Unknown source(s): {', '.join(unknown)}. Known sources: {', '.join(SOURCES)}.")
    return [label for label in SOURCES if label in set(wanted)]


def validate_batch_size(batch_size: int | str | None) -> int:
    if batch_size is None or batch_size == "":
        return settings.BACKFILL_DEFAULT_BATCH_SIZE
    value = _whole_number("Batch size", batch_size)
    if not MIN_BATCH_SIZE <= value <= settings.BACKFILL_MAX_BATCH_SIZE:
        raise BackfillError(f"Batch size must be between {MIN_BATCH_SIZE} and {settings.BACKFILL_MAX_BATCH_SIZE}, got {value}.")
    return value


def validate_lanes(lanes: int | str | None) -> int:
    if lanes is None or lanes == "":
        return 1
    value = _whole_number("Lanes", lanes)
    if not 1 <= value <= MAX_LANES:
        raise BackfillError(f"Lanes must be between 1 and {MAX_LANES}, got {value}.")
    return value


def _whole_number(what: str, value: int | str) -> int:
    if isinstance(value, bool):
        raise BackfillError(f"{what} must be a whole number, got {value!r}.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BackfillError(f"{what} must be a whole number, got {value!r}.") from None


def start_backfill(sources: Iterable[str] | None = None, dry_run: bool = False, batch_size: int | None = None,
                   user=None, *, lanes: int | None = 1, enqueue: bool = True) -> BackfillRun:
    """Create a run over `sources` (all when empty) and enqueue the first chunk of each lane after commit.

    Raises BackfillError on bad input, before anything is written. `enqueue=False` leaves the run queued for a
    caller that drives it itself (drive_inline).
    """
    labels = validate_sources(sources)
    size = validate_batch_size(batch_size)
    n_lanes = validate_lanes(lanes)
    created_by = user if user is not None and getattr(user, "is_authenticated", False) else None
    with transaction.atomic():
        progress = {}
        for label in labels:
            kind = source_kind(label)
            low, upto = _pk_range(kind)
            progress[label] = {"total": _row_count(kind, upto), "done": 0, "events": 0, "upto": upto,
                               "bounds": _split(low, upto, n_lanes), "rows_per_chunk": min(size, PROBE_ROWS)}
        first = labels[0]
        lanes_state = [{"source": first, "cursor": progress[first]["bounds"][lane], "seq": 0, "finished": False,
                        "heartbeat": None} for lane in range(n_lanes)]
        run = BackfillRun.objects.create(
            sources=labels, dry_run=bool(dry_run), batch_size=size, lanes=n_lanes, progress=progress,
            lanes_state=lanes_state, current_source=first, rows_total=sum(p["total"] for p in progress.values()),
            created_by=created_by,
        )
        if enqueue:
            for lane in range(n_lanes):
                transaction.on_commit(partial(_schedule_chunk, run.pk, lane, 0))
    logger.info("backfill #%s created: sources=%s dry_run=%s batch_size=%s lanes=%s rows=%s", run.pk, labels,
                run.dry_run, size, n_lanes, run.rows_total)
    return run


def _pk_range(kind: SourceKind) -> tuple[int, int]:
    pk = kind.model._meta.pk.attname
    found = kind.model.objects.aggregate(low=Min(pk), high=Max(pk))
    return found["low"] or 0, found["high"] or 0


def _split(low: int, high: int, lanes: int) -> list[int]:
    """Boundaries b0 < .. < bN: lane i walks keys in (b_i, b_i+1]. An even split of the key range (serial keys are
    dense enough that the lanes get similar shares)."""
    if not high:
        return [0] * (lanes + 1)
    start = low - 1
    width = high - start
    return [start + (width * i) // lanes for i in range(lanes)] + [high]


def _row_count(kind: SourceKind, upto: int) -> int:
    if not upto:
        return 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [kind.model._meta.db_table])
            row = cursor.fetchone()
        if row and row[0] > EXACT_COUNT_LIMIT:
            return int(row[0])
    pk = kind.model._meta.pk.attname
    return kind.model.objects.filter(**{f"{pk}__lte": upto}).count()


# --- one chunk --------------------------------------------------------------------------------------------------

def run_backfill_chunk(run_id: int, lane: int = 0, seq: int | None = None) -> ChunkOutcome:
    """Do one bounded chunk of a lane of the run and enqueue the lane's next chunk after commit.

    `seq` is the lane's chunk number the task was enqueued for; a task whose number the lane has moved past is a
    duplicate and does nothing. None means "whatever is next" (the in-process driver). Transient database errors
    propagate (the task retries them; the run stays running and is resumed if retries run out); any other error marks
    the run failed with the error, and nothing of the failed chunk is kept.
    """
    try:
        with transaction.atomic():
            if not _try_lock_lane(run_id, lane):
                logger.info("backfill #%s lane %s: another executor is mid-chunk; task for chunk %s dropped", run_id, lane, seq)
                return ChunkOutcome.SKIPPED
            run = BackfillRun.objects.filter(pk=run_id).first()
            if run is None or not 0 <= lane < len(run.lanes_state):
                logger.warning("backfill #%s lane %s does not exist; task dropped", run_id, lane)
                return ChunkOutcome.SKIPPED
            state = run.lanes_state[lane]
            if not run.is_active or state["finished"]:
                return ChunkOutcome.FINISHED
            if seq is not None and seq != state["seq"]:
                logger.info("backfill #%s lane %s: task for chunk %s is a duplicate (lane is at chunk %s); dropped",
                            run_id, lane, seq, state["seq"])
                return ChunkOutcome.SKIPPED
            if run.cancel_requested:  # asked while a chunk was executing
                BackfillRun.objects.filter(pk=run_id).update(status=Status.CANCELLED, finished_at=timezone.now())
                return ChunkOutcome.FINISHED
            return _advance(run, lane)
    except (OperationalError, InterfaceError) as exc:
        _note_error(run_id, f"transient database error, will retry: {type(exc).__name__}: {exc}")
        raise
    except Exception as exc:  # noqa: BLE001 - a broken chunk must end the run visibly, not loop forever
        logger.exception("backfill #%s lane %s failed", run_id, lane)
        _finish_failed(run_id, exc)
        return ChunkOutcome.FINISHED


def _advance(run: BackfillRun, lane: int) -> ChunkOutcome:
    began = timezone.now()
    label, cursor = run.lanes_state[lane]["source"], run.lanes_state[lane]["cursor"]
    # Find the lane's next chunk, stepping over exhausted sources (at most one step per source).
    while True:
        state = run.progress[label]
        size, high = state["rows_per_chunk"], state["bounds"][lane + 1]
        chunk = _next_chunk(source_kind(label), size, cursor, high)
        following = _next_source(run, label)
        if chunk is not None or following is None:
            break
        label, cursor = following, run.progress[following]["bounds"][lane]

    created = derived = poisoned = 0
    by_type: dict[str, int] = {}
    if chunk is not None:
        # A row that cannot be recorded becomes a poison row (retried on its own); the chunk and the cursor move on.
        outcome = isolate_and_record(label, chunk.ids, dry_run=run.dry_run, origin="backfill")
        result = outcome.result
        created = result.would_insert if run.dry_run else len(result.inserted)
        by_type = dict(result.would_insert_by_type if run.dry_run else result.by_type())
        derived = result.derived
        poisoned = len(outcome.poisoned)

    # The run row is locked only now, briefly, and re-read: other lanes commit their own progress to it, and
    # cancel_backfill can always get in between chunks.
    fresh = BackfillRun.objects.select_for_update().get(pk=run.pk)
    source, mine = fresh.progress[label], fresh.lanes_state[lane]
    if chunk is not None:
        source["done"] += len(chunk.ids)
        source["events"] += created
        if poisoned:
            source["poison"] = source.get("poison", 0) + poisoned
        counts = source.setdefault("by_type", {})
        for event_type, n in by_type.items():
            counts[event_type] = counts.get(event_type, 0) + n
        source["rows_per_chunk"] = _next_size(fresh.batch_size, len(chunk.ids), derived, source["rows_per_chunk"])
        exhausted = len(chunk.ids) < size or chunk.last_id >= high
        mine["cursor"] = chunk.last_id
    else:
        exhausted = True
    mine["source"] = label
    if exhausted:
        following = _next_source(fresh, label)
        if following is None:
            mine["finished"] = True
        else:
            mine["source"], mine["cursor"] = following, fresh.progress[following]["bounds"][lane]
    end = timezone.now()
    mine["seq"] += 1
    mine["heartbeat"] = end.isoformat()
    fresh.current_source = label
    fresh.chunks_done += 1
    fresh.rows_done = sum(p["done"] for p in fresh.progress.values())
    fresh.events_created += created
    fresh.heartbeat_at = end
    if fresh.status == Status.QUEUED:
        fresh.status, fresh.started_at = Status.RUNNING, began
    if fresh.is_active:  # a failure in another lane ends the run; this lane's committed chunk still counts
        if fresh.cancel_requested:
            fresh.status, fresh.finished_at = Status.CANCELLED, end
        elif all(state["finished"] for state in fresh.lanes_state):
            fresh.status, fresh.finished_at = Status.SUCCEEDED, end
            # Done rows can fall short of the counted total when rows were deleted meanwhile: 100 % is 100 %.
            fresh.rows_total = fresh.rows_done
            if not fresh.dry_run:
                # Every row of these sources as of the run's start is recorded: the catch-up sweep starts from
                # there, instead of rescanning (and counting as lost) what an import wrote before the run.
                advance_watermarks(fresh.sources, fresh.created_at)
    elapsed = (end - fresh.started_at).total_seconds() if fresh.started_at else 0.0
    fresh.rate = fresh.events_created / elapsed if elapsed > 0 else 0.0
    fresh.save(update_fields=["progress", "lanes_state", "current_source", "chunks_done", "rows_done", "rows_total",
                              "events_created", "status", "started_at", "finished_at", "heartbeat_at", "rate"])

    ratio = fresh.rows_done / fresh.rows_total if fresh.rows_total else 1.0
    transaction.on_commit(partial(_observe, ratio, 0 if fresh.dry_run else created))
    if not fresh.is_active:
        logger.info("backfill #%s %s: %s rows, %s events%s", fresh.pk, fresh.status, fresh.rows_done,
                    fresh.events_created, " (dry run: would be created)" if fresh.dry_run else "")
        return ChunkOutcome.FINISHED
    if mine["finished"]:
        return ChunkOutcome.FINISHED
    transaction.on_commit(partial(_schedule_chunk, fresh.pk, lane, mine["seq"]))
    return ChunkOutcome.CONTINUED


def _next_chunk(kind: SourceKind, size: int, cursor: int, high: int) -> IdChunk | None:
    if cursor >= high:
        return None
    chunk = next(iter_id_chunks(kind, size, after_id=cursor), None)
    if chunk is None:
        return None
    ids = [i for i in chunk.ids if i <= high]
    if not ids:
        return None
    return IdChunk(ids[0], ids[-1], ids)


def _next_size(batch_size: int, rows: int, events: int, current: int) -> int:
    """Rows for the next chunk of a source: as many as keep it within the events budget, at most the batch size."""
    if not rows:
        return current
    per_row = events / rows
    if per_row <= 0:
        return batch_size
    return max(1, min(batch_size, int(settings.BACKFILL_MAX_EVENTS_PER_CHUNK / per_row)))


def _next_source(run: BackfillRun, label: str) -> str | None:
    position = run.sources.index(label)
    return run.sources[position + 1] if position + 1 < len(run.sources) else None


def _observe(ratio: float, created: int) -> None:
    metrics.BACKFILL_PROGRESS.set(min(ratio, 1.0))
    if created:
        metrics.BACKFILL_EVENTS.inc(created)


def lane_lock_key(run_id: int, lane: int) -> int:
    """The two-key advisory lock form takes int4 keys: fold (run id, lane) into that range."""
    return (int(run_id) * MAX_LANES + int(lane)) % 2147483647


def _try_lock_lane(run_id: int, lane: int) -> bool:
    """Transaction-scoped: at most one executor works on a lane at a time. SQLite serialises writers anyway."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [RUN_LOCK_SPACE, lane_lock_key(run_id, lane)])
        return bool(cursor.fetchone()[0])


def _note_error(run_id: int, message: str) -> None:
    try:
        BackfillRun.objects.filter(pk=run_id).update(last_error=message[:4000])
    except Exception:  # noqa: BLE001 - the connection may be the thing that broke; the task retry is what matters
        logger.warning("backfill #%s: could not record the error %r", run_id, message)


def _finish_failed(run_id: int, exc: BaseException) -> None:
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    tail = "".join(traceback.format_tb(exc.__traceback__)[-3:])
    BackfillRun.objects.filter(pk=run_id, status__in=BackfillRun.ACTIVE_STATUSES).update(
        status=Status.FAILED, finished_at=timezone.now(), last_error=f"{detail}\n{tail}"[:4000])


# --- scheduling: Celery on a broker, a loop in process ---------------------------------------------------------

_inline = threading.local()


def runs_in_process() -> bool:
    """True on the embedded default (no broker): tasks, and so backfill chunks, execute in this process."""
    return bool(current_app.conf.task_always_eager)


def _schedule_chunk(run_id: int, lane: int, seq: int) -> None:
    """Called after commit. With a broker: publish the chunk task. In process (embedded default): run the chain in
    a loop here (an eager task calling apply_async would nest one stack frame per chunk)."""
    if runs_in_process():
        drive_inline(run_id)
        return
    try:
        current_app.send_task(CHUNK_TASK, args=(run_id, lane, seq), queue=QUEUE, retry=False)
    except Exception as exc:  # noqa: BLE001 - the run is committed; resume_stale_backfills re-enqueues it
        logger.warning("backfill #%s lane %s: enqueue of chunk %s failed (%s: %s); it will be resumed", run_id, lane, seq,
                       type(exc).__name__, exc)
        _note_error(run_id, f"enqueue of lane {lane} chunk {seq} failed ({type(exc).__name__}: {exc}); "
                            "resume_stale_backfills re-enqueues it")


def drive_inline(run_id: int, on_chunk: Callable[[BackfillRun], None] | None = None) -> BackfillRun:
    """Run the whole run in this process, chunk after chunk (lanes taking turns), without recursion.

    A chunk committed inside the loop schedules its successor through _schedule_chunk, which lands back here and
    returns at once: the loop already running in this thread takes the next chunk.
    """
    if getattr(_inline, "driving", False):
        return BackfillRun.objects.get(pk=run_id)
    _inline.driving = True
    try:
        while True:
            run = BackfillRun.objects.get(pk=run_id)
            pending = [lane for lane, state in enumerate(run.lanes_state) if not state["finished"]]
            if not run.is_active or not pending:
                break
            outcomes = [_chunk_inline(run_id, lane) for lane in pending]
            if on_chunk is not None:
                on_chunk(BackfillRun.objects.get(pk=run_id))
            if all(outcome is ChunkOutcome.SKIPPED for outcome in outcomes):
                break  # another executor holds every lane: it carries the run on
    finally:
        _inline.driving = False
    return BackfillRun.objects.get(pk=run_id)


def _chunk_inline(run_id: int, lane: int) -> ChunkOutcome:
    try:
        return run_backfill_chunk(run_id, lane)
    except (OperationalError, InterfaceError) as exc:
        # No worker will retry in process: end the run visibly (start another; it skips what is recorded).
        _finish_failed(run_id, exc)
        return ChunkOutcome.FINISHED


# --- cancel and resume ------------------------------------------------------------------------------------------

def cancel_backfill(run_id: int) -> BackfillRun:
    """Ask a run to stop. Takes effect at once when no chunk is executing, else when the executing chunks commit
    (those chunks are kept: every chunk is a complete, consistent unit). A finished run is left as it is."""
    with transaction.atomic():
        run = BackfillRun.objects.select_for_update().get(pk=run_id)
        if not run.is_active:
            return run
        run.cancel_requested = True
        fields = ["cancel_requested"]
        # Try-locks while holding the row lock cannot deadlock with a chunk (which takes the row lock last).
        if all(_try_lock_lane(run_id, lane) for lane in range(len(run.lanes_state))):
            run.status, run.finished_at = Status.CANCELLED, timezone.now()
            fields += ["status", "finished_at"]
        run.save(update_fields=fields)
    logger.info("backfill #%s: cancel requested (%s)", run_id, run.status)
    return run


def resume_stale_backfills(stale_after: timedelta | None = None) -> list[int]:
    """Re-enqueue, from their committed cursor, the lanes of active runs with no committed chunk for `stale_after`.

    This, not broker redelivery, bounds how long a killed worker stalls a run: Redis hands an unacked task back only
    after its visibility timeout (an hour by default). A lane whose chunk is still executing is left alone. Returns
    the ids of the runs resumed.
    """
    stale_after = stale_after if stale_after is not None else timedelta(seconds=settings.BACKFILL_STALE_SECONDS)
    cutoff = timezone.now() - stale_after
    resumed: list[int] = []
    for run_id in BackfillRun.objects.filter(status__in=BackfillRun.ACTIVE_STATUSES).order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            run = BackfillRun.objects.select_for_update().get(pk=run_id)
            lanes = [lane for lane, state in enumerate(run.lanes_state)
                     if run.is_active and not state["finished"] and _last_sign_of_life(run, state) < cutoff
                     and _try_lock_lane(run_id, lane)]  # a locked lane is executing: slow, not stale
            if not lanes:
                continue
            now = timezone.now()
            for lane in lanes:
                run.lanes_state[lane]["heartbeat"] = now.isoformat()  # the next resume waits another stale_after
                transaction.on_commit(partial(_schedule_chunk, run.pk, lane, run.lanes_state[lane]["seq"]))
            run.resumes += 1
            run.save(update_fields=["lanes_state", "resumes"])
        logger.warning("backfill #%s stalled since before %s; re-enqueued lane(s) %s from their cursors", run_id, cutoff, lanes)
        resumed.append(run_id)
    return resumed


def _last_sign_of_life(run: BackfillRun, state: dict) -> datetime:
    return datetime.fromisoformat(state["heartbeat"]) if state.get("heartbeat") else run.created_at


# --- reading progress ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SourceProgress:
    label: str
    total: int
    done: int
    events: int
    by_type: dict

    @property
    def percent(self) -> float:
        return 100.0 if not self.total else min(100.0, 100.0 * self.done / self.total)


@dataclass(frozen=True)
class LaneProgress:
    lane: int
    source: str
    cursor: int
    chunks: int
    finished: bool


@dataclass(frozen=True)
class Progress:
    run_id: int
    status: str
    dry_run: bool
    percent: float
    rows_done: int
    rows_total: int
    events: int
    events_per_second: float
    elapsed_seconds: float
    eta_seconds: float | None
    sources: tuple[SourceProgress, ...]
    lanes: tuple[LaneProgress, ...]
    last_error: str

    @property
    def by_type(self) -> dict[str, int]:
        """Events created (for a dry run: that would be) per event type, all sources together."""
        total: dict[str, int] = {}
        for source in self.sources:
            for event_type, n in source.by_type.items():
                total[event_type] = total.get(event_type, 0) + n
        return dict(sorted(total.items()))

    def as_dict(self) -> dict:
        data = {k: v for k, v in self.__dict__.items() if k not in ("sources", "lanes")}
        data["by_type"] = self.by_type
        data["sources"] = [{**s.__dict__, "percent": round(s.percent, 2)} for s in self.sources]
        data["lanes"] = [dict(lane.__dict__) for lane in self.lanes]
        data["percent"] = round(self.percent, 2)
        return data


def progress_of(run: BackfillRun) -> Progress:
    """Percent, rate and ETA of a run, computed from its committed state."""
    sources = tuple(SourceProgress(label, p.get("total", 0), p.get("done", 0), p.get("events", 0), dict(p.get("by_type", {})))
                    for label, p in ((label, run.progress.get(label, {})) for label in run.sources))
    lanes = tuple(LaneProgress(lane, s["source"], s["cursor"], s["seq"], s["finished"]) for lane, s in enumerate(run.lanes_state))
    total = max(run.rows_total, 0)
    percent = 100.0 if run.status == Status.SUCCEEDED or not total else min(100.0, 100.0 * run.rows_done / total)
    end = run.finished_at or (run.heartbeat_at if run.started_at else None)
    elapsed = (end - run.started_at).total_seconds() if (run.started_at and end) else 0.0
    eta = None
    if run.is_active and elapsed > 0 and run.rows_done:
        eta = max(total - run.rows_done, 0) / (run.rows_done / elapsed)
    return Progress(run.pk, run.status, run.dry_run, percent, run.rows_done, total, run.events_created, run.rate,
                    elapsed, eta, sources, lanes, run.last_error)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
