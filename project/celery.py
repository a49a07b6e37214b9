"""The Celery app, configured from Django settings (CELERY_* names)."""
from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_shutdown
from kombu import Exchange, Queue

from project import metrics_dir

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# Before any metric exists: prometheus_client writes into the shared directory but never creates it.
metrics_dir.ensure_dir()

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


@worker_process_shutdown.connect(weak=False, dispatch_uid="project.celery.metrics_process_dead")
def _forget_pool_process_gauges(pid=None, **kwargs) -> None:
    """A pool process exiting (max-tasks-per-child, autoscale, shutdown) drops its live-mode gauge files."""
    metrics_dir.mark_process_dead(pid or os.getpid())
