"""The run's and the lanes' committed state: the only writer of BackfillRun and BackfillLane rows after a run starts.

Locks, always in this order: a chunk holds its lane row (from its start) and takes the run row last, briefly, at its
commit. Whoever holds the run row first (cancel, resume, a chunk committing) only try-locks lane rows (SKIP LOCKED),
so nothing waits in a circle.
"""

from __future__ import annotations

import logging
import traceback
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from activity.backfill.planning import next_size, next_source
from activity.backfill.work import ChunkWork
from activity.catchup import advance_watermarks
from activity.models import BackfillLane, BackfillRun
from audit.event_types import AuditEventType
from audit.services import record_audit_event
from monitoring import metrics

logger = logging.getLogger(__name__)

Status = BackfillRun.Status
LaneStatus = BackfillLane.Status
RUN_FIELDS = [
    "progress",
    "current_source",
    "chunks_done",
    "rows_done",
    "rows_total",
    "events_created",
    "status",
    "started_at",
    "finished_at",
    "heartbeat_at",
    "rate",
]


def lock_lane(run_id: int, lane: int) -> BackfillLane | None:
    """The lane's row, locked until the caller's transaction ends; None when another transaction holds it (a chunk
    of this lane is executing) or there is no such lane."""
    # of=("self",) and no ordering: the lock must never extend to the run row (a join would lock it too).
    lanes = BackfillLane.objects.select_for_update(skip_locked=True, of=("self",)).order_by()
    return lanes.filter(run_id=run_id, lane=lane).first()


def lock_idle_lanes(run_id: int) -> list[BackfillLane]:
    """The run's lane rows no other transaction holds (no chunk of theirs is executing), locked."""
    return list(
        BackfillLane.objects.select_for_update(skip_locked=True, of=("self",)).filter(run_id=run_id).order_by("lane")
    )


def stop_lane(row: BackfillLane, at: datetime | None = None) -> None:
    row.status, row.finished_at = LaneStatus.STOPPED, at or timezone.now()
    row.save(update_fields=["status", "finished_at"])


def stop_idle_lanes(run_id: int, at: datetime, exclude: int | None = None) -> None:
    """The run ended: its active lanes that are not executing stop now; an executing one stops when its chunk sees
    the ended run."""
    idle = [row.pk for row in lock_idle_lanes(run_id) if row.is_active and row.pk != exclude]
    BackfillLane.objects.filter(pk__in=idle).update(status=LaneStatus.STOPPED, finished_at=at)


def end_cancelled(run_id: int, row: BackfillLane) -> None:
    """A cancel was requested while another chunk executed; this lane's next chunk ends the run instead."""
    now = timezone.now()
    BackfillRun.objects.filter(pk=run_id).update(status=Status.CANCELLED, finished_at=now)
    stop_lane(row, now)
    stop_idle_lanes(run_id, now, exclude=row.pk)


def commit_chunk(row: BackfillLane, work: ChunkWork) -> bool:
    """Write one recorded chunk into its (locked) lane and its run, in the chunk's transaction. True when the lane
    goes on (the caller enqueues its next chunk)."""
    # The run row is locked only now, briefly, and re-read: other lanes commit their own progress to it, and
    # cancel_backfill can always get in between chunks.
    run = BackfillRun.objects.select_for_update().get(pk=row.run_id)
    end = timezone.now()
    _tally_source(run, work)
    _move_lane(row, run, work, end)
    _tally_run(run, work, end)
    if run.is_active:  # a failure in another lane ends the run; this lane's committed chunk still counts
        _settle_run(run, row, end)
    if not run.is_active and row.is_active:
        row.status, row.finished_at = LaneStatus.STOPPED, end
    row.save()
    run.save(update_fields=RUN_FIELDS)
    ratio = run.rows_done / run.rows_total if run.rows_total else 1.0
    transaction.on_commit(lambda: observe(ratio, 0 if run.dry_run else work.created))
    if not run.is_active:
        logger.info(
            "backfill #%s %s: %s rows, %s events%s",
            run.pk,
            run.status,
            run.rows_done,
            run.events_created,
            " (dry run: would be created)" if run.dry_run else "",
        )
    return run.is_active and row.is_active


def _tally_source(run: BackfillRun, work: ChunkWork) -> None:
    if work.chunk is None:
        return
    source = run.progress[work.label]
    source["done"] += len(work.chunk.ids)
    source["events"] += work.created
    if work.poisoned:
        source["poison"] = source.get("poison", 0) + work.poisoned
    counts = source.setdefault("by_type", {})
    for event_type, n in work.by_type.items():
        counts[event_type] = counts.get(event_type, 0) + n
    source["rows_per_chunk"] = next_size(run.batch_size, len(work.chunk.ids), work.derived, source["rows_per_chunk"])


