"""Benchmarks run against a database of their own (created and migrated here) and the Redis named by REDIS_URL.

Import this before anything that touches Django: it points DATABASE_URL at the benchmark database, then sets up.
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


DEFAULT_SERVER_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def database_url_on_server(name: str) -> str:
    """The URL of database `name` on the PostgreSQL server DATABASE_URL points at (the system server when unset; the
    embedded one when `make test` runs on it), with the same credentials."""
    base = os.environ.get("DATABASE_URL") or DEFAULT_SERVER_URL
    return urlsplit(base)._replace(path=f"/{name}").geturl()


def use_bench_database(default_name: str = "activity_bench") -> str:
    """Create (if missing) and migrate the benchmark database, set Django up on it; returns its URL.

    The server and credentials come from DATABASE_URL; the database name from BENCH_DATABASE_NAME or `default_name`.
    """
    import psycopg

    base = os.environ.get("DATABASE_URL") or DEFAULT_SERVER_URL
    if not os.environ.get("REDIS_URL") and not os.environ.get("CELERY_BROKER_URL"):
        sys.exit("set REDIS_URL (e.g. redis://127.0.0.1:6379/2): the benchmarks go through a real Redis broker")
    parts = urlsplit(base)
    if not parts.scheme.startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL server: the benchmarks measure the production setup")
    name = os.environ.get("BENCH_DATABASE_NAME", default_name)
    url = database_url_on_server(name)
    with psycopg.connect(database_url_on_server("postgres"), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # per-event INFO lines would be part of what is measured
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return url


@contextmanager
def without_statement_timeout():
    """Data building is a job, not a request: lift the web statement timeout (5 s) on this connection meanwhile; the
    figures after it are measured under the timeout the site runs with."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")  # back to the connection's startup option


def public_id_sql(created_at: datetime, count: int, row_number: str) -> str:
    """Reserve `count` public IDs for profiles created at `created_at` and return the SQL expression that spells the
    ID of row `row_number` (an expression numbering the inserted rows 1..count), for set-based INSERT .. SELECT.

    The numbers come from the year's counter like every other creator's (esports.profiles.public_ids.reserve_block,
    one block), so the IDs are those format_public_id gives and the year's counter stays gapless. Call it inside the
    transaction that inserts the rows: the reservation is rolled back with them.
    """
    from esports.profiles.public_ids import PREFIX, creation_year, reserve_block

    year = creation_year(created_at)
    before = reserve_block(year, count).start - 1  # ints from the counter: safe to inline in the statement
    number = f"({before} + ({row_number}))"
    # format_public_id in SQL: six digits zero-padded, more (never a leading zero) past 999,999.
    digits = f"CASE WHEN {number} < 1000000 THEN lpad({number}::text, 6, '0') ELSE {number}::text END"
    return f"'{PREFIX}-{year % 100:02d}-' || {digits}"


def percentile(values, q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
