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
    catch-up sweep records the row later."""
    if settings.ACTIVITY_RECORDING == "sync":
        _record_inline(source_label, pk)
        return
    from tasks.recording import record_source_change

    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        # A publish just failed: a request saving many rows must not pay one socket timeout per row.
        metrics.ENQUEUE_FAILURES.labels(source=source_label).inc()
        logger.warning("enqueue skipped for %s id=%s (broker failed under %.0fs ago); the catch-up sweep will record it",
                       source_label, pk, BROKER_DOWN_PAUSE_SECONDS)
        return
    try:
        record_source_change.apply_async((source_label, pk), retry=False)
    except Exception as exc:  # noqa: BLE001 - any broker failure must stay out of the request
        _broker_down_until = time.monotonic() + BROKER_DOWN_PAUSE_SECONDS
        metrics.ENQUEUE_FAILURES.labels(source=source_label).inc()
        logger.warning("enqueue failed for %s id=%s (%s: %s); the catch-up sweep will record it",
                       source_label, pk, type(exc).__name__, exc)


def _record_inline(source_label: str, pk: int) -> None:
    from activity.recording import record_events_for

    try:
        record_events_for(source_label, [pk])
    except Exception:  # noqa: BLE001 - the seeds' synchronous mode, kept for comparison: still never fail the request
        logger.exception("synchronous recording failed for %s id=%s; the catch-up sweep will record it", source_label, pk)
