"""Thin tasks of the `maintenance` queue: take ids, call one service."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from activity import backfill, poison
from dispatch.names import TaskName


@shared_task(
    name=TaskName.RUN_BACKFILL_CHUNK,
    acks_late=True,
    autoretry_for=(
        OperationalError,
        InterfaceError,
    ),  # lock timeout, deadlock victim, lost connection: the chunk rolled back
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,  # then the run looks stalled and resume_stale_backfills re-enqueues it
)
def run_backfill_chunk(run_id: int, lane: int = 0, seq: int | None = None) -> str:
    """One chunk of a lane of backfill run `run_id`; the service enqueues the lane's next one after commit."""
    return backfill.run_backfill_chunk(int(run_id), int(lane), None if seq is None else int(seq)).value


@shared_task(name=TaskName.RESUME_STALE_BACKFILLS, acks_late=True)
def resume_stale_backfills() -> list[int]:
    """Periodic: re-enqueue backfill runs whose worker died (no committed chunk for BACKFILL_STALE_SECONDS)."""
    return backfill.resume_stale_backfills()


@shared_task(name=TaskName.RETRY_POISON_ROWS, acks_late=True, ignore_result=True)
def retry_poison_rows() -> dict:
    """Periodic: record again the poison rows whose backoff has expired; resolve those that now record."""
    return poison.retry_due_poison_rows().as_dict()
