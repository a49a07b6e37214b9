"""The seeds' synchronous recording, kept as the benchmarks' baseline (never a production setting): while enabled,
the receivers' after-commit hook records the saved row inline, in the request, through the same service the worker
calls, instead of enqueueing it. It never fails the request (a failure is logged; the catch-up sweep records the
row), as the seeds' mode did."""

from __future__ import annotations

import logging
from collections.abc import Callable

from activity.recording import record_events_for
from tasks import receivers
from tasks.enqueue import enqueue_source_change

logger = logging.getLogger(__name__)


def record_inline(source_label: str, pk: int) -> None:
    try:
        record_events_for(source_label, [pk])
    except Exception:  # noqa: BLE001 - the seeds' synchronous mode, kept for comparison: still never fail the request
        logger.exception(
            "synchronous recording failed for %s id=%s; the catch-up sweep will record it", source_label, pk
        )


def enable() -> None:
    """From now on (this process) saved rows are recorded inline after commit."""
    receivers.enqueue_source_change = record_inline


def disable() -> None:
    """Back to production: saved rows are enqueued after commit."""
    receivers.enqueue_source_change = enqueue_source_change


def enabled() -> bool:
    hook: Callable[[str, int], None] = receivers.enqueue_source_change
    return hook is record_inline
