"""Benchmark: backfill through a real Celery worker vs the seeds' per-event exists()/create(). Prints figures.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/3 \
        .venv/bin/python bench/backfill.py [--atp-dir ../shared/data/atp] [--users 125000 --tournaments 4000]
        [--batch-size N] [--lanes 1,2] [--naive-sample 0.01] [--only atp|decade|synthetic] [--db-prefix bench_me_]
        [--profile-chunks 12 | --no-profile]

Three data sets, each in a database of its own (created, migrated and filled once; later runs reuse them):
* `activity_backfill_bench_atp`: the whole ATP tour history (import_atp): issue 19's goals are measured here;
* `activity_backfill_bench_decade`: the seasons 2015-2024, what `make demo` imports and backfills;
* `activity_backfill_bench_synth`: a synthetic platform from generate_platform (~1M source rows at the defaults).

For each data set and each lane count: the ledger and stats are emptied, one `celery worker -Q maintenance -c 1
--pool solo` subprocess per lane is started on the data set, a backfill of every source is started with the service
(as the admin/command do) and followed to the end. Printed: events, wall time, events/s beside the goals, the
workers' peak RSS (VmHWM) and RSS at 10/50/90 % of the run (flat memory = the same figure through the run), a
second backfill (0 events: the cost of checking), the seeds' approach (per source row: load + derive, then per
event `exists()` and `create()` and an F() update of the stats row) timed on a sample of every source and
extrapolated to the whole data set, as a ratio, and where a chunk's time goes: one lane executed in-process with
every phase of the append path timed (activity.phases), wall and worker CPU per event ("beside:" phases ran in
the helper thread while the others went on: they are not part of the wall time).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Django is set up inside the scenario subprocess, not at import
    from activity.models import BackfillRun

ROOT = Path(__file__).resolve().parent.parent
DATABASES = {
    "atp": "activity_backfill_bench_atp",
    "decade": "activity_backfill_bench_decade",  # what `make demo` imports and backfills: ATP 2015-2024
    "synthetic": "activity_backfill_bench_synth",
}
DECADE = (2015, 2024)
GOALS = {1: 18_000, 2: 30_000}  # events/s per lane count (issue 19, goal 2)


# --- the parent: one subprocess per data set, then the table ------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--atp-dir", default=os.environ.get("ATP_DIR", str(ROOT.parent / "shared" / "data" / "atp")))
    parser.add_argument("--users", type=int, default=125_000, help="synthetic platform users")
    parser.add_argument("--tournaments", type=int, default=4_000, help="synthetic platform tournaments")
    parser.add_argument("--batch-size", type=int, default=None, help="rows per chunk (default: the setting's)")
    parser.add_argument(
        "--lanes", default="1,2", help="lane counts to measure, comma-separated (one worker process each)"
    )
    parser.add_argument(
        "--naive-sample", type=float, default=0.01, help="share of each source's rows the seeds' way runs on"
    )
    parser.add_argument("--only", choices=sorted(DATABASES))
    parser.add_argument(
        "--db-prefix",
        default=os.environ.get("BENCH_DATABASE_PREFIX", ""),
        help="prefix of the data sets' database names (one per person or machine sharing a server)",
    )
    parser.add_argument(
        "--profile-chunks",
        type=int,
        default=0,
        help="also execute this many chunks in-process and print where their time goes (0: the whole run)",
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the in-process phase breakdown")
    parser.add_argument("--scenario", choices=sorted(DATABASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        print("RESULT " + json.dumps(scenario(args)), flush=True)
        return

    results = {}
    for name in [args.only] if args.only else ["atp", "decade", "synthetic"]:
        print(f"== {name} ==", flush=True)
        env = {**os.environ, "BENCH_DATABASE_NAME": args.db_prefix + DATABASES[name]}
        child = subprocess.run(
            [sys.executable, __file__, "--scenario", name, *sys.argv[1:]],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        lines = child.stdout.splitlines()
        for line in lines:
            if not line.startswith("RESULT "):
                print(line, flush=True)
        if child.returncode != 0:
            sys.exit(f"{name} scenario failed ({child.returncode})")
        results[name] = json.loads(next(line for line in lines if line.startswith("RESULT "))[len("RESULT ") :])
    report(results)


def report(results: dict) -> None:
    print(
        "\n=== backfill benchmark (2-core machine, PostgreSQL + Redis, one `--pool solo` worker process per lane) ==="
    )
    for name, r in results.items():
        print(f"\n{name}: {r['source_rows']:,} source rows -> {r['events']:,} events (batch size {r['batch_size']})")
        for run in r["runs"]:
            print(
                f"  backfill, {run['lanes']} lane(s)  {run['seconds']:7.1f} s  {run['events_per_s']:>8,.0f} events/s  "
                f"{run['rows_per_s']:>8,.0f} source rows/s  ({run['chunks']} chunks)"
            )
            print(
                f"      worker RSS peak {run['rss_peak_mb']:.0f} MB; at 10/50/90 % of the run "
                + " / ".join(f"{v:.0f}" for v in run["rss_at_mb"])
                + f" MB; idle before the run {run['rss_idle_mb']:.0f} MB"
            )
            print(
                f"      second run {run['rerun_seconds']:.1f} s: {run['rerun_events']} events created "
                f"({run['rerun_rows_per_s']:,.0f} source rows/s checked)"
            )
        if "profile" in r:
            p = r["profile"]
            print(
                f"  where the time goes (one lane in-process: {p['events']:,} events, {p['chunks']} chunks, "
                f"{p['seconds']:.1f} s, {p['events'] / max(p['seconds'], 1e-9):,.0f} events/s):"
            )
            print(f"      {'phase':<40} {'wall':>8} {'share':>7} {'us/event':>9} {'worker CPU us/event':>20}")
            for name, (secs, cpu) in sorted(p["phases"].items(), key=lambda kv: -kv[1][0]):
                print(
                    f"      {name:<40} {secs:6.2f} s {secs / max(p['seconds'], 1e-9):7.1%} "
                    f"{secs * 1e6 / max(p['events'], 1):9.1f} {cpu * 1e6 / max(p['events'], 1):20.1f}"
                )
        for run in r["runs"]:
            goal = GOALS.get(run["lanes"])
            if goal:
                verdict = "met" if run["events_per_s"] >= goal else "NOT met"
                print(f"  goal, {run['lanes']} lane(s): >= {goal:,} events/s: {run['events_per_s']:,.0f} ({verdict})")
        best = max(r["runs"], key=lambda run: run["events_per_s"])
        print(
            f"  seeds' way  {r['naive_events_per_s']:,.0f} events/s on a {r['naive_sample_events']:,}-event sample "
            f"({r['naive_sample_share']:.1%} of every source) -> {r['naive_extrapolated_s']:,.0f} s extrapolated"
        )
        for run in r["runs"]:
            print(
                f"  ratio, {run['lanes']} lane(s): the backfill takes "
                f"{r['naive_extrapolated_s'] / run['seconds']:,.0f}x less time than the seeds' way"
            )
        print(f"  best: {best['events_per_s']:,.0f} events/s with {best['lanes']} lane(s)")
    print(
        "\ngoals (issue 19): >= 18,000 events/s with 1 lane, >= 30,000 with 2, on the whole ATP history; worker memory "
        "flat (RSS at 10/50/90 % of the run)"
    )


# --- one data set, in its own process (Django set up on its database) ---------------------------------------------


def scenario(args) -> dict:
    sys.path.insert(0, str(ROOT))
    from bench.bench_db import use_bench_database

    use_bench_database(args.db_prefix + DATABASES[args.scenario])
    from django.core.management import call_command
    from django.db import connection

    from activity.sources import SOURCES

    counts = {label: kind.model._default_manager.count() for label, kind in SOURCES.items()}
    if args.scenario == "atp" and not counts["tournaments.match"]:
        print(f"importing the ATP history from {args.atp_dir} (once)...", flush=True)
        call_command("import_atp", args.atp_dir)
    elif args.scenario == "decade" and not counts["tournaments.match"]:
        print(f"importing the ATP seasons {DECADE[0]}-{DECADE[1]} from {args.atp_dir} (once)...", flush=True)
        call_command("import_atp", args.atp_dir, from_year=DECADE[0], to_year=DECADE[1])
    elif args.scenario == "synthetic" and not counts["profiles.userprofile"]:
        print(f"generating a platform of {args.users:,} users / {args.tournaments:,} tournaments (once)...", flush=True)
        call_command("generate_platform", users=args.users, tournaments=args.tournaments, seed=1)
    counts = {label: kind.model._default_manager.count() for label, kind in SOURCES.items()}
    print("source rows: " + ", ".join(f"{label} {n:,}" for label, n in counts.items()), flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")

    from django.conf import settings

    batch = args.batch_size or settings.BACKFILL_DEFAULT_BATCH_SIZE
    result: dict[str, Any] = {"source_rows": sum(counts.values()), "batch_size": batch, "runs": []}
    for lanes in [int(n) for n in args.lanes.split(",")]:
        result["runs"].append(backfill_through_workers(batch, lanes))
    result["events"] = result["runs"][0]["events"]
    if not args.no_profile:
        result["profile"] = profile_phases(batch, args.profile_chunks)
    result.update(naive(counts, args.naive_sample))
    result["naive_extrapolated_s"] = result["events"] / result["naive_events_per_s"]
    return result


def reset_ledger() -> None:
    from django.db import connection

    from activity.models import BackfillLane, BackfillRun, UserActivity
    from stats.models import UserProfileStats
    from stats.ratings.models import PlayerRating, RatingDraftRating, RatingGame, RatingHistory, RatingReplayMark
    from stats.scoped_models import UserGameStats, UserSeasonStats

    with connection.cursor() as cursor:
        tables = [  # the ledger and everything derived from it (a kept database's earlier run included)
            UserActivity._meta.db_table,
            UserProfileStats._meta.db_table,
            UserGameStats._meta.db_table,
            UserSeasonStats._meta.db_table,
            RatingReplayMark._meta.db_table,
            RatingHistory._meta.db_table,
            RatingDraftRating._meta.db_table,
            PlayerRating._meta.db_table,
            RatingGame._meta.db_table,
            BackfillLane._meta.db_table,
            BackfillRun._meta.db_table,
        ]
        cursor.execute(f"TRUNCATE {', '.join(tables)}")
        cursor.execute(f"VACUUM ANALYZE {tables[0]}")


def backfill_through_workers(batch_size: int, lanes: int) -> dict:
    from django.db import connection

    from activity import backfill
    from activity.models import BackfillRun
    from project.celery import app

    reset_ledger()
    app.control.purge()
    workers = [start_worker(i) for i in range(lanes)]
    pids = [w.pid for w in workers]
    try:
        time.sleep(4)  # let them import and connect
        idle = max(rss(pid) for pid in pids)
        run = backfill.start_backfill(None, batch_size=batch_size, lanes=lanes)
        samples: list[tuple[float, float]] = []  # (progress, largest RSS MB)
        while True:
            run.refresh_from_db()
            samples.append((run.rows_done / max(run.rows_total, 1), max(rss(pid) for pid in pids)))
            if not run.is_active:
                break
            if any(w.poll() is not None for w in workers):
                raise SystemExit("a worker died")
            time.sleep(0.25)
        if run.status != BackfillRun.Status.SUCCEEDED:
            raise SystemExit(f"backfill {run.status}: {run.last_error}")
        seconds = run_seconds(run)
        print(
            f"backfill, {lanes} lane(s): {run.events_created:,} events in {seconds:.1f} s "
            f"({run.events_created / seconds:,.0f} events/s)",
            flush=True,
        )
        peak = max(hwm(pid) for pid in pids)

        rerun = backfill.start_backfill(None, batch_size=batch_size, lanes=lanes)
        while BackfillRun.objects.get(pk=rerun.pk).is_active:
            time.sleep(0.25)
        rerun.refresh_from_db()
        rerun_seconds = run_seconds(rerun)
        print(f"second run: {rerun.events_created} events in {rerun_seconds:.1f} s", flush=True)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(60)
    connection.close()
    return {
        "lanes": lanes,
        "events": run.events_created,
        "seconds": seconds,
        "events_per_s": run.events_created / seconds,
        "rows_per_s": run.rows_done / seconds,
        "chunks": run.chunks_done,
        "rss_peak_mb": peak,
        "rss_idle_mb": idle,
        "rss_at_mb": [at(samples, q) for q in (0.1, 0.5, 0.9)],
        "rerun_seconds": rerun_seconds,
        "rerun_events": rerun.events_created,
        "rerun_rows_per_s": rerun.rows_done / rerun_seconds,
    }


def profile_phases(batch_size: int, max_chunks: int, sources: list[str] | None = None) -> dict:
    """One lane executed in this process, chunk after chunk, each phase of the append path timed
    (activity.phases): where a chunk's time goes. "lane state + commit" is the rest of each chunk's wall time (the
    lane row, the run's tallies, COMMIT)."""
    from django.db import connection

    from activity import backfill
    from activity.backfill.chunks import ChunkOutcome, run_backfill_chunk
    from activity.models import BackfillRun
    from activity.phases import BESIDE, collecting

    reset_ledger()
    run = backfill.start_backfill(sources, batch_size=batch_size, lanes=1, enqueue=False)
    chunks, wall, cpu = 0, 0.0, 0.0
    with collecting() as phases:
        while not max_chunks or chunks < max_chunks:
            began, began_cpu = time.perf_counter(), time.process_time()
            outcome = run_backfill_chunk(run.pk, 0, enqueue_next=False)
            wall += time.perf_counter() - began
            cpu += time.process_time() - began_cpu
            chunks += 1
            if outcome is not ChunkOutcome.CONTINUED:
                break
    run.refresh_from_db()
    if max_chunks == 0 and run.status != BackfillRun.Status.SUCCEEDED:
        raise SystemExit(f"profiled backfill {run.status}: {run.last_error}")
    seconds = {name: (phases.wall[name], phases.cpu[name]) for name in phases.wall}
    rest = "lane state + commit"
    # The helper thread's phases ran beside the others (activity.overlapped): not part of the chunks' wall time.
    own_wall = sum(secs for name, secs in phases.wall.items() if not name.startswith(BESIDE))
    seconds[rest] = (max(wall - own_wall, 0.0), max(cpu - sum(phases.cpu.values()), 0.0))
    connection.close()
    print(f"profiled: {run.events_created:,} events in {chunks} chunks, {wall:.1f} s in-process", flush=True)
    return {"events": run.events_created, "chunks": chunks, "seconds": wall, "cpu_seconds": cpu, "phases": seconds}


def run_seconds(run: BackfillRun) -> float:
    """Wall time of a run that is no longer active (both stamps are set by then)."""
    assert run.started_at is not None and run.finished_at is not None, f"backfill run {run.pk} has not finished"
    return (run.finished_at - run.started_at).total_seconds()


def start_worker(n: int) -> subprocess.Popen:
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "project",
            "worker",
            "-Q",
            "maintenance",
            "-c",
            "1",
            "--pool",
            "solo",
            "-l",
            "WARNING",
            "-n",
            f"backfill-bench-{os.getpid()}-{n}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def rss(pid: int) -> float:
    return _status_kb(pid, "VmRSS") / 1024


def hwm(pid: int) -> float:
    return _status_kb(pid, "VmHWM") / 1024


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def at(samples: list[tuple[float, float]], q: float) -> float:
    return next((mb for progress, mb in samples if progress >= q), samples[-1][1])


def naive(counts: dict[str, int], share: float) -> dict:
    """The seeds' approach on the first `share` of every source's rows, on an empty ledger."""
    from django.db.models import F

    from activity.event_types import COIN_EVENTS
    from activity.models import UserActivity
    from activity.sources import SOURCES
    from stats.counters import AMOUNT_FIELDS, EFFECTS, measure_of
    from stats.models import UserProfileStats

    reset_ledger()
    events = 0
    began = time.perf_counter()
    for label, kind in SOURCES.items():
        pk = kind.model._meta.pk.attname
        n = math.ceil(counts[label] * share)
        for row_id in kind.model._default_manager.order_by(pk).values_list(pk, flat=True)[:n]:
            for derivation in kind.load([row_id]):  # per source row: load and derive it
                for e in derivation.events:
                    key = {
                        "source_model": e.source_model,
                        "source_id": e.source_id,
                        "user_id": e.user_id,
                        "event_type": e.event_type,
                        "seq": e.seq,
                    }
                    if UserActivity.objects.filter(**key).exists():
                        continue
                    UserActivity.objects.create(
                        timestamp=e.timestamp,
                        amount=e.amount,
                        metadata=dict(e.metadata),
                        visibility=e.resolved_visibility(),
                        **key,
                    )
                    UserProfileStats.objects.get_or_create(profile_id=e.user_id)
                    for counter, sign in EFFECTS[e.event_type]:
                        if counter in AMOUNT_FIELDS and e.event_type in COIN_EVENTS:
                            assert e.amount is not None, f"{e.event_type} moves coins, so it carries an amount"
                        delta = sign * measure_of(counter, e.amount)
                        UserProfileStats.objects.filter(profile_id=e.user_id).update(**{counter: F(counter) + delta})
                    events += 1
    seconds = time.perf_counter() - began
    print(f"seeds' way: {events:,} events in {seconds:.1f} s ({events / seconds:,.0f} events/s)", flush=True)
    reset_ledger()
    return {"naive_events_per_s": events / seconds, "naive_sample_events": events, "naive_sample_share": share}


if __name__ == "__main__":
    main()
