"""The Celery app, configured from Django settings (CELERY_* names)."""

from __future__ import annotations

import os
import sys

from celery import Celery, signals
from kombu import Exchange, Queue

from dispatch import names
from project import metrics_dir

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# Before any metric exists: prometheus_client writes into the shared directory but never creates it.
metrics_dir.ensure_dir()

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = tuple(Queue(q.value, Exchange(q.value), routing_key=q.value) for q in names.Queue)
app.autodiscover_tasks(["tasks"], related_name="recording")
app.autodiscover_tasks(["tasks"], related_name="maintenance")
app.autodiscover_tasks(["tasks"], related_name="sweeps")
app.autodiscover_tasks(["tasks"], related_name="reconciliation")
app.autodiscover_tasks(["tasks"], related_name="audit_integrity")


@signals.worker_process_shutdown.connect(weak=False, dispatch_uid="project.celery.metrics_process_dead")
def _forget_pool_process_gauges(pid=None, **kwargs) -> None:
    """A pool process exiting (max-tasks-per-child, autoscale, shutdown) drops its live-mode gauge files."""
    metrics_dir.mark_process_dead(pid or os.getpid())


@signals.celeryd_init.connect
@signals.beat_init.connect
def _refuse_without_broker(**_kwargs) -> None:
    """A worker or beat without REDIS_URL/CELERY_BROKER_URL would silently dial Celery's default AMQP broker and retry
    forever (a web process without one fails its publishes fast instead: dispatch.publish). SystemExit, not an
    exception: Celery logs and swallows exceptions raised by signal receivers."""
    from django.conf import settings

    if not settings.CELERY_BROKER_URL:
        sys.stderr.write(
            "ERROR: no broker configured: set REDIS_URL (or CELERY_BROKER_URL) before starting a Celery "
            "worker or beat (`make run` and `make demo` set it for the embedded stack).\n"
        )
        raise SystemExit(2)


@signals.celeryd_init.connect
@signals.worker_process_init.connect
def _long_job_timeouts(**kwargs) -> None:
    """Worker processes run long jobs: their connections get DB_JOB_STATEMENT_TIMEOUT_MS (project/db_timeouts.py).
    celeryd_init runs in the `celery worker` parent (solo and thread pools, inherited by forks); worker_process_init
    in each prefork child."""
    from project.db_timeouts import use_job_timeouts

    use_job_timeouts()
