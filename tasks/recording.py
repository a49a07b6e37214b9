"""Thin tasks of the `events` queue: take ids, call one service."""
from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import task_postrun, task_prerun
from django.db import InterfaceError, OperationalError, close_old_connections

from dispatch.names import TaskName
from activity.events import InvalidEventError
from activity.recording import record_events_for
from activity.sources import UnknownSourceError

logger = logging.getLogger(__name__)


@task_prerun.connect(weak=False, dispatch_uid="tasks.recording.close_old_connections.prerun")
@task_postrun.connect(weak=False, dispatch_uid="tasks.recording.close_old_connections.postrun")
def _close_old_connections(task=None, **kwargs) -> None:
    """Keep the worker's connections as Django keeps a web process's: reused across tasks (CELERY_DB_REUSE_MAX stops
    Celery closing them), but dropped when broken or older than CONN_MAX_AGE. Never in eager mode: there the task
    runs inside the caller's (possibly open) transaction."""
    if task is not None and not getattr(task.request, "is_eager", False):
        close_old_connections()


@shared_task(
    name=TaskName.RECORD_SOURCE_CHANGE,
    autoretry_for=(OperationalError, InterfaceError),  # lost connection, lock timeout, deadlock victim: try again
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
    acks_late=True,
)
def record_source_change(source_label: str, pk: int) -> int:
    """Record the events of one source row; returns how many were new. A missing row records nothing."""
    try:
        return len(record_events_for(source_label, [_row_id(pk)]).inserted)
    except (UnknownSourceError, InvalidEventError, TypeError, ValueError) as exc:
        # Retrying cannot fix a bad payload: log which ids and drop it (no retry storm).
        logger.error("dropped record_source_change(%r, %r): %s", source_label, pk, exc)
        return 0


def _row_id(pk) -> int:
    """The primary key a message carries; anything that is not a 64-bit integer (or its decimal string) is garbage
    (int() alone would truncate 1.5 to row 1, and a key beyond bigint fails in the database instead of here)."""
    if isinstance(pk, bool) or not isinstance(pk, (int, str)):
        raise TypeError(f"primary key must be an integer, got {type(pk).__name__}")
    row_id = int(pk)
    if not -(2**63) <= row_id < 2**63:
        raise ValueError(f"primary key {row_id} is outside the 64-bit range")
    return row_id


@shared_task(
    name=TaskName.DRAIN_PENDING,
    bind=True,
    autoretry_for=(OperationalError, InterfaceError),  # the failed batch is back on the pending list: try again
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
    acks_late=True,
    ignore_result=True,
)
def drain_pending(self) -> dict:
    """ACTIVITY_ENQUEUE_MODE="batch": record the rows waiting on the pending list, many per transaction; hands over
    to a fresh drain when there is more than one run's worth."""
    from tasks import batching
    from tasks.enqueue import schedule_drain

    report = batching.drain_pending_changes(self.request.id or "local")
    if report.more_pending:
        try:
            schedule_drain()
        except Exception as exc:  # noqa: BLE001 - the rows wait on the list; the next save schedules a drain
            logger.warning("drain_pending could not hand over to a fresh drain (%s: %s)", type(exc).__name__, exc)
    return {"batches": report.batches, "entries": report.entries, "events": report.events,
            "dropped": report.dropped, "requeued_stale": report.requeued_stale}
