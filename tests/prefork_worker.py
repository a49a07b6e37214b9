"""A real `celery worker` OS process with the prefork pool (as the Procfile runs it) on the test database and this
run's Redis DB, for tests that kill its pool process or read what it wrote outside the test process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from tests.private_services import subprocess_database_url

ROOT = Path(__file__).resolve().parent.parent


class PreforkWorker:
    """`celery -A project worker -Q <queue> -c 1 --pool prefork`, or another command line (`command`, run by sh as
    a Procfile line is); its output goes to `log`."""

    def __init__(self, log: Path, *, queue: str = "events", command: str | None = None, **env: str) -> None:
        self.log = log
        environment = {
            **os.environ,
            "DATABASE_URL": subprocess_database_url(),
            "REDIS_URL": django_settings.CELERY_BROKER_URL,
            "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
            "DB_CONN_MAX_AGE": "0",
            **env,
        }
        argv = (
            ["sh", "-c", f"exec {command}"]
            if command
            else [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "project",
                "worker",
                "-Q",
                queue,
                "-c",
                "1",
                "--pool",
                "prefork",
                "-n",
                f"prefork-{os.getpid()}@%h",
                "-l",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )
        self.process = subprocess.Popen(argv, cwd=ROOT, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT)

    def pool_processes(self) -> list[int]:
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        except FileNotFoundError:
            return []
        return [int(pid) for pid in children]

    def kill(self) -> None:
        """SIGKILL the main process and its pool processes, as when the worker's host dies: nothing acks, rejects or
        redelivers the task it was executing (Redis hands it back only after the visibility timeout)."""
        pool = self.pool_processes()
        self.process.send_signal(signal.SIGKILL)
        for pid in pool:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert self.process.wait(10) == -signal.SIGKILL

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def only_our_worker_consumes_events(celery_session_worker, celery_app):
    """The in-process session worker stops taking `events` tasks meanwhile: they must reach the subprocess."""
    target = [celery_session_worker.hostname]
    assert celery_app.control.cancel_consumer("events", destination=target, reply=True, timeout=5)
    yield
    celery_app.control.add_consumer("events", destination=target, reply=True, timeout=5)