def _move_lane(row: BackfillLane, run: BackfillRun, work: ChunkWork, end: datetime) -> None:
    """The lane's new position: after the chunk, or at the start of its range of the next source, or done."""
    row.source = work.label
    if work.chunk is not None:
        row.cursor = work.chunk.last_id
        row.rows_done += len(work.chunk.ids)
        row.events_created += work.created
    if work.exhausted:
        following = next_source(run.sources, work.label)
        if following is None:
            row.status, row.finished_at = LaneStatus.DONE, end
        else:
            row.source, row.cursor = following, run.progress[following]["bounds"][row.lane]
    if row.status == LaneStatus.QUEUED:
        row.status, row.started_at = LaneStatus.RUNNING, work.began
    row.chunks_done += 1
    row.updated_at = end


def _tally_run(run: BackfillRun, work: ChunkWork, end: datetime) -> None:
    run.current_source = work.label
    run.chunks_done += 1
    run.rows_done = sum(p["done"] for p in run.progress.values())
    run.events_created += work.created
    run.heartbeat_at = end
    if run.status == Status.QUEUED:
        run.status, run.started_at = Status.RUNNING, work.began
    elapsed = (end - run.started_at).total_seconds() if run.started_at else 0.0
    run.rate = run.events_created / elapsed if elapsed > 0 else 0.0


def _settle_run(run: BackfillRun, row: BackfillLane, end: datetime) -> None:
    """End the run when it was cancelled meanwhile, or when this chunk finished its last lane."""
    if run.cancel_requested:
        run.status, run.finished_at = Status.CANCELLED, end
        stop_idle_lanes(run.pk, end, exclude=row.pk)
        return
    # Other lanes' rows are read, not locked: each lane commits its DONE while holding the run row, so the last
    # lane to finish sees every other lane's DONE here.
    others_open = BackfillLane.objects.filter(run_id=run.pk).exclude(pk=row.pk).exclude(status=LaneStatus.DONE)
    if row.status != LaneStatus.DONE or others_open.exists():
        return
    run.status, run.finished_at = Status.SUCCEEDED, end
    # Done rows can fall short of the counted total when rows were deleted meanwhile: 100 % is 100 %.
    run.rows_total = run.rows_done
    audit_finished(run)
    if not run.dry_run:
        # Every row of these sources as of the run's start is recorded: the catch-up sweep starts from there,
        # instead of rescanning (and counting as lost) what an import wrote before the run.
        advance_watermarks(run.sources, run.created_at)


def observe(ratio: float, created: int) -> None:
    metrics.BACKFILL_PROGRESS.set(min(ratio, 1.0))
    if created:
        metrics.BACKFILL_EVENTS.inc(created)


def note_error(run_id: int, lane: int, message: str) -> None:
    """Record a problem that does not end the run (a transient error, a failed enqueue) on the run and the lane."""
    try:
        BackfillRun.objects.filter(pk=run_id).update(last_error=message[:4000])
        BackfillLane.objects.filter(run_id=run_id, lane=lane).update(last_error=message[:4000])
    except Exception:  # noqa: BLE001 - the connection may be the thing that broke; the task retry is what matters
        logger.warning("backfill #%s lane %s: could not record the error %r", run_id, lane, message)


def finish_failed(run_id: int, lane: int, exc: BaseException) -> None:
    """The chunk raised (and rolled back): the run and this lane fail with the error, the other idle lanes stop."""
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    tail = "".join(traceback.format_tb(exc.__traceback__)[-3:])
    error = f"{detail}\n{tail}"[:4000]
    now = timezone.now()
    with transaction.atomic():
        ended = BackfillRun.objects.filter(pk=run_id, status__in=BackfillRun.ACTIVE_STATUSES).update(
            status=Status.FAILED, finished_at=now, last_error=error
        )
        BackfillLane.objects.filter(run_id=run_id, lane=lane, status__in=BackfillLane.ACTIVE_STATUSES).update(
            status=LaneStatus.FAILED, finished_at=now, last_error=error
        )
        stop_idle_lanes(run_id, now)
        if ended:
            audit_finished(BackfillRun.objects.get(pk=run_id))


def audit_finished(run: BackfillRun) -> None:
    """backfill_finished (succeeded or failed), in the transaction that ends the run."""
    record_audit_event(
        actor="job:backfill",
        event_type=AuditEventType.BACKFILL_FINISHED,
        obj=run,
        changes={"status": run.status, "rows_done": run.rows_done, "events_created": run.events_created},
    )
