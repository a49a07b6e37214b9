"""Publishing a task: fail fast, never inside the caller's transaction, and a short pause after a broker failure.

kombu's Redis transport gets short socket timeouts from the settings (CELERY_BROKER_TRANSPORT_OPTIONS) and
`retry=False` here, so a dead broker costs one short timeout. After a failure this process skips publishing for
BROKER_DOWN_PAUSE_SECONDS: a request saving many rows pays one timeout, not one per row. Whatever is skipped is not
lost: the source tables are the outbox (the catch-up sweep), and the jobs that publish here resume from their rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction

from dispatch.names import TaskName, queue_of
from monitoring import metrics

logger = logging.getLogger(__name__)

BROKER_DOWN_PAUSE_SECONDS = 5.0
_paused_until = 0.0


class PublishFailed(RuntimeError):
    """The broker did not take the task (down, unreachable, or this process paused after such a failure)."""


def broker_paused() -> bool:
    """True for a few seconds after this process failed to reach the broker."""
    return time.monotonic() < _paused_until


def note_broker_failure() -> None:
    """Start the pause: called here, and by the batched enqueue when its Redis push fails (same broker)."""
    global _paused_until
    _paused_until = time.monotonic() + BROKER_DOWN_PAUSE_SECONDS


def reset_pause() -> None:
    """Forget a pause (tests; a process that knows the broker is back)."""
    global _paused_until
    _paused_until = 0.0


def publish(name: TaskName, *, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None) -> None:
    """Send one task to its queue now. Raises PublishFailed (and starts the pause) when the broker does not take it."""
    name = TaskName(name)
    if broker_paused():
        metrics.PUBLISH_FAILURES.labels(task=name.value).inc()
        raise PublishFailed(f"{name.value} not published: the broker failed under {BROKER_DOWN_PAUSE_SECONDS:.0f}s ago")
    if not settings.CELERY_BROKER_URL:
        # Celery would fall back to its default AMQP broker on localhost: a process with no broker configured fails
        # its publishes at once instead, as during an outage (the catch-up sweep and the jobs' rows recover the work).
        metrics.PUBLISH_FAILURES.labels(task=name.value).inc()
        raise PublishFailed(f"{name.value} not published: no broker configured (REDIS_URL / CELERY_BROKER_URL unset)")
    try:
        current_app.send_task(
            name.value, args=tuple(args), kwargs=kwargs or {}, queue=queue_of(name).value, retry=False
        )
    except Exception as exc:  # noqa: BLE001 - any transport error means "not published"
        note_broker_failure()
        metrics.PUBLISH_FAILURES.labels(task=name.value).inc()
        raise PublishFailed(f"{name.value} not published ({type(exc).__name__}: {exc})") from exc


def publish_quietly(
    name: TaskName, *, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, recovery: str
) -> bool:
    """publish(), but a failure is logged (with the task, its arguments and what will recover the work) instead of
    raised; True when published. For callers that must never fail on a broker outage (a request, a committed job)."""
    try:
        publish(name, args=args, kwargs=kwargs)
    except PublishFailed as exc:
        logger.warning("%s args=%s kwargs=%s; %s", exc, list(args), kwargs or {}, recovery)
        return False
    return True


def publish_on_commit(
    name: TaskName,
    *,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    recovery: str,
    using: str | None = None,
) -> None:
    """Publish once the current transaction commits (at once in autocommit), quietly: a worker must never see a
    task for rows it cannot read yet, and a rolled-back change publishes nothing."""
    transaction.on_commit(lambda: publish_quietly(name, args=args, kwargs=kwargs, recovery=recovery), using=using)
