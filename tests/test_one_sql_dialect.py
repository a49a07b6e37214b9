"""One SQL dialect: production code speaks PostgreSQL only (issue 11, item 3).

No vendor branch and no SQLite path may come back into production code, and the settings never fall back to
another database: unset, DATABASE_URL is the embedded PostgreSQL server's; any other scheme is refused at import.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Not production code: the suite, the benchmarks, and anything that is not the project's own (venv, VCS, servers).
NOT_PRODUCTION = {"tests", "bench", ".venv", ".git", ".embedded", "node_modules"}
FORBIDDEN = re.compile(r"connection\.vendor|\.vendor\s*==|\.vendor\s*!=|sqlite", re.IGNORECASE)


def production_sources(root: Path) -> list[Path]:
    found = []
    for directory, subdirs, files in os.walk(root):
        here = Path(directory)
        subdirs[:] = sorted(d for d in subdirs if not (here == root and d in NOT_PRODUCTION) and not d.startswith("."))
        found += [here / name for name in sorted(files) if name.endswith(".py")]
    return found


def dialect_branches(root: Path) -> list[str]:
    """`path:line: text` of every forbidden mention (comments included: a comment about SQLite is a stale promise)."""
    hits = []
    for path in production_sources(root):
        relative = path.relative_to(root).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if FORBIDDEN.search(line):
                hits.append(f"{relative}:{number}: {line.strip()}")
    return hits


def test_production_code_has_no_vendor_branch_and_no_sqlite_path():
    assert len(production_sources(ROOT)) > 100  # the walk really reads the project
    assert dialect_branches(ROOT) == []


def test_the_scan_finds_a_vendor_branch_or_a_sqlite_mention_anywhere_but_in_tests_and_benchmarks(tmp_path):
    (tmp_path / "stats").mkdir()
    (tmp_path / "stats" / "board.py").write_text('if connection.vendor == "postgresql":\n    pass\n')
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "conf.py").write_text("ok = 1\nif conn.vendor != 'x': pass\n# falls back to SQLite\n")
    for exempt in ("tests", "bench"):
        (tmp_path / exempt).mkdir()
        (tmp_path / exempt / "t.py").write_text("sqlite = connection.vendor\n")

    assert dialect_branches(tmp_path) == [
        "project/conf.py:2: if conn.vendor != 'x': pass",
        "project/conf.py:3: # falls back to SQLite",
        'stats/board.py:1: if connection.vendor == "postgresql":',
    ]


# --- settings, read in a fresh process (they are computed at import) ---------------------------------------------

PROBE = (
    "import json, django; django.setup(); from django.conf import settings; db = settings.DATABASES['default']; "
    "print(json.dumps({'engine': db['ENGINE'], 'user': db['USER'], 'host': db['HOST'], 'port': db['PORT'], "
    "'name': db['NAME'], 'describe': settings.BACKENDS_DESCRIPTION}))"
)
SETTINGS_VARS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY", "DEBUG", "EMBEDDED_PG_PORT")


def settings_in_a_process(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARS}
    clean.update(DJANGO_SETTINGS_MODULE="project.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def probed(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def embedded_url(port: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "EMBEDDED_PG_PORT"} | (
        {"EMBEDDED_PG_PORT": port} if port else {}
    )
    out = subprocess.run(
        [sys.executable, "-m", "project.embedded", "env"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return next(line.split("=", 1)[1] for line in out.splitlines() if line.startswith("export DATABASE_URL="))


def test_an_unset_database_url_is_the_embedded_postgresql_server():
    assert embedded_url() == "postgres://postgres@127.0.0.1:55432/activity"

    db = probed(settings_in_a_process())

    assert db["engine"] == "django.db.backends.postgresql"
    assert (db["user"], db["host"], db["port"], db["name"]) == ("postgres", "127.0.0.1", 55432, "activity")
    assert db["describe"].startswith("database: postgresql 127.0.0.1:55432/activity (embedded); ")


def test_the_embedded_default_follows_the_embedded_servers_port():
    assert embedded_url("55999") == "postgres://postgres@127.0.0.1:55999/activity"

    db = probed(settings_in_a_process(EMBEDDED_PG_PORT="55999"))

    assert db["port"] == 55999
    assert db["describe"].startswith("database: postgresql 127.0.0.1:55999/activity (embedded); ")


def test_a_configured_postgresql_url_is_described_without_the_embedded_mark():
    db = probed(
        settings_in_a_process(DATABASE_URL="postgresql://app:s3cret@db.internal:5433/ledger", SECRET_KEY="probe-secret")
    )

    assert (db["host"], db["port"], db["name"]) == ("db.internal", 5433, "ledger")
    assert db["describe"].startswith("database: postgresql db.internal:5433/ledger; ")
    assert "s3cret" not in db["describe"]


@pytest.mark.parametrize("url", ["sqlite:///db.sqlite3", "mysql://app@db/ledger"])
def test_a_database_url_of_another_scheme_is_refused_at_import(url):
    result = settings_in_a_process(DATABASE_URL=url, SECRET_KEY="probe-secret")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DATABASE_URL must be a PostgreSQL URL" in result.stderr and "PostgreSQL only" in result.stderr
