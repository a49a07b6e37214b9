"""gunicorn settings read by the Procfile's web process (`--config python:project.gunicorn_conf`): the hooks that keep
the Prometheus multiprocess directory right (project/metrics_dir.py). Bind, workers and timeout stay on the command
line, where the Procfile shows them."""

from __future__ import annotations


def child_exit(server, worker) -> None:
    """A gunicorn worker exited: drop its live-mode gauge files (its counters stay: they were counted)."""
    from project import metrics_dir

    metrics_dir.mark_process_dead(worker.pid)
