"""bench/read_path.py and bench/reconcile.py, at a tiny size, run to their reports. Both generate their profiles with
raw, set-based SQL, which the public-ID guard trigger refuses unless every profile carries an ID: they once created
them without one and failed before printing anything. Each runs in a database of its own, dropped afterwards; before
it is dropped, its profiles' IDs are checked to be exactly the year's counter block 1..n, as every other creator's."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import psycopg
import pytest
from django.db import connection

from esports.profiles.public_ids import format_public_id
from tests.private_services import ROOT, subprocess_database_url

pytestmark = pytest.mark.slow


@contextmanager
def scratch_database(suffix: str) -> Iterator[str]:
    """The URL of a fresh, empty database on the test server (its name contains 'bench'), dropped on the way out."""
    name = f"{connection.settings_dict['NAME']}_{suffix}"
    server = urlsplit(subprocess_database_url())
    admin_url = server._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_bench(
    script: str, args: list[str], env: dict[str, str], *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        env={**os.environ, "DB_CONN_MAX_AGE": "0", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def assert_public_ids_are_one_block(database_url: str, users: int) -> None:
    """Every generated profile has an ID, and together they are the creation year's numbers 1..users."""
    with psycopg.connect(database_url) as db:
        rows = db.execute(
            "SELECT public_id, EXTRACT(YEAR FROM created_at AT TIME ZONE 'UTC')::int FROM profiles_userprofile"
        ).fetchall()
        counter: dict[int, int] = dict(db.execute("SELECT year, last_value FROM profiles_publicidcounter").fetchall())
    years = {year for _, year in rows}
    assert len(rows) == users and len(years) == 1, (len(rows), years)
    (year,) = years
    assert sorted(public_id for public_id, _ in rows) == sorted(format_public_id(year, n) for n in range(1, users + 1))
    assert counter == {year: users}  # the block came from the counter: the next sign-up of that year follows it


def test_the_read_path_benchmark_runs_to_its_report() -> None:
    users = 200  # the benchmark samples 200 profiles
    with scratch_database("readbench") as url:
        server = urlsplit(url)
        result = run_bench(
            "read_path.py",
            ["--users", str(users), "--iterations", "25"],
            {"DATABASE_URL": server._replace(path="/postgres").geturl(), "BENCH_DATABASE_NAME": server.path[1:]},
        )
        assert_public_ids_are_one_block(url, users)
    report = result.stdout[-3000:] + result.stderr[-3000:]
    for line in (
        "timeline first page, anonymous viewer",
        "stats lookup, cached",
        "win_rate per game, uncached",
        "rating board chess, min_matches 10",
        "feed first page, 10 followees",
        "feed tenth page, 199 followees",
        "profile page, anonymous, uncached",
        "profile page, signed in",
    ):
        assert line in result.stdout, report


def test_the_reconcile_benchmark_runs_to_its_report() -> None:
    users = 60
    with scratch_database("reconcilebench") as url:
        result = run_bench(
            "reconcile.py",
            ["--users", str(users), "--events", "1200", "--sample", "20", "--repeat", "1"],
            {"DATABASE_URL": url},
        )
        assert_public_ids_are_one_block(url, users)
    report = result.stdout[-3000:] + result.stderr[-3000:]
    for line in ("ledger -> stats (report only)", "both passes with repair", "seeds' per-user loop", "ratio:"):
        assert line in result.stdout, report


def test_the_audit_benchmark_runs_to_its_report() -> None:
    with scratch_database("auditbench") as url:
        server = urlsplit(url)
        result = run_bench(
            "audit.py",
            ["--writes", "40", "--threads", "2", "--rows", "3000", "--repeats", "1"],
            {"DATABASE_URL": server._replace(path="/postgres").geturl(), "BENCH_DATABASE_NAME": server.path[1:]},
        )
    report = result.stdout[-3000:] + result.stderr[-3000:]
    for line in ("ratio chained/plain", "audit_verify_integrity over 3,000 rows", "dropped"):
        assert line in result.stdout, report
