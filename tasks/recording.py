"""Thin tasks of the `events` queue (take ids, call one service), and the drain loop of batched recording.

The drain takes entries from the Redis transport (tasks/batching.py) batch by batch and records each batch through
activity.recording, one transaction per source label; it schedules its own successor through dispatch. Imports
batching and dispatch, never tasks.enqueue: the request side depends on this module, not the reverse.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis
from celery import shared_task
from celery.signals import task_postrun, task_prerun
from django.db import InterfaceError, OperationalError, close_old_connections

from activity import team_entries
from activity.events import InvalidEventError
from activity.poison import isolate_and_record
from activity.recording import record_events_for
from activity.sources import UnknownSourceError
from dispatch.names import TaskName
from dispatch.publish import publish
from tasks import batching

logger = logging.getLogger(__name__)

# What the drain task retries (the database is unreachable or busy); everything else is about a row, not the moment.
RETRYABLE = (OperationalError, InterfaceError)


@task_prerun.connect(weak=False, dispatch_uid="tasks.recording.close_old_connections.prerun")
@task_postrun.connect(weak=False, dispatch_uid="tasks.recording.close_old_connections.postrun")
def _close_old_connections(**kwargs: Any) -> None:
    """Keep the worker's connections as Django keeps a web process's: reused across tasks (CELERY_DB_REUSE_MAX stops
    Celery closing them), but dropped when broken or older than CONN_MAX_AGE."""
    close_old_connections()


@shared_task(
    name=TaskName.RECORD_SOURCE_CHANGE,
    autoretry_for=RETRYABLE,  # lost connection, lock timeout, deadlock victim: try again
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
    acks_late=True,
)
def record_source_change(source_label: str, pk: int) -> int:
    """Record the events of one source row; returns how many were new. A missing row records nothing."""
    try:
        return len(record_events_for(source_label, [batching.row_id(pk)]).inserted)
    except (UnknownSourceError, InvalidEventError, TypeError, ValueError) as exc:
        # Retrying cannot fix a bad payload: log which ids and drop it (no retry storm).
        logger.error("dropped record_source_change(%r, %r): %s", source_label, pk, exc)
        return 0


@shared_task(
    name=TaskName.RECORD_TEAM_ENTRIES,
    autoretry_for=RETRYABLE,
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
    acks_late=True,
    ignore_result=True,
)
def record_team_entries(team_id: int, joined_at: str, left_at: str | None = None) -> int:
    """A membership changed who a team's entries stand for: re-derive the registrations, matches and results it
    touches (activity.team_entries), poison rows isolated; returns how many events were new."""
    affected = team_entries.rows_affected_by_membership(
        team_id=int(team_id),
        joined_at=datetime.fromisoformat(joined_at),
        left_at=datetime.fromisoformat(left_at) if left_at else None,
    )
    return sum(len(isolate_and_record(label, ids, origin="live").result.inserted) for label, ids in affected.items())


@shared_task(
    name=TaskName.DRAIN_PENDING,
    bind=True,
    autoretry_for=RETRYABLE,  # the failed batch is back on the pending list: try again
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
    report = drain_pending_changes(self.request.id or "local")
    if report.more_pending:
        try:
            schedule_drain()
        except Exception as exc:  # noqa: BLE001 - the rows wait on the list; the next save schedules a drain
            logger.warning("drain_pending could not hand over to a fresh drain (%s: %s)", type(exc).__name__, exc)
    return {
        "batches": report.batches,
        "entries": report.entries,
        "events": report.events,
        "dropped": report.dropped,
        "requeued_stale": report.requeued_stale,
    }


# --- scheduling a drain ------------------------------------------------------------------------------------------


def publish_drain() -> None:
    """Publish one drain (the caller holds the drain slot). On failure the slot is freed, so the next save (after the
    broker-down pause) publishes again, and PublishFailed propagates."""
    try:
        publish(TaskName.DRAIN_PENDING)
    except Exception:
        try:
            batching.release_drain_slot()
        except redis.RedisError:  # Redis is down too; the flag expires within seconds
            pass
        raise


def schedule_drain() -> bool:
    """Publish a drain unless one is already scheduled; True when one was published. Used by a drain handing over
    and by the catch-up sweep after it put dead drains' batches back."""
    if not batching.claim_drain_slot():
        return False
    publish_drain()
    return True


# --- the drain loop ----------------------------------------------------------------------------------------------


@dataclass
class DrainReport:
    batches: int = 0
    entries: int = 0
    events: int = 0
    dropped: int = 0
    requeued_stale: int = 0
    more_pending: bool = False
    by_label: dict[str, int] = field(default_factory=dict)


def drain_pending_changes(
    drain_id: str, *, max_seconds: float = batching.DRAIN_MAX_SECONDS, batch_size: int = batching.DRAIN_BATCH_SIZE
) -> DrainReport:
    """Record what the pending list holds, batch by batch, for up to `max_seconds`; `more_pending` says whether the
    caller must hand over to a fresh drain. On any exception the current batch goes back to the pending list and
    the exception propagates (the task retries)."""
    batching.clear_drain_flag()
    report = DrainReport(requeued_stale=batching.requeue_stale())
    started = time.monotonic()
    while True:
        items = batching.take_batch(drain_id, batch_size)
        if not items:
            break
        try:
            _record_batch(items, report)
        except BaseException:
            requeued = batching.return_batch(drain_id)
            logger.warning("drain %s failed; %d pending entries put back for the retry", drain_id, requeued)
            raise
        batching.finish_batch(drain_id)
        report.batches += 1
        if time.monotonic() - started >= max_seconds:
            report.more_pending = bool(batching.pending_count())
            break
    return report


def _record_batch(items: Iterable[str], report: DrainReport) -> None:
    by_label: dict[str, set[int]] = defaultdict(set)
    for item in items:
        parsed = batching.parse_entry(item)
        if parsed is None:
            report.dropped += 1
            continue
        by_label[parsed[0]].add(parsed[1])
        report.entries += 1
    for label in sorted(by_label):
        ids = sorted(by_label[label])
        report.events += _record_group(label, ids, report)
        report.by_label[label] = report.by_label.get(label, 0) + len(ids)


def _record_group(label: str, ids: list[int], report: DrainReport) -> int:
    """One transaction for the whole group. Database trouble (OperationalError, InterfaceError) propagates: the batch
    goes back and the task retries. Anything else is a bad row failing the whole group, so the group is then recorded
    row by row and only the failing rows are dropped, logged with their ids, as a failed per-row task would be:
    put back, one poison row would block the pending list for good."""
    try:
        return len(record_events_for(label, ids).inserted)
    except RETRYABLE:
        raise
    except Exception as exc:  # noqa: BLE001 - isolated below
        logger.warning(
            "batch of %d %s rows failed (%s: %s); recording them one by one", len(ids), label, type(exc).__name__, exc
        )
    inserted = 0
    for pk in ids:  # error path only: isolates the bad rows of the group
        try:
            inserted += len(record_events_for(label, [pk]).inserted)
        except RETRYABLE:
            raise
        except InvalidEventError as exc:
            report.dropped += 1
            logger.error("dropped pending entry %s:%s: %s", label, pk, exc)
        except Exception:  # noqa: BLE001 - logged with its traceback; the sweep / reconciliation see the row again
            report.dropped += 1
            logger.exception("dropped pending entry %s:%s: recording it failed", label, pk)
    return inserted
