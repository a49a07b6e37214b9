"""Starting the projection's maintenance jobs from a request (the admin): publish by task name on the maintenance
queue (stats never imports tasks), or run the service in process on the embedded default (no broker)."""
from __future__ import annotations

import logging

from celery import current_app

from stats.reconcile import run_reconciliation
from stats.stale import recompute_stale_stats

logger = logging.getLogger(__name__)

QUEUE = "maintenance"
RECONCILE_TASK = "tasks.reconciliation.reconcile_stats"
RECOMPUTE_STALE_TASK = "tasks.reconciliation.recompute_stale"


class EnqueueFailed(RuntimeError):
    """The broker did not take the task (it is down or unreachable)."""


def _in_process() -> bool:
    return bool(current_app.conf.task_always_eager)


def start_reconciliation(*, fix: bool, trigger: str = "admin") -> str:
    """Queue a full reconciliation; returns a sentence for the operator. Raises EnqueueFailed when the broker is down."""
    if _in_process():
        run = run_reconciliation(fix=fix, trigger=trigger)
        return f"Reconciliation #{run.pk} ran in process: {run.users_drifted} drifted user(s) of {run.users_checked}."
    _send(RECONCILE_TASK, {"fix": fix, "trigger": trigger})
    return "Reconciliation queued on the maintenance queue; its run appears in this list when a worker starts it."


def start_recompute_stale() -> str:
    if _in_process():
        report = recompute_stale_stats()
        return f"Recomputed {report.users_recomputed} user(s) in process."
    _send(RECOMPUTE_STALE_TASK, {})
    return "The recompute job was queued; the marked users are recomputed within seconds."


def _send(name: str, kwargs: dict) -> None:
    try:
        current_app.send_task(name, kwargs=kwargs, queue=QUEUE, retry=False)
    except Exception as exc:  # noqa: BLE001 - reported to the operator, never a 500
        logger.warning("could not enqueue %s (%s: %s)", name, type(exc).__name__, exc)
        raise EnqueueFailed(f"the broker is unreachable ({type(exc).__name__}); try again later") from exc
