"""The profile page (career section and charts included) served by gunicorn under concurrent load, with an ingest
of 200 events/s running at the same time: requests/s and latency at 8 concurrent clients (issue 16's benchmark).

Runs on the read-path benchmark's database (bench/read_path.py builds it: 100k users x 50 events):

    BENCH_DATABASE_NAME=activity_read_bench DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \\
        REDIS_URL=redis://127.0.0.1:6379/5 .venv/bin/python bench/profile_load.py [--clients 8] [--seconds 30]

gunicorn (project.wsgi, --workers 2 x cores, plain HTTP on 127.0.0.1) serves anonymous GETs of random players'
profile pages; the ingest appends 200 events/s (match wins of random players, through the one append path with the
projection, in batches of 10 every 50 ms) as the workers' recording would. Prints requests/s, p50/p95/p99, errors,
and the ingest's achieved rate, first without the ingest, then with it. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CACHE_KEY_PREFIX", f"bench-load-{uuid.uuid4().hex[:8]}")

from bench.bench_db import percentile, use_bench_database  # noqa: E402

INGEST_RATE = 200
BATCH = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port: int, db_url: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "HTTPS_ONLY": "0",
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-not-secret"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "METRICS_TOKEN": "bench",
    }
    workers = str(2 * (os.cpu_count() or 1))
    cmd = [
        str(ROOT / ".venv/bin/gunicorn"),
        "project.wsgi",
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        workers,
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit(f"gunicorn did not answer: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")


def load(base: str, names: list[str], clients: int, seconds: float) -> tuple[list[float], int]:
    samples: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        mine: list[float] = []
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(f"{base}/u/{rng.choice(names)}/", timeout=10) as response:
                    response.read()
                    ok = response.status == 200
            except OSError:
                ok = False
            mine.append((time.perf_counter() - started) * 1000)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return samples, errors[0]


def ingest(users: int, stop: threading.Event, done: list[int]) -> None:
    from django.db import connection

    from activity.event_types import EventType as E
    from tests.read_side import event, record

    rng = random.Random(200)
    next_at = time.monotonic()
    while not stop.is_set():
        batch = []
        for _ in range(BATCH):
            meta = {"tournament_id": 1 + rng.randrange(2000), "tournament": "Load Cup", "game": "chess", "round": "QF"}
            batch.append(
                event(rng.randrange(1, users + 1), E.MATCH_WON, meta=meta, source_id=10**12 + rng.randrange(10**11))
            )
        record(*batch)
        done[0] += BATCH
        next_at += BATCH / INGEST_RATE
        time.sleep(max(0.0, next_at - time.monotonic()))
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    db_url = use_bench_database("activity_read_bench")

    from esports.profiles.models import UserProfile

    users = UserProfile.objects.count()
    assert users, "no players: run bench/read_path.py first (it builds this database)"
    rng = random.Random(8)
    names = list(
        UserProfile.objects.filter(pk__in=rng.sample(range(1, users + 1), 2000)).values_list(
            "user__username", flat=True
        )
    )
    port = free_port()
    server = start_gunicorn(port, db_url)
    base = f"http://127.0.0.1:{port}"
    workers = 2 * (os.cpu_count() or 1)
    print(f"profile page under load: gunicorn {workers} workers, {args.clients} clients, {users:,} users")
    try:
        load(base, names, args.clients, 3)  # warm the workers
        for label, with_ingest in (("alone", False), (f"with a {INGEST_RATE} events/s ingest", True)):
            stop, done = threading.Event(), [0]
            feeder = threading.Thread(target=ingest, args=(users, stop, done)) if with_ingest else None
            if feeder:
                feeder.start()
            started = time.monotonic()
            samples, errors = load(base, names, args.clients, args.seconds)
            elapsed = time.monotonic() - started
            stop.set()
            if feeder:
                feeder.join()
            print(
                f"  {label:<32} {len(samples) / elapsed:7.1f} req/s   p50 {statistics.median(samples):6.1f} ms   "
                f"p95 {percentile(samples, 95):6.1f} ms   p99 {percentile(samples, 99):6.1f} ms   errors {errors}"
                + (f"   ingest {done[0] / elapsed:.0f} events/s" if with_ingest else ""),
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
