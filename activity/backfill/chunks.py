"""One chunk of one lane: lock the lane, check the task is the one the lane waits for, record the next bounded range
of source rows through the one recording path, and commit the lane's new cursor with those events.

Exactly-once execution of a chunk does not rely on the broker: every chunk task carries its lane's chunk number
(BackfillLane.chunks_done), and the executor holds the lane's row lock for the whole chunk; a duplicate task (broker
redelivery after the visibility timeout, a resume racing a slow worker) finds the row locked, or the number moved
on, and does nothing. Re-recording a row would add nothing anyway (the ledger's unique key); the guard avoids the
wasted work and a forked chain.
"""

from __future__ import annotations

import enum
import logging

from django.db import InterfaceError, OperationalError, transaction

from activity.backfill import scheduling, state
from activity.backfill.planning import next_source
from activity.backfill.work import ChunkWork
from activity.chunks import IdChunk, iter_id_chunks
from activity.models import BackfillLane, BackfillRun
from activity.overlapped import overlap_pays_off
from activity.poison import isolate_and_record
from activity.recording import skip_wal_flush_wait
from activity.sources import SourceKind, source_kind

logger = logging.getLogger(__name__)


class ChunkOutcome(enum.Enum):
    CONTINUED = "continued"  # a chunk was committed and its lane has more to do
    FINISHED = "finished"  # the lane or the run is over (succeeded, cancelled, failed, or already was)
    SKIPPED = "skipped"  # nothing done: a duplicate task, another executor busy with this lane, or no such run


def run_backfill_chunk(
    run_id: int, lane: int = 0, seq: int | None = None, *, enqueue_next: bool = True
) -> ChunkOutcome:
    """Do one bounded chunk of a lane of the run and (unless `enqueue_next` is off) enqueue the lane's next chunk
    after commit.

    `seq` is the lane's chunk number the task was enqueued for; a task whose number the lane has moved past is a
    duplicate and does nothing. None means "whatever is next" (drive_inline). Transient database errors propagate
    (the task retries them; the run stays running and is resumed if retries run out); any other error marks the run
    failed with the error, and nothing of the failed chunk is kept.
    """
    try:
        with transaction.atomic():
            # The chunk's events and the lane's new cursor commit together, without waiting for the WAL flush (as a
            # live recording does): a PostgreSQL crash can lose the last chunks, cursor included; the task of the
            # next chunk then finds the lane behind it and is dropped, and resume_stale_backfills re-enqueues the
            # lane from its committed cursor.
            skip_wal_flush_wait()
            row = state.lock_lane(run_id, lane)
            if row is None:
                logger.info(
                    "backfill #%s lane %s: busy with another executor, or no such lane; task for chunk %s dropped",
                    run_id,
                    lane,
                    seq,
                )
                return ChunkOutcome.SKIPPED
            return _chunk_of_locked_lane(row, seq, enqueue_next)
    except (OperationalError, InterfaceError) as exc:
        state.note_error(run_id, lane, f"transient database error, will retry: {type(exc).__name__}: {exc}")
        raise
    except Exception as exc:  # a broken chunk must end the run visibly, not loop forever
        logger.exception("backfill #%s lane %s failed", run_id, lane)
        state.finish_failed(run_id, lane, exc)
        return ChunkOutcome.FINISHED


def _chunk_of_locked_lane(row: BackfillLane, seq: int | None, enqueue_next: bool) -> ChunkOutcome:
    run = BackfillRun.objects.get(pk=row.run_id)
    if not row.is_active:
        return ChunkOutcome.FINISHED
    if not run.is_active:  # the run ended (another lane failed, a cancel) while this lane's task waited
        state.stop_lane(row)
        return ChunkOutcome.FINISHED
    if seq is not None and seq != row.chunks_done:
        logger.info(
            "backfill #%s lane %s: task for chunk %s is a duplicate (lane is at chunk %s); dropped",
            run.pk,
            row.lane,
            seq,
            row.chunks_done,
        )
        return ChunkOutcome.SKIPPED
    if run.cancel_requested:  # asked while a chunk was executing
        state.end_cancelled(run.pk, row)
        return ChunkOutcome.FINISHED
    work = _record_next_chunk(run, row)
    continues = state.commit_chunk(row, work)
    if not continues:
        return ChunkOutcome.FINISHED
    if enqueue_next:
        scheduling.schedule_on_commit(row.run_id, row.lane, row.chunks_done)
    return ChunkOutcome.CONTINUED


def _record_next_chunk(run: BackfillRun, row: BackfillLane) -> ChunkWork:
    work = _find_next_chunk(run, row)
    if work.chunk is not None:
        # A row that cannot be recorded becomes a poison row (retried on its own); the chunk and the cursor move on.
        outcome = isolate_and_record(
            work.label, work.chunk.ids, dry_run=run.dry_run, origin="backfill", overlap=overlap_pays_off(run.lanes)
        )
        result = outcome.result
        work.created = result.would_insert if run.dry_run else len(result.inserted)
        work.by_type = dict(result.would_insert_by_type if run.dry_run else result.by_type())
        work.derived = result.derived
        work.poisoned = len(outcome.poisoned)
    return work


def _find_next_chunk(run: BackfillRun, row: BackfillLane) -> ChunkWork:
    """The lane's next chunk from its cursor, stepping over exhausted sources (at most one step per source)."""
    label, cursor = row.source, row.cursor
    while True:
        plan = run.progress[label]
        size, high = plan["rows_per_chunk"], plan["bounds"][row.lane + 1]
        chunk = next_chunk(source_kind(label), size, cursor, high)
        following = next_source(run.sources, label)
        if chunk is not None or following is None:
            return ChunkWork(label, chunk, size, high)
        label, cursor = following, run.progress[following]["bounds"][row.lane]


def next_chunk(kind: SourceKind, size: int, cursor: int, high: int) -> IdChunk | None:
    """At most `size` keys of the source after `cursor`, none above `high`; None when there are none."""
    if cursor >= high:
        return None
    chunk = next(iter_id_chunks(kind, size, after_id=cursor), None)
    if chunk is None:
        return None
    ids = [i for i in chunk.ids if i <= high]
    if not ids:
        return None
    return IdChunk(ids[0], ids[-1], ids)
