"""Events per second end to end through Redis and ONE real worker process, and commit -> stats-visible lag at a
fixed rate.

Both enqueue modes (ACTIVITY_ENQUEUE_MODE, --mode task|batch|both): "task" publishes one record_source_change task
per saved row; "batch" appends "label:pk" to a Redis list that drain tasks record up to 500 rows per transaction.

Throughput: source rows are created without signals; a `celery -A project worker -Q events` subprocess (prefork,
--concurrency) is started, then each row is handed to the enqueue path of the mode (what the after-commit hook calls).
events/s runs from the first enqueue to the last event visible (worker start-up not counted). Two row kinds: coin
transactions (1 event per row) and completed matches (4 events per row).

Lag: with a worker running, this process commits coin transactions through the ORM at a fixed rate (receivers on,
production async path, in the mode measured); a poller thread with its own connection sees each ledger row appear.
The time from the commit to the end of the after-commit hooks (the enqueue) is what the mode adds to a request. Events
and stats commit in one transaction, so the moment the ledger row is visible is the moment the stats are.
Lag = visible - commit.

Batch probe: the recording service alone in this process, one row per transaction (what each task does) against 100
rows per transaction, to show what batching would buy. Finally every bench user's stats are checked against the ledger.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/ingest.py [--mode both] [--coins 10000] [--matches 2500] [--rate 200] [--seconds 15] \\
        [--concurrency 2]

Uses its own database (BENCH_DATABASE_NAME, default activity_bench) and purges the queues of REDIS_URL's database.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_db import ROOT, percentile, use_bench_database  # noqa: E402

COINS = "economy.deltacrowntransaction"
MATCHES = "tournaments.match"


class Worker:
    """One `celery worker` process on the events queue, started and stopped by pid (never by name)."""

    def __init__(self, concurrency: int, extra: list[str]) -> None:
        self.name = f"ingestbench-{os.getpid()}-{time.monotonic_ns()}@%h"
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "project",
            "worker",
            "-Q",
            "events",
            "-P",
            "prefork",
            "-c",
            str(concurrency),
            "-n",
            self.name,
            "-l",
            "warning",
            "--without-gossip",
            "--without-mingle",
            *extra,
        ]
        self.process = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "LOG_LEVEL": "WARNING"})
        self.hostname = None

    def wait_ready(self, app, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"worker exited with {self.process.returncode}")
            replies = app.control.ping(timeout=0.5)
            names = [name for reply in replies for name in reply if name.startswith(self.name.split("@")[0])]
            if names:
                self.hostname = names[0]
                return
        sys.exit("worker did not answer a ping within 60 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # warm shutdown of this pid and its pool children
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def make_users(users: int):
    from esports.economy.models import DeltaCrownWallet
    from esports.profiles.services import create_users_bulk

    stamp = time.strftime("%Y%m%d%H%M%S")
    ids = sorted(create_users_bulk([(f"ingest-{stamp}-{i}", f"Ingest {i}") for i in range(users)]).values())
    wallets = dict(DeltaCrownWallet.objects.filter(profile_id__in=ids).values_list("profile_id", "id"))
    return ids, wallets


def make_rows(ids: list[int], wallets: dict[int, int], coins: int, matches: int, seed: int):
    """Source rows for one throughput run (no signals: the run hands them to the enqueue path itself)."""
    from django.utils import timezone

    from esports.economy.balances import refresh_wallets_of
    from esports.economy.models import DeltaCrownTransaction
    from esports.tournaments.models import Match, Registration, Tournament

    stamp = time.strftime("%Y%m%d%H%M%S")
    rng = random.Random(seed)
    # A spend the wallet could not cover (counting from 0: what it held before only adds) becomes an earning, so the
    # history never overdraws and the refresh below can cache it (CHECK cached_balance >= 0).
    added: dict[int, int] = {}
    rows = []
    for _ in range(coins):
        wallet_id, amount = wallets[rng.choice(ids)], rng.choice([1, -1]) * rng.randint(1, 500)
        if added.get(wallet_id, 0) + amount < 0:
            amount = -amount
        added[wallet_id] = added.get(wallet_id, 0) + amount
        rows.append(DeltaCrownTransaction(wallet_id=wallet_id, amount=amount, reason="bench"))
    txs = DeltaCrownTransaction.objects.bulk_create(rows, batch_size=5000)
    refresh_wallets_of([t.wallet_id for t in txs])  # bulk rows bypass the economy service: keep the caches true
    tournament = Tournament.objects.create(name=f"Ingest bench {stamp}-{seed}", game="valorant", status="ongoing")
    regs = Registration.objects.bulk_create(
        [
            Registration(
                tournament=tournament, user_id=uid, status="confirmed", checked_in=True, checked_in_at=timezone.now()
            )
            for uid in ids
        ]
    )
    played = []
    for _ in range(matches):
        a, b = rng.sample(regs, 2)
        played.append(
            Match(
                tournament=tournament,
                round="R64",
                participant1=a,
                participant2=b,
                winner=a,
                loser=b,
                state="completed",
                completed_at=timezone.now(),
            )
        )
    played = Match.objects.bulk_create(played, batch_size=5000)
    return [t.id for t in txs], [m.id for m in played]


def ledger_window(label: str, ids: list[int]) -> tuple[int, float]:
    """(events recorded for these rows, seconds between the first and the last recorded_at)."""
    from django.db.models import Count, Max, Min

    from activity.models import UserActivity

    agg = UserActivity.objects.filter(source_model=label, source_id__gte=min(ids), source_id__lte=max(ids)).aggregate(
        n=Count("id"), first=Min("recorded_at"), last=Max("recorded_at")
    )
    span = (agg["last"] - agg["first"]).total_seconds() if agg["n"] else 0.0
    return agg["n"], span


def set_mode(app, mode: str) -> None:
    """Switch this process's enqueue path and start from empty queues and batching keys."""
    from django.conf import settings

    from dispatch.publish import reset_pause
    from tasks import batching

    settings.ACTIVITY_ENQUEUE_MODE = mode
    reset_pause()
    app.control.purge()
    client = batching.redis_client()
    client.delete(
        batching.PENDING_KEY,
        batching.DRAIN_FLAG_KEY,
        batching.INFLIGHT_INDEX,
        *client.scan_iter(match=batching.INFLIGHT_PREFIX + "*"),
    )


