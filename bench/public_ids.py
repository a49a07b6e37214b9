"""Benchmark: the cost of public IDs. Prints sign-ups/s with and without assignment, and the backfill rate.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/3 \\
        .venv/bin/python bench/public_ids.py [--processes 4] [--signups 300] [--profiles 100000] [--keep]

Runs in a database of its own (`activity_public_ids_bench`, dropped at the end unless --keep):
1. sign-ups: `--processes` processes (tests/public_id_signups.py) released at once, each creating `--signups` users
   one transaction each, first without assignment (the guard trigger disabled, profiles left without an ID), then
   with it; the ratio is the price of the gapless counter (every sign-up of a year queues on its row until commit);
2. backfill: `--profiles` profiles stripped of their IDs (as before the feature) and backfilled by the service the
   command uses; profiles per second.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_db import use_bench_database  # noqa: E402

NAME = "activity_public_ids_bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--signups", type=int, default=300, help="sign-ups per process and mode")
    parser.add_argument("--profiles", type=int, default=100_000, help="profiles to backfill")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    os.environ["BENCH_DATABASE_NAME"] = NAME
    url = use_bench_database(NAME)
    try:
        signups(url, args.processes, args.signups)
        backfill(args.profiles, args.batch_size)
    finally:
        if not args.keep:
            drop(url)


def _guard(enabled: bool) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER TABLE profiles_userprofile {'ENABLE' if enabled else 'DISABLE'} TRIGGER profiles_public_id_guard"
        )


def signups(url: str, processes: int, per_process: int) -> None:
    from tests.private_services import run_signup_processes

    rates = {}
    for label, without in (("without public IDs", True), ("with public IDs", False)):
        _guard(enabled=not without)
        reports = run_signup_processes(
            processes,
            per_process,
            database_url=url,
            without_public_ids=without,
            prefix=f"bench-{int(time.time())}-{int(without)}-",
        )
        took = max(r["seconds"] for r in reports)  # from the common start to the last process done, without startup
        rates[label] = processes * per_process / took
        print(f"sign-ups {label:<20} {processes} x {per_process}: {took:6.2f} s  {rates[label]:8.1f} /s", flush=True)
    _guard(enabled=True)
    print(f"sign-ups ratio with/without: {rates['with public IDs'] / rates['without public IDs']:.2f}")


def backfill(profiles: int, batch_size: int) -> None:
    from django.db import connection

    from esports.profiles.models import PublicIDCounter
    from esports.profiles.public_id_backfill import backfill_public_ids
    from esports.profiles.services import create_users_bulk

    stamp = int(time.time())
    started = time.perf_counter()
    for start in range(0, profiles, 20_000):
        create_users_bulk([(f"bf{stamp}-{i}", f"Backfill {i}") for i in range(start, min(profiles, start + 20_000))])
    print(f"backfill setup: {profiles:,} users in {time.perf_counter() - started:.1f} s", flush=True)
    _guard(enabled=False)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE profiles_userprofile SET public_id = NULL")  # the sign-ups' profiles too
        cursor.execute("VACUUM ANALYZE profiles_userprofile")
    _guard(enabled=True)
    PublicIDCounter.objects.all().delete()
    started = time.perf_counter()
    report = backfill_public_ids(batch_size=batch_size)
    took = time.perf_counter() - started
    print(
        f"backfill: {report.assigned:,} profiles in {report.batches} batches of {batch_size}: {took:.2f} s  "
        f"{report.assigned / took:,.0f} profiles/s",
        flush=True,
    )
    started = time.perf_counter()
    again = backfill_public_ids(batch_size=batch_size)
    print(f"backfill second run: {again.assigned} assigned in {time.perf_counter() - started:.3f} s")


def drop(url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    print(f"dropped {NAME}")


if __name__ == "__main__":
    main()
