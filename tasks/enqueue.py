"""Handing a committed source change to the recorder without ever failing or slowing the request."""
from __future__ import annotations

import logging
import time

from django.conf import settings

from monitoring import metrics

logger = logging.getLogger(__name__)

# After a failed publish, this process skips publishing for a few seconds (each skip is logged with its ids): a hung
# broker costs one socket timeout per pause, not one per saved row. The catch-up sweep records the skipped rows.
BROKER_DOWN_PAUSE_SECONDS = 5.0
_broker_down_until = 0.0


def enqueue_source_change(source_label: str, pk: int) -> None:
    """Called after commit. Publishes one task; if the broker is unreachable the publish fails fast (short socket
    timeouts, no retries), is logged with the ids, and the request carries on: the source table is the outbox and the
    catch-up sweep records the row later. ACTIVITY_ENQUEUE_MODE="batch" appends to a Redis list instead (see
    tasks/batching.py), with the same failure handling."""
    if settings.ACTIVITY_RECORDING == "sync":
        _record_inline(source_label, pk)
        return
    from tasks.recording import record_source_change

    global _broker_down_until
    batched = settings.ACTIVITY_ENQUEUE_MODE == "batch" and not _tasks_run_in_process(record_source_change)
    if time.monotonic() < _broker_down_until:
        # A publish just failed: a request saving many rows must not pay one socket timeout per row.
        metrics.ENQUEUE_FAILURES.labels(source=source_label).inc()
        logger.warning("enqueue skipped for %s id=%s (broker failed under %.0fs ago); the catch-up sweep will record it",
                       source_label, pk, BROKER_DOWN_PAUSE_SECONDS)
        return
    try:
        if batched:
            _push_batched(source_label, pk)
        else:
            record_source_change.apply_async((source_label, pk), retry=False)
    except Exception as exc:  # noqa: BLE001 - any broker failure must stay out of the request
        _broker_down_until = time.monotonic() + BROKER_DOWN_PAUSE_SECONDS
        metrics.ENQUEUE_FAILURES.labels(source=source_label).inc()
        logger.warning("enqueue failed for %s id=%s (%s: %s); the catch-up sweep will record it",
                       source_label, pk, type(exc).__name__, exc)


def _tasks_run_in_process(task) -> bool:
    """The embedded default (no broker): there is no Redis to batch in, so "batch" runs the per-row task inline."""
    return settings.TASKS_IN_PROCESS or bool(task.app.conf.task_always_eager)


def _push_batched(source_label: str, pk: int) -> None:
    """ACTIVITY_ENQUEUE_MODE="batch": append the row to the pending list and, when no drain is scheduled, publish
    one. One Redis round trip, plus one publish for the first row after a drain started."""
    from tasks import batching
    from tasks.recording import drain_pending

    if batching.push_pending(source_label, pk):
        _publish_drain(drain_pending)


def schedule_drain() -> bool:
    """Publish a drain unless one is already scheduled; True when one was published. Used by a drain handing over."""
    from tasks import batching
    from tasks.recording import drain_pending

    if not batching.claim_drain_slot():
        return False
    _publish_drain(drain_pending)
    return True


def _publish_drain(drain_pending) -> None:
    from tasks import batching

    try:
        drain_pending.apply_async(retry=False)
    except Exception:
        # The row is on the pending list already: free the slot so the next save (after the pause) publishes again.
        try:
            batching.release_drain_slot()
        except Exception:  # noqa: BLE001 - Redis is down too; the flag expires within seconds
            pass
        raise


def _record_inline(source_label: str, pk: int) -> None:
    from activity.recording import record_events_for

    try:
        record_events_for(source_label, [pk])
    except Exception:  # noqa: BLE001 - the seeds' synchronous mode, kept for comparison: still never fail the request
        logger.exception("synchronous recording failed for %s id=%s; the catch-up sweep will record it", source_label, pk)
