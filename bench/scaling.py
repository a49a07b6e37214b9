"""Cost curves (issue 19 goal 4): how each heavy job and each read figure grows with the ledger. Prints a table.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/8 \\
        .venv/bin/python bench/scaling.py [--events 1000000,5000000] [--lanes 2] [--iterations 200] [--keep]

For each size: a database of its own (`activity_scaling_bench_<events>`, or BENCH_DATABASE_NAME + the size) gets a
synthetic platform of real source rows (esports.tournaments.synthetic.generate_platform: matches, registrations,
results, transactions, memberships, profiles) sized so that its backfill gives about that many events, then, in one
process per size:
* backfill: every source through `--lanes` real Celery worker processes (bench/backfill.py's
  backfill_through_workers: the empty-ledger run, then the 0-event re-run), then the rating replays it left
  (the minutely job's replay_pending_games);
* the nightly reconciliation as beat runs it (bench/nightly_reconcile.py's way): the morning after a successful run
  (change log consumed, ledger watermark left), a day of 5,000 signal-less writes, then both passes repairing
  (changed rows, dependents, rolling slice 1/RECONCILE_SLICES; ledger -> stats for users with new events and the
  same slice of users), with the share of each pass from the run's progress lines; beside it the full pass (report only,
  every source row re-derived);
* recompute of every user's stats from the ledger (stats.recompute.recompute_stats);
* the economy pass (stats.economy_pass.check_economy, report only) and audit_verify_integrity (audit.verify);
* read figures, p50 over `--iterations` (bench/read_path.py's timed): timeline first page, stats lookup uncached and
  cached (hits), a leaderboard top 100 uncached, the profile page cold (players no read has asked for) and cached.
The database is dropped afterwards unless --keep (a later run with --keep reuses its platform; with --reads-only it
takes the read figures alone, on the kept backfilled platform).
Figures are wall seconds / milliseconds on this machine as it is (2 cores, shared): compare columns, not runs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# generate_platform's yield at one tournament per ~31 users (bench/backfill.py's 125k / 4k): events per user, measured
# (56,819 users / 1,832 tournaments -> 642,455 events); the size asked for is approximate, the table prints the real
# one.
EVENTS_PER_USER = 11.3
USERS_PER_TOURNAMENT = 31
NIGHTLY_CHANGES = 5000  # signal-less source writes in the simulated day before the nightly run (nightly_reconcile's)

JOBS = (
    ("backfill", "backfill, {lanes} lane(s)"),
    ("backfill_rerun", "backfill re-run (0 events)"),
    ("ratings_replay", "rating replays after the backfill"),
    ("reconcile", "nightly reconciliation (repair)"),
    ("sources_pass", "  sources -> ledger, side by side"),
    ("stats_pass", "  wallets, stats, side by side"),
    ("reconcile_full", "full reconciliation (every row)"),
    ("sources_full", "  of which sources -> ledger"),
    ("recompute", "recompute all stats"),
    ("economy", "economy pass"),
    ("audit_verify", "audit_verify_integrity"),
)
READS = (
    ("timeline", "timeline first page"),
    ("stats_uncached", "stats lookup, uncached"),
    ("stats_cached", "stats lookup, cached"),
    ("board", "leaderboard top 100, uncached"),
    ("profile_page_cold", "profile page, anonymous, cold"),
    ("profile_page", "profile page, anonymous, cached"),
)

T = TypeVar("T")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", default="1000000,5000000", help="ledger sizes, comma-separated (approximate)")
    parser.add_argument("--lanes", type=int, default=2, help="backfill worker processes")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--iterations", type=int, default=200, help="samples per read figure")
    parser.add_argument("--keep", action="store_true", help="keep each size's database (and reuse it next time)")
    parser.add_argument(
        "--reads-only", action="store_true", help="only the read figures, on each size's kept database (after --keep)"
    )
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)  # the child: one size, in its own process
    args = parser.parse_args()
    if args.size:
        print("RESULT " + json.dumps(one_size(args)), flush=True)
        return
    prefix = os.environ.get("BENCH_DATABASE_NAME", "activity_scaling_bench")
    results = []
    for size in [int(n) for n in args.events.split(",")]:
        print(f"== about {size:,} events ==", flush=True)
        env = {**os.environ, "BENCH_DATABASE_NAME": f"{prefix}_{size}"}
        child = subprocess.run(
            [sys.executable, __file__, "--size", str(size), *sys.argv[1:]], env=env, cwd=ROOT, stdout=subprocess.PIPE
        )
        lines = child.stdout.decode().splitlines()
        for line in lines:
            if not line.startswith("RESULT "):
                print(line, flush=True)
        if child.returncode != 0:
            sys.exit(f"the {size:,}-event run failed ({child.returncode})")
        results.append(json.loads(next(line for line in lines if line.startswith("RESULT "))[len("RESULT ") :]))
    print(table(results, args.lanes))


def table(results: list[dict], lanes: int) -> str:
    """Rows: the jobs (s) and reads (p50 ms); columns: the sizes; then each job's growth from the first size to the
    last against the events' (1.0 = linear)."""
    heads = [f"{r['events']:,} ev" for r in results]
    width = max(12, *(len(h) for h in heads)) + 1  # a space between the columns
    lines = [
        f"\n=== cost curves ({results[0]['cores']} cores, PostgreSQL + Redis) ===",
        "source rows: " + " / ".join(f"{r['source_rows']:,}" for r in results),
        f"{'':<34}"
        + "".join(f"{h:>{width}}" for h in heads)
        + ("   growth / events growth" if len(results) > 1 else ""),
    ]
    grow = results[-1]["events"] / results[0]["events"]
    for key, label in JOBS if results[0]["seconds"] else ():
        cells = "".join(f"{r['seconds'][key]:>{width - 2}.1f} s" for r in results)
        ratio = f"   {results[-1]['seconds'][key] / max(results[0]['seconds'][key], 1e-9) / grow:.2f}"
        lines.append(f"{label.format(lanes=lanes):<34}{cells}{ratio if len(results) > 1 else ''}")
    for key, label in READS:
        cells = "".join(f"{r['reads_ms'][key]:>{width - 3}.2f} ms" for r in results)
        ratio = f"   {results[-1]['reads_ms'][key] / max(results[0]['reads_ms'][key], 1e-9):.2f}x"
        lines.append(f"{label + ' p50':<34}{cells}{ratio if len(results) > 1 else ''}")
    lines.append(
        "jobs: wall seconds; reads: p50 ms (their growth column is the plain ratio, last size / first: flat = 1.00x)"
    )
    return "\n".join(lines)


