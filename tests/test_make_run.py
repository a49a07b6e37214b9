"""`make run` in a fresh copy: migrations first, then web, worker and beat under honcho on port 8000 (PORT=), on the
configured database even when a production `.env` sits in the checkout; stopping it stops all three."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

from tasks.schedules import SCHEDULES
from tests.private_services import free_port
from tests.test_demo import _fresh_copy

pytestmark = pytest.mark.slow


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def test_make_run_migrates_first_serves_on_its_port_and_ignores_a_production_env_file(tmp_path):
    clone = _fresh_copy(tmp_path / "clone")
    # What `cp .env.example .env` on a developer machine leaves behind: honcho would load it over the environment.
    (clone / ".env").write_text("DEBUG=0\nDATABASE_URL=postgres://nobody:x@127.0.0.1:1/nothing\nHTTPS_ONLY=1\n")
    db = settings.DATABASES["default"]
    admin = {
        "host": db["HOST"] or "127.0.0.1",
        "port": db["PORT"] or 5432,
        "user": db["USER"],
        "password": db["PASSWORD"] or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    name = f"activity_make_run_{os.getpid()}_{secrets.token_hex(3)}"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "SECRET_KEY", "HTTPS_ONLY")
    }
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}{password}@{admin['host']}:{admin['port']}/{name}",
        REDIS_URL=settings.CELERY_BROKER_URL,
        PORT=str(port),
    )
    with psycopg.connect(**admin) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    run = subprocess.Popen(
        ["make", "run", "INSTALL=", f"PY={sys.executable}"],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _status(f"http://127.0.0.1:{port}/healthz") != 200:
            assert run.poll() is None, run.stdout.read()[-4000:]
            assert time.monotonic() < deadline, "make run did not serve /healthz"
            time.sleep(0.5)
        # Plain HTTP, local DEBUG run, on the configured database (migrated before web started: the board reads it).
        assert _status(f"http://127.0.0.1:{port}/leaderboards/") == 200
        with psycopg.connect(**{**admin, "dbname": name}) as conn:
            # every schedule setup_schedules declares (beat, once up, adds Celery's own celery.backend_cleanup)
            stored = {
                row[0]
                for row in conn.execute("SELECT task FROM django_celery_beat_periodictask WHERE task LIKE 'tasks.%'")
            }
            assert stored == {schedule.task for schedule in SCHEDULES}
    finally:
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C
        try:
            output = run.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            output = run.communicate()[0]
        with psycopg.connect(**admin) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    assert "web.1 started" in output and "worker.1 started" in output and "beat.1 started" in output, output
    for role in ("web", "worker", "beat"):
        assert f"{role}.1 stopped" in output, output
