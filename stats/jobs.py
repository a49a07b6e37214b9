"""Starting the projection's maintenance jobs from a request (the admin): publish by task name through dispatch
(stats never imports tasks nor Celery). No broker, or a broker down, is reported to the operator, never a 500."""

from __future__ import annotations

import logging
from typing import Any

from dispatch.names import TaskName
from dispatch.publish import PublishFailed, publish

logger = logging.getLogger(__name__)


class EnqueueFailed(RuntimeError):
    """The broker did not take the task (it is down, unreachable or not configured)."""


def start_reconciliation(*, fix: bool, trigger: str = "admin") -> str:
    """Queue a full reconciliation; returns a sentence for the operator. Raises EnqueueFailed when the broker is
    down."""
    _publish(TaskName.RECONCILE_STATS, {"fix": fix, "trigger": trigger})
    return "Reconciliation queued on the maintenance queue; its run appears in this list when a worker starts it."


def start_recompute_stale() -> str:
    """Queue the recompute of the users marked stale; raises EnqueueFailed when the broker is down."""
    _publish(TaskName.RECOMPUTE_STALE, {})
    return "The recompute job was queued; the marked users are recomputed within seconds."


def _publish(name: TaskName, kwargs: dict[str, Any]) -> None:
    try:
        publish(name, kwargs=kwargs)
    except PublishFailed as exc:  # publish() counted it; the admin says so to the operator
        logger.warning("could not enqueue %s: %s", name.value, exc)
        cause = type(exc.__cause__).__name__ if exc.__cause__ else "no broker or paused after a failure"
        raise EnqueueFailed(f"the broker is unreachable ({cause}); try again later") from exc
