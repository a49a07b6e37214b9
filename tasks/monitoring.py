"""Task failure and retry counters, from Celery's own signals (connected once, at app start, in every process)."""

from __future__ import annotations

from celery.signals import task_failure, task_retry

from monitoring import metrics


def _task_name(sender) -> str:
    return getattr(sender, "name", None) or str(sender)


def _on_task_failure(sender=None, **kwargs) -> None:
    metrics.TASK_FAILURES.labels(task=_task_name(sender)).inc()


def _on_task_retry(sender=None, **kwargs) -> None:
    metrics.TASK_RETRIES.labels(task=_task_name(sender)).inc()


def connect_task_metrics() -> None:
    task_failure.connect(_on_task_failure, weak=False, dispatch_uid="monitoring.task_failure")
    task_retry.connect(_on_task_retry, weak=False, dispatch_uid="monitoring.task_retry")
