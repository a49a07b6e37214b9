"""Statement timeouts by process role: web requests are bounded, long jobs are not.

The settings give every PostgreSQL connection `statement_timeout = DB_STATEMENT_TIMEOUT_MS` (5 s), right for a web
request. A Celery worker or a management command (backfill, reconciliation, import) runs statements that may
legitimately take longer, so it calls `use_job_timeouts()` once at start: every connection it opens from then on
runs `SET statement_timeout` to DB_JOB_STATEMENT_TIMEOUT_MS (0, none, by default). Still bounded for them: the lock
timeout, and the Celery task time limits.
"""
from __future__ import annotations

from django.conf import settings
from django.db import connections
from django.db.backends.signals import connection_created

_DISPATCH_UID = "project.db_timeouts.job"


def _set_job_timeout(sender, connection, **kwargs) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, false)", [str(settings.DB_JOB_STATEMENT_TIMEOUT_MS)])


def use_job_timeouts() -> None:
    """This process runs long jobs: its connections get DB_JOB_STATEMENT_TIMEOUT_MS instead of the web timeout."""
    connection_created.connect(_set_job_timeout, dispatch_uid=_DISPATCH_UID)
    if not settings.configured:
        return  # called before Django is set up (manage.py): no connection can be open yet
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.in_atomic_block:
            conn.close()  # reopened (with the job timeout) on next use

