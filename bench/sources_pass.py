"""Benchmark: the reconciliation's sources -> ledger pass on real source rows, now beside the way before, one run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/8 \\
        .venv/bin/python bench/sources_pass.py [--users 3000 --tournaments 97] [--repeat 3] [--keep]

Database: BENCH_DATABASE_NAME (default activity_sources_bench; dropped afterwards unless --keep). A database without
a platform gets one from generate_platform (matches, registrations, results, transactions, memberships, profiles);
a database whose ledger is empty gets it filled by one repair pass. Then, with nothing missing (the nightly case),
the pass is timed report-only and repairing, `--repeat` times each, alternating:
* now: the derived keys of a chunk go to the server as arrays; an anti-join on the idempotency index returns the
  positions of the absent ones (activity.append._absent); only those are encoded, and the repair inserts only those;
* before: every derived event encoded, the ledger's keys of the chunk's source ids fetched into Python and compared
  there (report only), every derived event sent to INSERT .. ON CONFLICT DO NOTHING (repair) - the code this
  replaced (append_before below), patched in for its runs.
Prints medians, rows/s, events/s and the ratio; queries per chunk for both.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_db import use_bench_database  # noqa: E402


def before_missing(events: Sequence) -> list:
    """The way before: fetch the ledger's keys of the chunk's source ids (5,000 per query), compare in Python."""
    from activity.models import UserActivity

    by_label: dict[str, set[tuple]] = {}
    for event in events:
        by_label.setdefault(event.source_model, set()).add(event.key)
    found: set[tuple] = set()
    for label, keys in by_label.items():
        source_ids = sorted({k[1] for k in keys})
        for start in range(0, len(source_ids), 5000):
            existing = UserActivity.objects.filter(
                source_model=label, source_id__in=source_ids[start : start + 5000]
            ).values_list("source_model", "source_id", "user_id", "event_type", "seq")
            found.update(key for key in existing.iterator(chunk_size=5000) if key in keys)
    return [event for event in events if event.key not in found]


def append_before(derivations: Sequence, *, dry_run: bool = False, only_missing: bool = False):
    """activity.append.append as it was: every planned event encoded, the keys compared in Python (report only) or
    every event sent to INSERT .. ON CONFLICT DO NOTHING (repair)."""
    from collections import Counter

    from django.db import transaction

    from activity.append import AppendResult, insert, insert_parameters, plan
    from activity.events import encode_metadata
    from activity.projection import project

    with transaction.atomic(savepoint=False):
        planned = plan(derivations)
        unique: dict[tuple, tuple] = {}
        for event, meta in [(event, encode_metadata(event)) for event in planned]:
            unique.setdefault(event.key, (event, meta))
        rows = {key: unique[key] for key in sorted(unique)}
        if dry_run:
            missing = Counter(event.event_type for event in before_missing([event for event, _meta in rows.values()]))
            return AppendResult(derived=len(rows), would_insert=sum(missing.values()), would_insert_by_type=missing)
        inserted = insert(rows, insert_parameters(rows))
        project(inserted)
    return AppendResult(derived=len(rows), inserted=inserted)


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


T = TypeVar("T")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--tournaments", type=int, default=97)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    url = use_bench_database("activity_sources_bench")

    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from activity.models import UserActivity
    from activity.sources import SOURCES
    from stats.reconcile import SOURCE_BATCH, find_missing_events

    if not SOURCES["profiles.userprofile"].model._default_manager.exists():
        print(f"generating a platform of {args.users:,} users / {args.tournaments:,} tournaments...", flush=True)
        call_command("generate_platform", users=args.users, tournaments=args.tournaments, seed=1, verbosity=0)
    rows = sum(kind.model._default_manager.count() for kind in SOURCES.values())
    if not UserActivity.objects.exists():
        seconds, _ = timed(lambda: find_missing_events(fix=True))
        print(f"ledger filled by one repair pass in {seconds:.1f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    events = UserActivity.objects.count()
    print(f"data: {rows:,} source rows, {events:,} events; {SOURCE_BATCH} source rows per chunk", flush=True)

    def run(fix: bool, before: bool) -> float:
        if not before:
            seconds, missing = timed(lambda: find_missing_events(fix=fix))
        else:
            with mock.patch("activity.recording.append", append_before):
                seconds, missing = timed(lambda: find_missing_events(fix=fix))
        total = sum(sum(c.values()) for c in missing.values())
        assert total == 0, f"{total} events missing from a complete ledger"
        return seconds

    def queries(fix: bool, before: bool) -> int:
        with CaptureQueriesContext(connection) as captured:
            run(fix, before)
        chunks = sum(-(-kind.model._default_manager.count() // SOURCE_BATCH) for kind in SOURCES.values())
        return round(len(captured) / chunks)

    for fix in (False, True):
        name = "repair" if fix else "report only"
        samples: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.repeat):
            for before in (True, False):
                samples[before].append(run(fix, before))
        now, was = statistics.median(samples[False]), statistics.median(samples[True])
        print(
            f"sources -> ledger, {name}: now {now:.2f} s ({rows / now:,.0f} rows/s, {events / now:,.0f} events/s); "
            f"before {was:.2f} s ({rows / was:,.0f} rows/s); ratio before/now {was / now:.2f}x "
            f"(medians of {args.repeat}: now {', '.join(f'{s:.2f}' for s in samples[False])}; "
            f"before {', '.join(f'{s:.2f}' for s in samples[True])})",
            flush=True,
        )
        print(f"  queries per chunk: now {queries(fix, False)}, before {queries(fix, True)}", flush=True)
    if not args.keep:
        import psycopg
        from django.db import connections

        from bench.bench_db import database_url_on_server

        name = url.rsplit("/", 1)[1]
        connections.close_all()
        with psycopg.connect(database_url_on_server("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        print(f"dropped {name}")


if __name__ == "__main__":
    main()
