"""Handing a committed source change to the recorder without ever failing or slowing the request.

One way only: a change is published to a worker (dispatch), or, in ACTIVITY_ENQUEUE_MODE="batch", handed to this
process' sender thread (tasks/handoff.py), which appends it to the Redis pending list (tasks/batching.py) with a drain
published when none is scheduled. A process with no broker
configured fails these publishes at once, exactly as during a broker outage: logged with the ids, counted in
ENQUEUE_FAILURES, and recorded later by the catch-up sweep (the source tables are the outbox).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings

from dispatch.names import TaskName
from dispatch.publish import BROKER_DOWN_PAUSE_SECONDS, broker_paused, note_broker_failure, publish, publish_quietly
from monitoring import metrics
from tasks import batching, handoff
from tasks.recording import publish_drain

logger = logging.getLogger(__name__)


def enqueue_source_change(source_label: str, pk: int) -> None:
    """Called after commit. Publishes one task, or in batch mode hands the row to this process' sender thread
    (tasks/handoff.py: the Redis push happens off the request thread, so the request pays no GIL wait after socket
    I/O). If the broker is unreachable this fails fast (short socket timeouts, no retries), is logged with the ids,
    and the request carries on. After a failure the process skips publishing for BROKER_DOWN_PAUSE_SECONDS
    (dispatch's pause, shared with every other publisher): a hung broker costs one socket timeout per pause, not one
    per saved row."""
    if broker_paused():
        _skipped(source_label, pk)
        return
    if settings.ACTIVITY_ENQUEUE_MODE == "batch":
        if settings.CELERY_BROKER_URL:
            _sender.hand_off(source_label, pk)
        else:  # known without any I/O: fail here, in the caller, as a push would
            note_broker_failure()
            _failed(
                source_label,
                pk,
                batching.NoBrokerConfigured("no broker configured (REDIS_URL / CELERY_BROKER_URL unset)"),
            )
        return
    try:
        publish(TaskName.RECORD_SOURCE_CHANGE, args=(source_label, pk))
    except Exception as exc:  # noqa: BLE001 - any broker failure must stay out of the request
        note_broker_failure()  # publish() started the pause itself; harmless to restart it
        _failed(source_label, pk, exc)


def flush_handed_off() -> int:
    """Push the rows this process handed off and not yet pushed, now, in the calling thread (after a push under way);
    returns how many. For a caller that must know they are on Redis (a test, a probe, a command about to exit)."""
    return _sender.flush()


def _push_handed_off(items: list[tuple[str, int]]) -> None:
    """The sender thread's delivery: one pipelined push for everything handed off since the last, then a drain if none
    is scheduled. Failures are handled as the request path handled them: logged with the ids, counted, the pause."""
    if broker_paused():  # the broker failed since these were handed off
        for source_label, pk in items:
            _skipped(source_label, pk)
        return
    try:
        if batching.push_pending_many([batching.entry(label, pk) for label, pk in items]):
            publish_drain()
    except Exception as exc:  # noqa: BLE001 - any broker failure: the catch-up sweep records these rows
        # publish() started the pause itself; a failed Redis push (same broker) starts it here.
        note_broker_failure()
        for source_label, pk in items:
            _failed(source_label, pk, exc)


_sender = handoff.Sender(
    _push_handed_off, name="activity-enqueue", gather_seconds=settings.ACTIVITY_HANDOFF_GATHER_MS / 1000
)


def _skipped(source_label: str, pk: int) -> None:
    metrics.ENQUEUE_FAILURES.labels(source=source_label).inc()
    logger.warning(
        "enqueue skipped for %s id=%s (broker failed under %.0fs ago); the catch-up sweep will record it",
        source_label,
        pk,
        BROKER_DOWN_PAUSE_SECONDS,
    )


def _failed(source_label: str, pk: int, exc: Exception) -> None:
    metrics.ENQUEUE_FAILURES.labels(source=source_label).inc()
    logger.warning(
        "enqueue failed for %s id=%s (%s: %s); the catch-up sweep will record it",
        source_label,
        pk,
        type(exc).__name__,
        exc,
    )


def enqueue_team_entries(team_id: int, joined_at: datetime | str, left_at: datetime | str | None) -> bool:
    """Called after commit of a membership change: one task re-derives the team's entries it touches (queries and
    recording in the worker, not in the request). Quiet on failure; True when published."""
    return publish_quietly(
        TaskName.RECORD_TEAM_ENTRIES,
        args=(team_id, _iso(joined_at), _iso(left_at) if left_at else None),
        recovery="the nightly reconciliation's sources pass re-derives the team's entries",
    )


def _iso(value: datetime | str) -> str:
    """The message carries text (JSON); a model field assigned a string before save() is passed through as is."""
    return value if isinstance(value, str) else value.isoformat()
