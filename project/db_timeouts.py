"""Statement timeouts by process role: web requests are bounded, long jobs are not.

The settings start every PostgreSQL connection with `statement_timeout = DB_STATEMENT_TIMEOUT_MS` (5 s; libpq
`options`), right for a web request. A Celery worker or a management command (backfill, reconciliation, import)
runs statements that may legitimately take longer, so it calls `use_job_timeouts()` once at start: the connections it
opens from then on start with DB_JOB_STATEMENT_TIMEOUT_MS (0, none, by default) instead. It is a startup option, not
a later SET, so that code which bounds one statement with `SET LOCAL` and puts it back with `TO DEFAULT` (the
leaderboards) returns to the process's own value. Still bounded for jobs: the lock timeout and the task time limits.
"""

from __future__ import annotations

import os
import re

from django.conf import settings
from django.db import connections

_STATEMENT_TIMEOUT = re.compile(r"-c\s*statement_timeout=\S+")


def with_statement_timeout(options: str, timeout_ms: int) -> str:
    """libpq `options` with its statement_timeout replaced (or added)."""
    setting = f"-c statement_timeout={int(timeout_ms):d}"
    return (
        _STATEMENT_TIMEOUT.sub(setting, options)
        if _STATEMENT_TIMEOUT.search(options)
        else f"{options} {setting}".strip()
    )


def use_job_timeouts() -> None:
    """This process runs long jobs: its connections start with DB_JOB_STATEMENT_TIMEOUT_MS, not the web timeout."""
    if not settings.configured:
        # Before Django reads its settings (manage.py): they will compute the connection options from this.
        os.environ["DB_STATEMENT_TIMEOUT_MS"] = os.environ.get("DB_JOB_STATEMENT_TIMEOUT_MS") or "0"
        return
    for alias in settings.DATABASES:
        conn = connections[alias]
        for db in {id(d): d for d in (settings.DATABASES[alias], conn.settings_dict)}.values():
            options = db.setdefault("OPTIONS", {})
            options["options"] = with_statement_timeout(
                options.get("options", ""), settings.DB_JOB_STATEMENT_TIMEOUT_MS
            )
        if conn.connection is not None and not conn.in_atomic_block:
            conn.close()  # reopened with the job timeout on next use
