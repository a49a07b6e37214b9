"""The Prometheus multiprocess directory: every process of a host (gunicorn workers, the Celery worker's pool
processes, beat, management commands) writes its samples there, and web's /metrics aggregates all of them, so one
scrape target shows the work done anywhere. Each process runs through `scripts/with-metrics-dir` (the Procfile does),
which sets PROMETHEUS_MULTIPROC_DIR before prometheus_client is imported; the release step empties the directory
(`--reset`) before the new processes start.

Imported by project/celery.py, hence by every Django process (project/__init__.py imports the Celery app), which also
registers the checks below.

Run as `python -m project.metrics_dir reset [DIR]`.
"""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

from django.core.checks import CheckMessage, Error, Tags, Warning, register

ENV = "PROMETHEUS_MULTIPROC_DIR"
# Where the last value of every "mostrecent" gauge (last reconciliation's drift and time, backfill progress) is kept
# across a reset: those are facts about the database, not about a process, and alerts such as ReconciliationOverdue
# must not fire because a deploy emptied the directory. No process has pid 0, so no live process writes this file.
CARRIED_OVER_FILE = "gauge_mostrecent_0.db"


def configured_dir() -> str | None:
    return os.environ.get(ENV) or None


def ensure_dir() -> None:
    """Create the configured directory (prometheus_client writes into it but never creates it)."""
    path = configured_dir()
    if path:
        os.makedirs(path, exist_ok=True)


def reset(path: str) -> int:
    """Empty `path` for a deploy (counters restart at zero, which Prometheus reads as a counter reset), keeping the
    latest value of each "mostrecent" gauge. Returns how many files were removed."""
    from prometheus_client.mmap_dict import MmapedDict

    os.makedirs(path, exist_ok=True)
    latest: dict[str, tuple[float, float]] = {}
    for name in glob.glob(os.path.join(path, "gauge_mostrecent_*.db")):
        for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(name):
            if key not in latest or timestamp > latest[key][1]:
                latest[key] = (value, timestamp)
    files = glob.glob(os.path.join(path, "*.db"))
    for name in files:
        os.remove(name)
    if latest:
        carried = MmapedDict(os.path.join(path, CARRIED_OVER_FILE))
        for key, (value, timestamp) in latest.items():
            carried.write_value(key, value, timestamp)
        carried.close()
    return len(files)


def mark_process_dead(pid: int) -> None:
    """Forget the live-mode gauge files of an exited process (gunicorn child_exit, Celery worker_process_shutdown)."""
    if configured_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


@register(Tags.security, deploy=True)
def check_metrics_token(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Production (DEBUG off) refuses to serve /metrics without a token; say so before the deploy, not at scrape."""
    from django.conf import settings

    if settings.DEBUG or settings.METRICS_TOKEN:
        return []
    return [
        Error(
            "METRICS_TOKEN is not set: /metrics answers 403 with DEBUG off.",
            hint="Set METRICS_TOKEN and give Prometheus the same value as its bearer token.",
            id="metrics.E001",
        )
    ]


@register(deploy=True)
def check_multiprocess_dir(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Without a shared directory web's /metrics shows only web's own work: the worker's counters read as zero."""
    from django.conf import settings

    path = configured_dir()
    if path and not Path(path).is_dir():
        return [Error(f"{ENV}={path} is not a directory.", id="metrics.E002")]
    if not path and not settings.DEBUG:
        return [
            Warning(
                f"{ENV} is not set: /metrics on web will not show the work of the worker, beat or commands.",
                hint="Run every process through scripts/with-metrics-dir (the Procfile does).",
                id="metrics.W001",
            )
        ]
    return []


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2) or argv[0] != "reset":
        print("usage: python -m project.metrics_dir reset [DIR]", file=sys.stderr)
        return 2
    path = argv[1] if len(argv) == 2 else configured_dir()
    if not path:
        print(f"{ENV} is not set and no directory was given", file=sys.stderr)
        return 2
    removed = reset(path)
    print(f"emptied {path} ({removed} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