def throughput(app, label: str, ids: list[int], events_per_row: int, args, mode: str) -> None:
    """The worker is up first; then every row is handed to the enqueue path as fast as this process can, and the clock
    runs from the first enqueue to the moment the last event is visible (polled every 20 ms): end to end, with the
    enqueuing competing for the same 2 cores. The recorded_at window (first to last) is printed too; in batch mode it
    leaves out the first batch's own duration (a batch shares one recorded_at), so the wall clock is the fair figure."""
    from monitoring import metrics
    from tasks.enqueue import enqueue_source_change, flush_handed_off

    set_mode(app, mode)
    failures_before = metrics.ENQUEUE_FAILURES.labels(source=label)._value.get()
    expected = len(ids) * events_per_row
    worker = Worker(args.concurrency, args.worker_arg)
    try:
        worker.wait_ready(app)
        started = time.perf_counter()
        for pk in ids:
            enqueue_source_change(label, pk)
        flush_handed_off()  # batch mode pushes on a sender thread: the rate counts the pushes, failures are in
        publish_s = time.perf_counter() - started
        if metrics.ENQUEUE_FAILURES.labels(source=label)._value.get() != failures_before:
            sys.exit(f"{label}: some enqueues failed (see the log); figures would be meaningless")
        deadline = time.monotonic() + 600
        while ledger_window(label, ids)[0] < expected:
            if time.monotonic() > deadline:
                sys.exit(f"{label}: only {ledger_window(label, ids)[0]} of {expected} events after 10 minutes")
            time.sleep(0.02)
        wall = time.perf_counter() - started
    finally:
        worker.stop()
    n, span = ledger_window(label, ids)
    print(
        f"[{mode:<5}] {label:<30} {len(ids):>6} rows -> {n:>6} events in {wall:.2f} s: {n / wall:6.0f} events/s, "
        f"{len(ids) / wall:5.0f} rows/s end to end "
        f"(recorded_at window {span:.2f} s: {n / max(span, 1e-9):.0f} events/s; "
        f"enqueued at {len(ids) / publish_s:.0f} rows/s meanwhile)"
    )


def stamp_now(stamp: list[float]) -> None:
    stamp.append(time.perf_counter())


