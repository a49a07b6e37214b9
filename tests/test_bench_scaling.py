"""bench/scaling.py and bench/sources_pass.py, at a tiny size, run to their reports (the same harness as
tests/test_bench_runs.py: a database of their own on the test server, dropped afterwards)."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from tests.private_services import subprocess_database_url
from tests.test_bench_runs import run_bench, scratch_database

pytestmark = pytest.mark.slow


def broker_of_its_own(url: str) -> str:
    """The test broker's server on another database number: the benchmark's backfill purges its broker and its
    workers take any maintenance task, so sharing the suite's broker with the suite's session worker would let that
    worker run the benchmark's chunks against the test database (and the benchmark would wait for them forever)."""
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0)
    return parts._replace(path=f"/{(number + 1) % 16}").geturl()


def scaling_env(prefix: str) -> dict[str, str]:
    """bench/scaling.py's environment: the test server (each size's database named after `prefix`), a broker of its
    own."""
    return {
        "DATABASE_URL": admin_url(),
        "BENCH_DATABASE_NAME": prefix,
        "REDIS_URL": broker_of_its_own(settings.CELERY_BROKER_URL),
        "CELERY_BROKER_URL": broker_of_its_own(settings.CELERY_BROKER_URL),
    }


def admin_url() -> str:
    return urlsplit(subprocess_database_url())._replace(path="/postgres").geturl()


def test_the_scaling_benchmark_prints_its_table_and_drops_its_databases() -> None:
    prefix = f"{connection.settings_dict['NAME']}_scalingbench"
    sizes = (1500, 3000)
    try:
        result = run_bench(
            "scaling.py",
            ["--events", ",".join(map(str, sizes)), "--iterations", "10", "--lanes", "1"],
            scaling_env(prefix),
        )
    finally:
        with psycopg.connect(admin_url(), autocommit=True) as admin:
            left = [
                name
                for (name,) in admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [prefix + "%"])
            ]
            for name in left:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    assert left == [], left  # the benchmark drops each size's database itself
    report = result.stdout[-4000:] + result.stderr[-3000:]
    table = result.stdout[result.stdout.index("=== cost curves") :]
    for line in (
        "backfill, 1 lane(s)",
        "rating replays after the backfill",
        "nightly reconciliation (repair)",
        "sources -> ledger, side by side",
        "wallets, stats, side by side",
        "full reconciliation (every row)",
        "of which sources -> ledger",
        "recompute all stats",
        "economy pass",
        "audit_verify_integrity",
        "timeline first page p50",
        "stats lookup, cached p50",
        "leaderboard top 100, uncached p50",
        "profile page, anonymous, cold p50",
        "profile page, anonymous, cached p50",
        "growth / events growth",
    ):
        assert line in table, report


def test_a_kept_platform_gives_its_read_figures_alone() -> None:
    prefix = f"{connection.settings_dict['NAME']}_scalingreads"
    env, size = scaling_env(prefix), ["--events", "1500", "--iterations", "10", "--lanes", "1"]

    def drop_kept() -> None:
        with psycopg.connect(admin_url(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{prefix}_1500" WITH (FORCE)')

    drop_kept()  # a crashed earlier run's
    try:
        empty = run_bench("scaling.py", [*size, "--reads-only", "--keep"], env, check=False)
        assert empty.returncode != 0 and "run this size with --keep first" in empty.stderr, empty.stderr[-2000:]
        run_bench("scaling.py", [*size, "--keep"], env)
        result = run_bench("scaling.py", [*size, "--reads-only", "--keep"], env)
    finally:
        drop_kept()
    table = result.stdout[result.stdout.index("=== cost curves") :]
    assert "kept platform: " in result.stdout, result.stdout[-3000:]
    assert "timeline first page p50" in table and "profile page, anonymous, cached p50" in table, table
    assert "backfill" not in table and "recompute" not in table, table  # no job ran


def test_the_sources_pass_benchmark_runs_to_its_report() -> None:
    with scratch_database("sourcesbench") as url:
        server = urlsplit(url)
        result = run_bench(
            "sources_pass.py",
            ["--users", "40", "--tournaments", "2", "--repeat", "1", "--keep"],
            {"DATABASE_URL": server._replace(path="/postgres").geturl(), "BENCH_DATABASE_NAME": server.path[1:]},
        )
    report = result.stdout[-3000:] + result.stderr[-3000:]
    for line in ("sources -> ledger, report only: now", "sources -> ledger, repair: now", "ratio before/now"):
        assert line in result.stdout, report
