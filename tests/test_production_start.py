"""README "Running in production", followed literally in a fresh copy of the checkout: a database and its owner
created, `.env` copied from `.env.example` with the CHANGE_ME placeholders replaced, the Procfile's `release` run by
honcho, then its `web` (gunicorn, DEBUG off, HTTPS-only behind a proxy) serving a page and a static file."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

from tasks.schedules import SCHEDULES
from tests.private_services import free_port
from tests.test_demo import _fresh_copy

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# The variables settings.py reads that .env.example need not list: modes the one-path issue removes.
UNDOCUMENTED = {"SQLITE_PATH", "ACTIVITY_RECORDING"}


def _env_file(example: str, values: dict[str, str]) -> str:
    """.env.example with the given variables set; every placeholder must be among them."""
    lines = []
    for line in example.splitlines():
        name = line.split("=", 1)[0]
        if not line.startswith("#") and "=" in line and name in values:
            line = f"{name}={values[name]}"
        lines.append(line)
    text = "\n".join(lines) + "\n"
    left = [line for line in text.splitlines() if "CHANGE_ME" in line and not line.startswith("#")]
    assert not left, f"placeholders the README's steps do not set: {left}"
    return text


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_env_example_documents_every_variable_settings_reads():
    source = (ROOT / "project" / "settings.py").read_text()
    read = set(re.findall(r"""(?:environ\.get|env_int|env_bool|getenv)\(\s*["']([A-Z][A-Z0-9_]+)["']""", source))
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    assert read and read - UNDOCUMENTED <= documented, sorted(read - UNDOCUMENTED - documented)
    procfile = set(re.findall(r"\$\{([A-Z_]+)", (ROOT / "Procfile").read_text()))
    assert procfile <= documented, sorted(procfile - documented)


def test_release_then_web_from_the_procfile_serve_a_page_and_a_static_file(tmp_path):
    clone = _fresh_copy(tmp_path / "clone")
    assert not (clone / ".env").exists() and not (clone / "staticfiles").exists()
    db = settings.DATABASES["default"]
    admin = {
        "host": db["HOST"] or "127.0.0.1",
        "port": db["PORT"] or 5432,
        "user": db["USER"],
        "password": db["PASSWORD"] or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    name, password = f"activity_prod_start_{os.getpid()}", secrets.token_hex(12)
    port = free_port()
    token = secrets.token_urlsafe(32)
    (clone / ".env").write_text(
        _env_file(
            (clone / ".env.example").read_text(),
            {
                "SECRET_KEY": secrets.token_urlsafe(50),
                "DATABASE_URL": f"postgres://{name}:{password}@{admin['host']}:{admin['port']}/{name}",
                "REDIS_URL": settings.CELERY_BROKER_URL,
                "ALLOWED_HOSTS": "127.0.0.1",
                "CSRF_TRUSTED_ORIGINS": f"https://127.0.0.1:{port}",
                "METRICS_TOKEN": token,
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
                "PORT": str(port),
                "WEB_CONCURRENCY": "1",
            },
        )
    )
    # A fresh shell: only the venv on PATH (`. .venv/bin/activate`); nothing the suite set may leak into the processes.
    env = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "LC_ALL", "TMPDIR")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    honcho = [sys.executable, "-m", "honcho"]

    with psycopg.connect(**admin) as conn:  # README: createuser --pwprompt; createdb --owner
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(name), sql.Literal(password)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(name)))
    web = None
    try:
        release = subprocess.run(
            [*honcho, "start", "release"], cwd=clone, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert release.returncode == 0, release.stdout[-4000:] + release.stderr[-4000:]
        assert f"schedules: {len(SCHEDULES)} entries" in release.stdout
        assert (clone / "staticfiles" / "staticfiles.json").exists()

        web = subprocess.Popen(
            [*honcho, "start", "web"],
            cwd=clone,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, body = _get(f"{base}/healthz")
                break
            except OSError:
                assert web.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.3)
        assert status == 200 and b'"database": {"ok": true}' in body, body

        status, headers, _ = _get(f"{base}/leaderboards/")
        assert status == 301 and headers["Location"].startswith("https://")  # HTTPS_ONLY: plain HTTP is redirected
        proxied = {"X-Forwarded-Proto": "https"}  # what the TLS-terminating proxy adds
        status, _, page = _get(f"{base}/leaderboards/", **proxied)
        assert status == 200 and b"<html" in page.lower()
        status, _, login = _get(f"{base}/admin/login/", **proxied)
        assert status == 200
        css = re.search(rb'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', login)
        assert css, "the admin page links the hashed name collectstatic wrote"
        status, headers, body = _get(base + css.group(1).decode(), **proxied, **{"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Type"].startswith("text/css")
        assert headers.get("Content-Encoding") == "gzip" and "immutable" in headers["Cache-Control"]
        status, _, _ = _get(f"{base}/metrics", Authorization=f"Bearer {token}")
        assert status == 200
    finally:
        if web is not None:
            os.killpg(web.pid, signal.SIGTERM)  # honcho and the gunicorn it started: their own session
            try:
                web.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(web.pid, signal.SIGKILL)
                web.wait()
        with psycopg.connect(**admin) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