# --- one size, in its own process (Django set up on its database) -------------------------------------------------


def seconds_of(fn: Callable[[], T]) -> tuple[float, T]:
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


def one_size(args) -> dict:
    from bench.bench_db import use_bench_database

    os.environ.setdefault("CACHE_KEY_PREFIX", f"bench-scaling-{os.getpid()}")  # not the cache of anything else
    os.environ.setdefault("DB_CONN_MAX_AGE", "600")  # a web process keeps its connection: the reads do too
    url = use_bench_database()
    from django.core.management import call_command

    from activity.sources import SOURCES

    counts = {label: kind.model._default_manager.count() for label, kind in SOURCES.items()}
    if args.reads_only:
        return reads_of_kept_platform(args, counts)
    if not counts["profiles.userprofile"]:
        users = max(16, math.ceil(args.size / EVENTS_PER_USER))
        tournaments = max(1, users // USERS_PER_TOURNAMENT)
        print(f"generating a platform of {users:,} users / {tournaments:,} tournaments...", flush=True)
        began = time.perf_counter()
        from bench.bench_db import without_statement_timeout

        with without_statement_timeout():  # at 5M rows a trigger's per-row check outlasted the web's 5 s
            call_command("generate_platform", users=users, tournaments=tournaments, seed=1, verbosity=0)
        print(f"  generated in {time.perf_counter() - began:.0f} s", flush=True)
        counts = {label: kind.model._default_manager.count() for label, kind in SOURCES.items()}
    print("source rows: " + ", ".join(f"{label} {n:,}" for label, n in counts.items()), flush=True)
    vacuum()

    from bench.backfill import backfill_through_workers

    run = backfill_through_workers(args.batch_size, args.lanes)
    vacuum()
    seconds = {"backfill": run["seconds"], "backfill_rerun": run["rerun_seconds"]}
    # The backfill only marked each game (stats.ratings.live: a bulk recording starts no replay); the minutely job
    # then replays every game once, from its earliest mark.
    from stats.ratings.pending import replay_pending_games

    seconds["ratings_replay"], replays = seconds_of(replay_pending_games)
    print(
        f"rating replays after the backfill: {sum(r.matches for r in replays):,} matches of {len(replays)} games "
        f"in {seconds['ratings_replay']:.1f} s",
        flush=True,
    )
    seconds.update(heavy_jobs())
    result = {
        "events": run["events"],
        "source_rows": sum(counts.values()),
        "cores": os.cpu_count(),
        "seconds": seconds,
        "reads_ms": read_figures(args.iterations),
    }
    if not args.keep:
        drop(url)
    return result


def reads_of_kept_platform(args, counts: dict[str, int]) -> dict:
    """The read figures alone, on a platform a --keep run left backfilled (its database is kept again)."""
    from activity.models import UserActivity

    events, source_rows = UserActivity.objects.count(), sum(counts.values())
    if not events:
        sys.exit(f"no backfilled platform in {os.environ['BENCH_DATABASE_NAME']}: run this size with --keep first")
    print(f"kept platform: {events:,} events, {source_rows:,} source rows", flush=True)
    return {
        "events": events,
        "source_rows": source_rows,
        "cores": os.cpu_count(),
        "seconds": {},
        "reads_ms": read_figures(args.iterations),
    }


def vacuum() -> None:
    """VACUUM ANALYZE the whole database (fresh statistics, as autovacuum would leave them before a nightly run); past
    the web's statement timeout at these sizes."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("RESET statement_timeout")


def heavy_jobs() -> dict[str, float]:
    from project.db_timeouts import use_job_timeouts

    # As the worker and the commands run them: without the web's 5 s statement timeout (the full pass's 50k-user
    # comparison statements outlasted it at 5M with two lanes beside them). The reads after it run their same SQL.
    use_job_timeouts()
    from audit.verify import verify_chain
    from bench.bench_db import without_statement_timeout
    from bench.nightly_reconcile import day_of_writes, the_morning_after_a_nightly_run, timed_run
    from esports.profiles.models import UserProfile
    from stats.economy_pass import check_economy
    from stats.recompute import recompute_stats

    out: dict[str, float] = {}
    # The nightly job as beat runs it: the morning after a successful run (the generated rows' change log consumed
    # and its ledger watermark left, as that run would have), a day of signal-less writes, then both passes
    # repairing - the changed rows, their dependents and rolling slice 1/RECONCILE_SLICES, side by side with ledger
    # -> stats for the users with new events and the same slice of users. Each pass's time from the run's own
    # progress lines.
    the_morning_after_a_nightly_run()
    with without_statement_timeout():  # data building: right after the backfill a 2,500-row insert outlasted 5 s once
        coins = day_of_writes(NIGHTLY_CHANGES)
    out["reconcile"], shares, run = timed_run(fix=True)
    assert run.missing_events_total == coins and not run.users_drifted, (run.missing_events_total, coins)
    out["sources_pass"], out["stats_pass"] = shares["sources"], shares["stats"]
    print(
        f"nightly reconciliation (repair, slice {(run.slice_index or 0) + 1}/{run.slice_count}, "
        f"{NIGHTLY_CHANGES:,} signal-less writes): {out['reconcile']:.1f} s (economy's ledger side "
        f"{shares['economy']:.1f} s, then side by side sources -> ledger {out['sources_pass']:.1f} s and economy's "
        f"wallet side + ledger -> stats {out['stats_pass']:.1f} s for {run.users_checked:,} users, then the ratings "
        f"sample {shares['ratings']:.1f} s)",
        flush=True,
    )
    # The full pass beside it: every source row re-derived (report only), what every night cost before the log.
    out["reconcile_full"], full_shares, full_run = timed_run(fix=False, full=True)
    assert not full_run.missing_events_total and not full_run.users_drifted, "a reconciled platform shows drift"
    out["sources_full"] = full_shares["sources"]
    print(
        f"full reconciliation (report only): {out['reconcile_full']:.1f} s (sources -> ledger "
        f"{out['sources_full']:.1f} s)",
        flush=True,
    )
    ids = list(UserProfile.objects.values_list("pk", flat=True))
    out["recompute"], written = seconds_of(lambda: recompute_stats(ids))
    print(f"recompute_stats: {written:,} rows in {out['recompute']:.1f} s", flush=True)
    out["economy"], check = seconds_of(lambda: check_economy(repair_wallets=False, repair_ledger=False))
    print(f"economy pass: {check.wallets_checked:,} wallets in {out['economy']:.1f} s", flush=True)
    out["audit_verify"], report = seconds_of(verify_chain)
    assert report.ok, report
    print(f"audit_verify_integrity: {report.rows_checked:,} rows in {out['audit_verify']:.1f} s", flush=True)
    return out


def read_figures(iterations: int) -> dict[str, float]:
    """p50 ms of the read path's main figures, on profiles picked at random (bench/read_path.py's way of timing)."""
    from django.contrib.auth.models import AnonymousUser
    from django.test import Client

    from activity.privacy import relation_between
    from activity.selectors.timeline import timeline
    from bench.read_path import timed
    from esports.profiles.models import UserProfile
    from stats.selectors.leaderboards import Board, leaderboard
    from stats.selectors.lifetime import cached_stats, load_stats

    rng = random.Random(7)
    ids = list(UserProfile.objects.values_list("pk", flat=True))
    profiles = list(UserProfile.objects.select_related("user").filter(pk__in=rng.sample(ids, min(200, len(ids)))))
    anonymous = AnonymousUser()
    client = Client(HTTP_X_FORWARDED_PROTO="https")  # production is HTTPS-only behind a proxy that says so
    assert client.get(f"/u/{profiles[0].user.username}/").status_code == 200
    n = iterations
    # The profile page with its caches cold: each request a player no read of this run has asked for (a platform
    # smaller than the samples has too few such players: they repeat, a smoke test).
    sampled = {p.pk for p in profiles}
    unseen = [i for i in ids if i not in sampled]
    cold_ids = rng.sample(unseen, min(n + 20, len(unseen))) or sorted(sampled)
    cold_names = itertools.cycle(
        UserProfile.objects.filter(pk__in=cold_ids).values_list("user__username", flat=True).order_by("pk")
    )
    profile_cold = timed(lambda: client.get(f"/u/{next(cold_names)}/"), n)
    # The cached figures are hits: every sampled player read once before (a random draw over the sample without
    # that would time mostly first reads, i.e. misses, which cost a miss's extra round trips on top of the load).
    for profile in profiles:
        cached_stats(profile.pk)
        client.get(f"/u/{profile.user.username}/")
    reads = {
        "timeline": timed(lambda: timeline(relation_between(anonymous, rng.choice(profiles))).items, n),
        "stats_uncached": timed(lambda: load_stats(rng.choice(profiles).pk), n),
        "stats_cached": timed(lambda: cached_stats(rng.choice(profiles).pk), n),
        "board": timed(lambda: leaderboard(Board.MATCHES_WON, use_cache=False), max(10, n // 5), warmup=2),
        "profile_page_cold": profile_cold,
        "profile_page": timed(lambda: client.get(f"/u/{rng.choice(profiles).user.username}/"), n),
    }
    figures = {key: statistics.median(samples) for key, samples in reads.items()}
    print("reads p50: " + ", ".join(f"{key} {ms:.2f} ms" for key, ms in figures.items()), flush=True)
    return figures


def drop(url: str) -> None:
    import psycopg
    from django.db import connections

    from bench.bench_db import database_url_on_server

    name = url.rsplit("/", 1)[1]
    connections.close_all()
    with psycopg.connect(database_url_on_server("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"dropped {name}", flush=True)


if __name__ == "__main__":
    main()