def lag(app, wallets: dict[int, int], args, mode: str) -> None:
    from django.db import connection, transaction

    from esports.economy import services as economy

    commits: dict[int, float] = {}
    hooks_done: dict[int, float] = {}  # the after-commit hooks (the enqueue) have returned
    seen: dict[int, float] = {}
    stop = threading.Event()

    def poll() -> None:  # its own connection: sees only committed rows
        # By source id, not "id > last seen": ledger ids are taken at insert time, and two pool processes commit
        # them out of order.
        try:
            with connection.cursor() as cursor:
                while not stop.is_set():
                    pending = [i for i in list(commits) if i not in seen]
                    if pending:
                        cursor.execute(
                            "SELECT source_id FROM activity_useractivity WHERE source_model = %s "
                            "AND source_id = ANY(%s)",
                            [COINS, pending],
                        )
                        now = time.perf_counter()
                        for (source_id,) in cursor.fetchall():
                            seen.setdefault(source_id, now)
                    time.sleep(args.poll_ms / 1000)
        finally:
            connection.close()

    def publish(k: int) -> None:  # one web process thread: commits its share of the rows on the common schedule
        rng = random.Random(k)
        try:
            for i in range(k, total, args.publishers):
                delay = t0 + i / args.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                stamp: list[float] = []
                with transaction.atomic():
                    # Runs first after the commit. partial binds this row's list, not what the loop variable holds
                    # by the time the hook runs.
                    transaction.on_commit(partial(stamp_now, stamp))
                    tx = economy.credit(rng.choice(users), rng.randint(1, 100), "lag bench")
                hooks_done[tx.id] = time.perf_counter()
                commits[tx.id] = stamp[0]
        finally:
            connection.close()

    set_mode(app, mode)
    worker = Worker(args.concurrency, args.worker_arg)
    poller = threading.Thread(target=poll, daemon=True)
    try:
        worker.wait_ready(app)
        poller.start()
        time.sleep(0.2)
        users = list(wallets)
        total = args.rate * args.seconds
        t0 = time.perf_counter() + 0.1
        publishers = [threading.Thread(target=publish, args=(k,), daemon=True) for k in range(args.publishers)]
        for p in publishers:
            p.start()
        for p in publishers:
            p.join()
        achieved = len(commits) / (time.perf_counter() - t0)
        deadline = time.monotonic() + 60
        while len(set(commits) - set(seen)) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        poller.join(timeout=10)
        worker.stop()
    lags = [(seen[i] - commits[i]) * 1000 for i in commits if i in seen]
    missing = len(commits) - len(lags)
    enqueue_ms = [(hooks_done[i] - commits[i]) * 1000 for i in commits]
    print(
        f"[{mode:<5}] after-commit enqueue (added to the request): p50 {percentile(enqueue_ms, 50):.2f} ms, "
        f"p99 {percentile(enqueue_ms, 99):.2f} ms  "
        f"(goal <= 1 ms p50, <= 2 ms p99; {args.publishers} publishing threads)"
    )
    print(
        f"[{mode:<5}] commit -> stats visible at {achieved:.0f} events/s for {args.seconds} s ({len(commits)} events): "
        f"p50 {percentile(lags, 50):.1f} ms, p99 {percentile(lags, 99):.1f} ms, max {max(lags):.1f} ms"
        f"{f', {missing} never seen' if missing else ''}  (goal p99 <= 1000 ms; poll every {args.poll_ms} ms)"
    )


def batch_probe(wallets: dict[int, int], rows: int, batch: int) -> None:
    """The same service without Celery, in this process: one row per call (one transaction per event, as each task
    does) against `batch` rows per call. Shows what batching several source rows per transaction would buy."""
    from activity.recording import record_events_for
    from esports.economy.balances import refresh_wallets_of
    from esports.economy.models import DeltaCrownTransaction

    rng = random.Random(5)
    users = list(wallets)
    ids = [
        t.id
        for t in DeltaCrownTransaction.objects.bulk_create(
            [
                DeltaCrownTransaction(
                    wallet_id=wallets[rng.choice(users)], amount=rng.randint(1, 100), reason="batch probe"
                )
                for _ in range(2 * rows)
            ]
        )
    ]
    refresh_wallets_of(list(wallets.values()))  # bulk rows bypass the economy service: keep the caches true
    started = time.perf_counter()
    for pk in ids[:rows]:
        record_events_for(COINS, [pk])
    single = rows / (time.perf_counter() - started)
    started = time.perf_counter()
    for start in range(rows, 2 * rows, batch):
        record_events_for(COINS, ids[start : start + batch])
    batched = rows / (time.perf_counter() - started)
    print(
        f"service alone, no Celery, 1 process: 1 row per transaction {single:6.0f} events/s; {batch} rows per "
        f"transaction {batched:6.0f} events/s ({batched / single:.1f}x)"
    )


