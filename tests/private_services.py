"""Throwaway servers and connection strings for tests that must break something without touching shared services."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection

from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_database_url() -> str:
    """The pytest test database this process created (not the configured one), for subprocesses. Not named test_*:
    pytest would collect it as a test in every module that imports it."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class PrivateRedis:
    """A redis-server on its own port, started, stopped and hung by one test (the shared Redis is never touched)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        assert binary, "this test needs the redis-server binary (it runs a private broker it can stop)"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.answers, timeout=10, message=f"redis-server on port {self.port}")
        return self

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Connections refused from now on."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(10)

    def hang(self) -> None:
        """Connections accepted, never answered (SIGSTOP)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def broker_at(monkeypatch: pytest.MonkeyPatch, url: str) -> Iterator[Celery]:
    """dispatch publishes (and batching pushes) to `url` for the duration: a Celery app configured like the project's
    (same settings, short timeouts, queues) but on another broker, so a test can publish to a private, dead or hung
    broker without touching the shared one or the session worker's app."""
    from project.celery import app as project_app

    app = Celery("broker-at", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.broker_url = url
    app.conf.task_queues = project_app.conf.task_queues
    monkeypatch.setattr("dispatch.publish.current_app", app)
    monkeypatch.setattr(settings, "CELERY_BROKER_URL", url)
    try:
        yield app
    finally:
        app.close()


def run_outage_probe(
    match_pk: int,
    username: str,
    outage: str,
    *,
    before_outage: Callable[[PrivateRedis], None] | None = None,
    **env: str,
) -> tuple[dict, str]:
    """Run tests/broker_outage_probe.py (a web process) against a private Redis: it warms up through the live broker,
    then the broker is stopped or hung and the probe saves the match and posts it through the admin.
    Returns the probe's result and its stderr (the log)."""
    probe = None
    with PrivateRedis() as redis:
        try:
            environment = {
                **os.environ,
                "DATABASE_URL": subprocess_database_url(),
                "REDIS_URL": redis.url,
                "LOG_LEVEL": "INFO",
                **env,
            }
            environment.pop("CELERY_BROKER_URL", None)
            probe = subprocess.Popen(
                [sys.executable, str(ROOT / "tests" / "broker_outage_probe.py"), str(match_pk), username],
                env=environment,
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert probe.stdout is not None and probe.stderr is not None  # both are PIPE
            ready = probe.stdout.readline().strip()
            assert ready == "READY", probe.stderr.read()[-3000:] if probe.poll() is not None else "no READY"
            if before_outage:
                before_outage(redis)
            redis.stop() if outage == "stopped" else redis.hang()
            out, err = probe.communicate("go\n", timeout=60)
        finally:
            if probe is not None and probe.poll() is None:
                probe.kill()
    assert probe.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1]), err


class BlackHoleListener:
    """A TCP port that accepts connections and never answers (a hung PostgreSQL or Redis: paused, half-failed over,
    behind a dead proxy). Use as a context manager; `.port` is where to point the client."""

    def __init__(self) -> None:
        import threading

        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self._server.settimeout(0.1)
        self.port = self._server.getsockname()[1]
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:  # the accept timeout: look at the stop flag again
                continue
            self._held.append(conn)  # kept open, never read from or written to

    @property
    def accepted(self) -> int:
        """Connections accepted so far (each one a client that tried to talk to this "server")."""
        return len(self._held)

    def __enter__(self) -> BlackHoleListener:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self._held:
            conn.close()
        self._server.close()


def run_signup_processes(
    processes: int,
    per_process: int,
    *,
    database_url: str | None = None,
    without_public_ids: bool = False,
    prefix: str = "signup",
    timeout: float = 300,
) -> list[dict]:
    """Start `processes` sign-up processes (tests/public_id_signups.py), release them at once, return their reports."""
    environment = {**os.environ, "DATABASE_URL": database_url or subprocess_database_url(), "DB_CONN_MAX_AGE": "0"}
    extra = ["--without-public-ids"] if without_public_ids else []
    procs = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "public_id_signups.py"), f"{prefix}{p}-", str(per_process), *extra],
            env=environment,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(processes)
    ]
    try:
        for proc in procs:
            assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None  # all PIPE
            ready = proc.stdout.readline().strip()
            assert ready == "READY", proc.stderr.read()[-3000:]
        for proc in procs:  # every process is up: release them together
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        reports = []
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, err[-3000:]
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return reports
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
