"""The Celery app, configured from Django settings (CELERY_* names)."""
from __future__ import annotations

import os

from celery import Celery
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
