"""The Celery app, configured from Django settings (CELERY_* names)."""
from __future__ import annotations

import os

from celery import Celery
from celery.signals import celeryd_init, worker_process_init
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (
    Queue("events", Exchange("events"), routing_key="events"),
    Queue("maintenance", Exchange("maintenance"), routing_key="maintenance"),
)
app.autodiscover_tasks(["tasks"], related_name="recording")
app.autodiscover_tasks(["tasks"], related_name="maintenance")
app.autodiscover_tasks(["tasks"], related_name="sweeps")
app.autodiscover_tasks(["tasks"], related_name="reconciliation")


@celeryd_init.connect
@worker_process_init.connect
def _long_job_timeouts(**kwargs) -> None:
    """Worker processes run long jobs: their connections get DB_JOB_STATEMENT_TIMEOUT_MS (project/db_timeouts.py).
    celeryd_init runs in the `celery worker` parent (solo and thread pools, inherited by forks); worker_process_init
    in each prefork child."""
    from project.db_timeouts import use_job_timeouts

    use_job_timeouts()
