"""Thin tasks of the `events` queue: take ids, call one service."""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from activity.events import InvalidEventError
from activity.recording import record_events_for
from activity.sources import UnknownSourceError

logger = logging.getLogger(__name__)


@shared_task(
    name="tasks.recording.record_source_change",
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
        row_id = int(pk)
        return len(record_events_for(source_label, [row_id]).inserted)
    except (UnknownSourceError, InvalidEventError, TypeError, ValueError) as exc:
        # Retrying cannot fix a bad payload: log which ids and drop it (no retry storm).
        logger.error("dropped record_source_change(%r, %r): %s", source_label, pk, exc)
        return 0
