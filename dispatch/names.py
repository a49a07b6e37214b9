"""Every task's name and queue. The `@shared_task(name=...)` declarations in `tasks/`, the beat schedules, the
Celery routes and every publisher read them from here, so a rename cannot leave a publisher sending to nothing."""

from __future__ import annotations

from enum import StrEnum


class Queue(StrEnum):
    # Live recording and the catch-up sweep: short tasks that bound the ledger's lag.
    EVENTS = "events"
    # Long jobs (backfill chunks, reconciliation, recomputation, poison-row retries): never ahead of live recording.
    MAINTENANCE = "maintenance"


class TaskName(StrEnum):
    RECORD_SOURCE_CHANGE = "tasks.recording.record_source_change"
    DRAIN_PENDING = "tasks.recording.drain_pending"
    RECORD_TEAM_ENTRIES = "tasks.recording.record_team_entries"
    CATCH_UP = "tasks.sweeps.catch_up"
    RUN_BACKFILL_CHUNK = "tasks.maintenance.run_backfill_chunk"
    RESUME_STALE_BACKFILLS = "tasks.maintenance.resume_stale_backfills"
    RETRY_POISON_ROWS = "tasks.maintenance.retry_poison_rows"
    RECONCILE_STATS = "tasks.reconciliation.reconcile_stats"
    RECOMPUTE_STALE = "tasks.reconciliation.recompute_stale"
    VERIFY_AUDIT_CHAIN = "tasks.audit_integrity.verify_audit_chain"


_QUEUE_OF: dict[TaskName, Queue] = {
    TaskName.RECORD_SOURCE_CHANGE: Queue.EVENTS,
    TaskName.DRAIN_PENDING: Queue.EVENTS,
    TaskName.RECORD_TEAM_ENTRIES: Queue.EVENTS,
    TaskName.CATCH_UP: Queue.EVENTS,
    TaskName.RUN_BACKFILL_CHUNK: Queue.MAINTENANCE,
    TaskName.RESUME_STALE_BACKFILLS: Queue.MAINTENANCE,
    TaskName.RETRY_POISON_ROWS: Queue.MAINTENANCE,
    TaskName.RECONCILE_STATS: Queue.MAINTENANCE,
    TaskName.RECOMPUTE_STALE: Queue.MAINTENANCE,
    TaskName.VERIFY_AUDIT_CHAIN: Queue.MAINTENANCE,
}


def queue_of(name: TaskName) -> Queue:
    """The queue a task is published to (KeyError for a name that is not a task: a typo fails here, not silently)."""
    return _QUEUE_OF[TaskName(name)]


def celery_routes() -> dict[str, dict[str, str]]:
    """CELERY_TASK_ROUTES: every task to its queue, so `.delay()` from a shell routes as `publish` does."""
    return {name.value: {"queue": queue.value} for name, queue in _QUEUE_OF.items()}
