"""The backfill service the admin, the command and the tasks call: start, cancel, resume a stalled run.

Services take the run's id or the operator's choices and own their transaction; chunks reach the workers through
activity.backfill.scheduling (dispatch) only after the transaction that made them due commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from activity.backfill import state
from activity.backfill.chunks import ChunkOutcome, run_backfill_chunk
from activity.backfill.planning import plan_sources, validate_batch_size, validate_lanes, validate_sources
from activity.backfill.scheduling import schedule_on_commit
from activity.models import BackfillLane, BackfillRun
from audit.event_types import AuditEventType
from audit.services import actor_from_context, record_audit_event

logger = logging.getLogger(__name__)

Status = BackfillRun.Status


def start_backfill(
    sources: Iterable[str] | None = None,
    dry_run: bool = False,
    batch_size: int | None = None,
    user: AbstractBaseUser | AnonymousUser | None = None,
    *,
    lanes: int | None = 1,
    enqueue: bool = True,
) -> BackfillRun:
    """Create a run over `sources` (all when empty), one BackfillLane row per lane, and enqueue the first chunk of
    each lane after commit.

    Raises BackfillError on bad input, before anything is written. `enqueue=False` leaves the run queued for a
    caller that executes the chunks itself (tests, drive_inline).
    """
    labels = validate_sources(sources)
    size = validate_batch_size(batch_size)
    n_lanes = validate_lanes(lanes)
    created_by: Any = user if isinstance(user, AbstractBaseUser) and user.is_authenticated else None
    with transaction.atomic():
        plan = plan_sources(labels, size, n_lanes)
        first = labels[0]
        run = BackfillRun.objects.create(
            sources=labels,
            dry_run=bool(dry_run),
            batch_size=size,
            lanes=n_lanes,
            progress=plan,
            current_source=first,
            rows_total=sum(p["total"] for p in plan.values()),
            created_by=created_by,
        )
        BackfillLane.objects.bulk_create(
            BackfillLane(
                run=run, lane=lane, source=first, cursor=plan[first]["bounds"][lane], updated_at=run.created_at
            )
            for lane in range(n_lanes)
        )
        if enqueue:
            for lane in range(n_lanes):
                schedule_on_commit(run.pk, lane, 0)
        record_audit_event(
            actor=created_by or actor_from_context("command:backfill_user_activity"),
            event_type=AuditEventType.BACKFILL_STARTED,
            obj=run,
            changes={"sources": labels, "dry_run": run.dry_run, "batch_size": size, "lanes": n_lanes},
        )
    logger.info(
        "backfill #%s created: sources=%s dry_run=%s batch_size=%s lanes=%s rows=%s",
        run.pk,
        labels,
        run.dry_run,
        size,
        n_lanes,
        run.rows_total,
    )
    return run


def cancel_backfill(run_id: int) -> BackfillRun:
    """Ask a run to stop. Takes effect at once when no chunk is executing, else when the executing chunks commit
    (those chunks are kept: every chunk is a complete, consistent unit). A finished run is left as it is."""
    with transaction.atomic():
        run = BackfillRun.objects.select_for_update().get(pk=run_id)
        if not run.is_active:
            return run
        run.cancel_requested = True
        fields = ["cancel_requested"]
        # Try-locks while holding the run row cannot deadlock with a chunk (which takes the run row last).
        idle = state.lock_idle_lanes(run_id)
        if len(idle) == BackfillLane.objects.filter(run_id=run_id).count():
            run.status, run.finished_at = Status.CANCELLED, timezone.now()
            fields += ["status", "finished_at"]
            state.stop_idle_lanes(run_id, run.finished_at)
        run.save(update_fields=fields)
        record_audit_event(
            actor=actor_from_context("command:backfill_user_activity"),
            event_type=AuditEventType.BACKFILL_CANCELLED,
            obj=run,
            changes={"status": run.status, "rows_done": run.rows_done},
        )
    logger.info("backfill #%s: cancel requested (%s)", run_id, run.status)
    return run


def resume_stale_backfills(stale_after: timedelta | None = None) -> list[int]:
    """Re-enqueue, from their committed cursor, the lanes of active runs with no committed chunk for `stale_after`.

    This, not broker redelivery, bounds how long a killed worker stalls a run: Redis hands an unacked task back only
    after its visibility timeout (an hour by default). A lane whose chunk is still executing (its row locked) is
    left alone. Returns the ids of the runs resumed.
    """
    stale_after = stale_after if stale_after is not None else timedelta(seconds=settings.BACKFILL_STALE_SECONDS)
    cutoff = timezone.now() - stale_after
    active = BackfillRun.objects.filter(status__in=BackfillRun.ACTIVE_STATUSES).order_by("pk")
    return [run_id for run_id in active.values_list("pk", flat=True) if _resume(run_id, cutoff)]


def _resume(run_id: int, cutoff: datetime) -> bool:
    with transaction.atomic():
        run = BackfillRun.objects.select_for_update().get(pk=run_id)
        stale = [
            row for row in state.lock_idle_lanes(run_id) if run.is_active and row.is_active and row.updated_at < cutoff
        ]
        if not stale:
            return False
        now = timezone.now()
        for row in stale:
            row.updated_at = now  # the next resume waits another stale period
            row.save(update_fields=["updated_at"])
            schedule_on_commit(run_id, row.lane, row.chunks_done)
        run.resumes += 1
        run.save(update_fields=["resumes"])
    logger.warning(
        "backfill #%s stalled since before %s; re-enqueued lane(s) %s from their cursors",
        run_id,
        cutoff,
        [row.lane for row in stale],
    )
    return True


def drive_inline(run_id: int, on_chunk: Callable[[BackfillRun], None] | None = None) -> BackfillRun:
    """Execute the run's chunks in the calling process, one after another (lanes taking turns), publishing nothing.

    For tests of the service and benchmarks only: production runs chunks on the workers (start_backfill enqueues
    them). A lane another executor holds is skipped; the loop ends when the run ends or every lane is held elsewhere.
    """
    while True:
        run = BackfillRun.objects.get(pk=run_id)
        pending = list(run.lane_rows.filter(status__in=BackfillLane.ACTIVE_STATUSES).values_list("lane", flat=True))
        if not run.is_active or not pending:
            return run
        outcomes = [_chunk_inline(run_id, lane) for lane in pending]
        if on_chunk is not None:
            on_chunk(BackfillRun.objects.get(pk=run_id))
        if all(outcome is ChunkOutcome.SKIPPED for outcome in outcomes):
            return BackfillRun.objects.get(pk=run_id)  # another executor holds every lane: it carries the run on


def _chunk_inline(run_id: int, lane: int) -> ChunkOutcome:
    try:
        return run_backfill_chunk(run_id, lane, enqueue_next=False)
    except (OperationalError, InterfaceError) as exc:
        # No worker retries here: end the run visibly (start another; it skips what is recorded).
        state.finish_failed(run_id, lane, exc)
        return ChunkOutcome.FINISHED