def check_stats(user_ids: list[int]) -> None:
    """The projection of every bench user equals the ledger's aggregates (nothing double-counted or lost)."""
    from django.db import connection

    from stats.counters import COUNTER_FIELDS
    from stats.models import UserProfileStats
    from stats.recompute import ledger_aggregate_sql

    with connection.cursor() as cursor:
        cursor.execute(ledger_aggregate_sql(f"user_id IN ({', '.join(['%s'] * len(user_ids))})"), user_ids)
        cols = [c.name for c in cursor.description]
        ledger = {row[0]: dict(zip(cols[1:], row[1:])) for row in cursor.fetchall()}
    stats = {
        r.pop("profile_id"): r
        for r in UserProfileStats.objects.filter(profile_id__in=user_ids).values("profile_id", *COUNTER_FIELDS)
    }
    drifted = [u for u in ledger if any(stats.get(u, {}).get(f, 0) != ledger[u][f] for f in COUNTER_FIELDS)]
    verdict = f"{len(drifted)} DRIFTED" if drifted else "all equal"
    print(f"stats of {len(ledger)} bench users vs ledger aggregates: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--mode",
        choices=["task", "batch", "both"],
        default="both",
        help="ACTIVITY_ENQUEUE_MODE to measure (both: task, then batch, in one run)",
    )
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument(
        "--coins", type=int, default=10000, help="coin transactions for the throughput run (1 event each)"
    )
    parser.add_argument(
        "--matches", type=int, default=2500, help="completed matches for the throughput run (4 events each)"
    )
    parser.add_argument("--rate", type=int, default=200, help="events/s of the lag run")
    parser.add_argument("--seconds", type=int, default=15, help="length of the lag run")
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes (one worker process)")
    parser.add_argument("--poll-ms", type=float, default=2.0, help="lag poller interval")
    parser.add_argument(
        "--publishers", type=int, default=4, help="threads committing rows in the lag run (web processes)"
    )
    parser.add_argument("--worker-arg", action="append", default=[], help="extra `celery worker` argument (repeatable)")
    parser.add_argument("--probe-rows", type=int, default=1000, help="rows of the batch probe (0 to skip)")
    parser.add_argument("--probe-batch", type=int, default=100)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-lag", action="store_true")
    args = parser.parse_args()
    use_bench_database()
    from django.conf import settings
    from django.db.models.signals import post_save

    from activity.sources import SOURCES
    from project.celery import app
    from tasks.receivers import connect_receivers

    print(
        f"database {settings.DATABASES['default']['NAME']}, broker {settings.CELERY_BROKER_URL}, "
        f"worker: 1 process, concurrency {args.concurrency} "
        f"(prefork unless {' '.join(args.worker_arg) or 'told otherwise'}); "
        f"{os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f}; ACTIVITY_ASYNC_COMMIT={settings.ACTIVITY_ASYNC_COMMIT}"
    )
    for label, kind in SOURCES.items():  # bulk setup: no enqueues
        post_save.disconnect(sender=kind.model, dispatch_uid=f"activity.record.{label}")
    modes = ["task", "batch"] if args.mode == "both" else [args.mode]
    users, wallets = make_users(args.users)
    rows = {
        mode: ([], []) if args.skip_throughput else make_rows(users, wallets, args.coins, args.matches, seed=7 + k)
        for k, mode in enumerate(modes)
    }
    connect_receivers()
    for mode in modes:
        coin_ids, match_ids = rows[mode]
        if coin_ids:
            throughput(app, COINS, coin_ids, 1, args, mode)
        if match_ids:
            throughput(app, MATCHES, match_ids, 4, args, mode)
    if not args.skip_lag:
        for mode in modes:
            lag(app, wallets, args, mode)
    if args.probe_rows:
        batch_probe(wallets, args.probe_rows, args.probe_batch)
    check_stats(users)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at the end: {load} (other work on this machine slows every figure)")


if __name__ == "__main__":
    main()
