"""Benchmark: the nightly reconciliation (both passes) on a synthetic platform of real source rows, beside the full
sources pass it replaces, one run per size. Issue 19 goal 1: both passes <= 60 s at 5M events.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/8 \\
        BENCH_DATABASE_NAME=bench_1m .venv/bin/python bench/nightly_reconcile.py [--events 1000000] \\
        [--changes 5000] [--slices 7,28] [--lanes 2] [--no-full] [--keep]

Database: BENCH_DATABASE_NAME (default activity_nightly_bench). A database without a platform gets one from
generate_platform (matches, registrations, results, transactions, memberships, profiles) sized for about `--events`
events (bench/scaling.py's yield); an empty ledger is filled by a backfill through `--lanes` worker processes. Then:
1. the change log is emptied (the morning after a successful nightly run) and a day of writes is made through paths
   that send no signal: `--changes` rows - new transactions by bulk_create, match scores by QuerySet.update,
   registrations touched by raw SQL (each makes its tournament's result a dependent);
2. the nightly run, repairing (as beat runs it: the economy pass, then side by side changed rows + dependents +
   rolling slice 1/`--slices` and ledger -> stats for the users with new events + the same slice of users, then the
   ratings sample), the morning after a successful one (its change log consumed, its ledger watermark left), timed with
   the share of each pass from its progress lines; it must record exactly the new transactions' events;
3. the full sources pass (report only, `run_reconciliation(full=True)`: every source row re-derived, the way before)
   on the same data, timed the same way.
Prints both totals beside the 60 s goal and the ratio. The database is dropped afterwards unless --keep.
Wall seconds on this machine as it is (2 cores, shared): compare the figures of one run, not runs.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_db import use_bench_database, without_statement_timeout  # noqa: E402

if TYPE_CHECKING:
    from stats.models import ReconciliationRun

GOAL_SECONDS = 60.0
EVENTS_PER_USER = 11.3  # generate_platform's yield at one tournament per 31 users (bench/scaling.py)
USERS_PER_TOURNAMENT = 31


def timed_run(**kwargs) -> tuple[float, dict[str, float], ReconciliationRun]:
    """run_reconciliation with its passes' times from its progress lines: the economy pass's ledger side first, then
    the sources pass beside the economy's wallet side, the ledger -> stats pass and the ratings sample, one after the
    other (the sources pass and the stats pass timed from the ledger side's end to their own last lines, the ratings
    sample from the stats pass's end to its line)."""
    from stats.reconcile import run_reconciliation

    stamps: list[tuple[float, str]] = []
    began = time.perf_counter()
    run = run_reconciliation(
        trigger="bench", progress=lambda line: stamps.append((time.perf_counter(), line)), **kwargs
    )
    ended = time.perf_counter()
    economy_done = next(t for t, line in stamps if line.startswith("economy"))
    sources_done = max(t for t, line in stamps if line.startswith("sources -> ledger"))
    stats_done = max(t for t, line in stamps if line.startswith("ledger -> stats"))
    ratings_done = max(t for t, line in stamps if line.startswith("ratings"))
    shares = {
        "economy": economy_done - began,
        "sources": sources_done - economy_done,
        "stats": stats_done - economy_done,
        "ratings": ratings_done - stats_done,
    }
    return ended - began, shares, run


def the_morning_after_a_nightly_run() -> None:
    """What a successful repairing nightly run leaves behind: the change log consumed, and the run itself - its
    ledger watermark (the next night compares the users of the events above it: stats.nightly_stats) and the last
    slice of RECONCILE_SLICES, so the next night takes slice 1."""
    from django.conf import settings
    from django.utils import timezone

    from activity.models import SourceChange
    from stats.models import ReconciliationRun
    from stats.nightly_stats import ledger_high_water

    SourceChange.objects.all().delete()
    ReconciliationRun.objects.create(
        started_at=timezone.now(),
        finished_at=timezone.now(),
        status=ReconciliationRun.Status.SUCCEEDED,
        fix=True,
        trigger="bench",
        sources_mode="nightly",
        slice_index=settings.RECONCILE_SLICES - 1,
        slice_count=settings.RECONCILE_SLICES,
        ledger_high_id=ledger_high_water(),
    )


def day_of_writes(changes: int) -> int:
    """`changes` source rows written by signal-less paths; returns the coin events they imply (the new transactions:
    a score or a touched registration implies no new event, only work)."""
    from django.db import connection

    from esports.economy.models import DeltaCrownTransaction, DeltaCrownWallet
    from esports.tournaments.models import Match

    n_tx, n_match = changes // 2, changes * 3 // 10
    n_reg = changes - n_tx - n_match
    wallets = list(DeltaCrownWallet.objects.order_by("?").values_list("pk", flat=True)[:n_tx])
    DeltaCrownTransaction.objects.bulk_create(
        [DeltaCrownTransaction(wallet_id=w, amount=1 + i % 50, reason="daily login") for i, w in enumerate(wallets)],
        batch_size=2000,
    )
    matches = list(Match.objects.order_by("?").values_list("pk", flat=True)[:n_match])
    Match.objects.filter(pk__in=matches).update(score="2-1")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tournaments_registration SET checked_in = checked_in WHERE id IN "
            "(SELECT id FROM tournaments_registration ORDER BY random() LIMIT %s)",
            [n_reg],
        )
    return len(wallets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="ledger size to generate (approximate)")
    parser.add_argument("--changes", type=int, default=5000, help="source rows written in the simulated day")
    parser.add_argument(
        "--slices", default="", help="N of the rolling pass, comma-separated: one night each (default RECONCILE_SLICES)"
    )
    parser.add_argument("--lanes", type=int, default=2, help="backfill worker processes (filling an empty ledger)")
    parser.add_argument("--no-full", action="store_true", help="skip timing the full pass")
    parser.add_argument("--fill-only", action="store_true", help="generate and backfill, then stop (implies --keep)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    url = use_bench_database("activity_nightly_bench")
    from project.db_timeouts import use_job_timeouts

    use_job_timeouts()  # the nightly run is a worker's job: no web statement timeout

    from django.conf import settings
    from django.core.management import call_command

    from activity.models import SourceChange, UserActivity
    from activity.sources import SOURCES
    from bench.scaling import drop, vacuum

    slice_counts = [int(n) for n in args.slices.split(",") if n] or [settings.RECONCILE_SLICES]
    if not SOURCES["profiles.userprofile"].model._default_manager.exists():
        users = max(16, math.ceil(args.events / EVENTS_PER_USER))
        tournaments = max(1, users // USERS_PER_TOURNAMENT)
        print(f"generating a platform of {users:,} users / {tournaments:,} tournaments...", flush=True)
        began = time.perf_counter()
        with without_statement_timeout():  # at 5M rows a trigger's per-row check outlasted the web's 5 s
            call_command("generate_platform", users=users, tournaments=tournaments, seed=1, verbosity=0)
        print(f"  generated in {time.perf_counter() - began:.0f} s", flush=True)
    rows = sum(kind.model._default_manager.count() for kind in SOURCES.values())
    if not UserActivity.objects.exists():
        from bench.backfill import backfill_through_workers

        backfill_through_workers(2000, args.lanes)
    SourceChange.objects.all().delete()  # the morning after a successful nightly run
    vacuum()
    if args.fill_only:
        print(f"filled: {rows:,} source rows, {UserActivity.objects.count():,} events")
        return
    events = UserActivity.objects.count()
    print(f"data: {rows:,} source rows, {events:,} events; {os.cpu_count()} cores, shared (timings are noisy)")

    nightly = 0.0
    the_morning_after_a_nightly_run()
    for slices in slice_counts:
        with without_statement_timeout():  # data building, not what is measured
            coins = day_of_writes(args.changes)
        logged = SourceChange.objects.count()
        nightly, shares, run = timed_run(fix=True, slice_count=slices)
        assert run.missing_events_total == coins, (run.missing_events_total, coins, run.missing_events)
        assert run.users_drifted == 0, run.field_drift
        rederived = {k: sum(r[k] for r in run.rows_rederived.values()) for k in ("changed", "dependents", "slice")}
        print(
            f"nightly run (repair), N = {slices}, slice {(run.slice_index or 0) + 1}/{run.slice_count}: "
            f"{nightly:.1f} s "
            f"(economy's ledger side {shares['economy']:.1f} s, then side by side sources -> ledger "
            f"{shares['sources']:.1f} s and economy's wallet side + ledger -> stats {shares['stats']:.1f} s, then "
            f"ratings {shares['ratings']:.1f} s); {logged:,} log rows: "
            f"{rederived['changed']:,} changed rows, "
            f"{rederived['dependents']:,} dependents, {rederived['slice']:,} slice rows re-derived; "
            f"{run.users_checked:,} users' stats compared ({run.users_appended or 0:,} for new events); "
            f"{run.missing_events_total:,} events recorded; goal <= {GOAL_SECONDS:.0f} s: "
            f"{'met' if nightly <= GOAL_SECONDS else 'NOT met'}",
            flush=True,
        )
    if not args.no_full:
        full, full_shares, full_run = timed_run(fix=False, full=True)
        assert full_run.missing_events_total == 0 and full_run.users_drifted == 0
        print(
            f"full pass (report only, every source row, the way before): {full:.1f} s (economy "
            f"{full_shares['economy']:.1f} s, sources -> ledger {full_shares['sources']:.1f} s, ledger -> stats "
            f"{full_shares['stats']:.1f} s, ratings {full_shares['ratings']:.1f} s); ratio full / nightly "
            f"{full / nightly:.1f}x; sources pass "
            f"{full_shares['sources'] / max(shares['sources'], 1e-9):.1f}x",
            flush=True,
        )
    if not args.keep:
        drop(url)
        print("dropped the benchmark database")


if __name__ == "__main__":
    main()
