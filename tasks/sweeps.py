"""The catch-up sweep task (beat, every minute, queue `events`: it is what bounds the delay of a lost task)."""

from __future__ import annotations

import logging

import redis
from celery import shared_task
from django.conf import settings

from activity import catchup
from dispatch.names import TaskName
from dispatch.publish import PublishFailed
from tasks import batching
from tasks.recording import schedule_drain

logger = logging.getLogger(__name__)


@shared_task(name=TaskName.CATCH_UP, acks_late=True, ignore_result=True)
def catch_up() -> dict:
    """Re-derive the source rows changed since each source's watermark; record what live tasks missed; and put back
    the batches of drains that died, so they do not wait for the next saved row."""
    report = catchup.sweep().as_dict()
    report["requeued_inflight"] = _recover_dead_drains()
    return report


def _recover_dead_drains() -> int:
    if settings.ACTIVITY_ENQUEUE_MODE != "batch":
        return 0
    try:
        requeued = batching.requeue_stale()
        if requeued or batching.pending_count():
            schedule_drain()
    except (redis.RedisError, PublishFailed) as exc:
        # The sweep itself already ran; the next one retries this.
        logger.warning("catch-up: could not check the batch lists (%s: %s)", type(exc).__name__, exc)
        return 0
    if requeued:
        logger.warning("catch-up: put %d entries of dead drains back on the pending list", requeued)
    return requeued
