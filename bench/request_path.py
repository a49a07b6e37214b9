"""What recording costs the request that saves a source row.

Saves a fresh Match as completed (commit included, since the after-commit work runs inside the request) in three
modes, interleaved round-robin so machine noise hits them alike:
  none  - the activity receivers disconnected (the cost of the save alone);
  async - the receivers enqueue one Celery task after commit (production; Redis must be up);
  sync  - bench/sync_recording.py: the same recording service runs inline after commit (the seeds' approach).
Also times one bare Celery publish. Prints p50/p99 in ms and the ratios.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/request_path.py [--rounds 1000]

Uses its own database (BENCH_DATABASE_NAME, default activity_bench); purges the Redis queues of REDIS_URL's database.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_db import percentile, use_bench_database  # noqa: E402

MODES = ("none", "async", "sync")


def make_matches(n: int) -> list:
    from django.utils import timezone

    from esports.profiles.services import create_users_bulk
    from esports.tournaments.models import Match, Registration, Tournament

    stamp = time.strftime("%Y%m%d%H%M%S")
    ids = create_users_bulk([(f"reqbench-{stamp}-{i}", f"Req bench {i}") for i in range(2 * n)])
    tournament = Tournament.objects.create(name=f"Request bench {stamp}", game="valorant", status="ongoing")
    regs = Registration.objects.bulk_create(
        [
            Registration(
                tournament=tournament, user_id=uid, status="confirmed", checked_in=True, checked_in_at=timezone.now()
            )
            for uid in sorted(ids.values())
        ]
    )
    matches = Match.objects.bulk_create(
        [
            Match(tournament=tournament, round="R64", participant1=regs[2 * i], participant2=regs[2 * i + 1])
            for i in range(n)
        ]
    )
    return list(Match.objects.filter(id__in=[m.id for m in matches]).order_by("id"))


def set_mode(mode: str) -> None:
    from django.db.models.signals import post_save

    from activity.sources import SOURCES
    from bench import sync_recording
    from tasks.receivers import connect_receivers

    if mode == "none":
        for label, kind in SOURCES.items():
            post_save.disconnect(sender=kind.model, dispatch_uid=f"activity.record.{label}")
    else:
        connect_receivers()
        sync_recording.enable() if mode == "sync" else sync_recording.disable()


def save_completed(match) -> float:
    from django.db import transaction
    from django.utils import timezone

    match.state, match.winner_id, match.loser_id = "completed", match.participant1_id, match.participant2_id
    match.completed_at = timezone.now()
    started = time.perf_counter()
    with transaction.atomic():
        match.save()
    return (time.perf_counter() - started) * 1000  # the commit and the after-commit work are part of the request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1000, help="saves per mode (default 1000)")
    parser.add_argument("--warmup", type=int, default=50, help="saves per mode discarded first (default 50)")
    args = parser.parse_args()
    use_bench_database()
    from django.conf import settings

    from dispatch.names import TaskName
    from dispatch.publish import publish
    from project.celery import app

    print(
        f"database {settings.DATABASES['default']['NAME']}, broker {settings.CELERY_BROKER_URL}; "
        f"{args.rounds} saves per mode after {args.warmup} warm-up saves"
    )
    app.control.purge()
    set_mode("none")
    per_mode = args.rounds + args.warmup
    matches = make_matches(per_mode * len(MODES))
    pools = {mode: matches[i :: len(MODES)] for i, mode in enumerate(MODES)}
    timings: dict[str, list[float]] = {mode: [] for mode in MODES}
    for i in range(per_mode):
        for mode in MODES[i % len(MODES) :] + MODES[: i % len(MODES)]:  # rotate the order every round
            set_mode(mode)
            elapsed = save_completed(pools[mode][i])
            if i >= args.warmup:
                timings[mode].append(elapsed)
    set_mode("async")

    publish_ms: list[float] = []  # not `publish`: that name is the function timed here
    for i in range(args.rounds + args.warmup):
        started = time.perf_counter()
        publish(TaskName.RECORD_SOURCE_CHANGE, args=("tournaments.match", 0))  # id 0 never exists: a no-op task
        if i >= args.warmup:
            publish_ms.append((time.perf_counter() - started) * 1000)
    purged = app.control.purge()

    def row(name: str, values: list[float]) -> str:
        return f"{name:<38} p50 {percentile(values, 50):7.3f} ms   p99 {percentile(values, 99):7.3f} ms"

    print(row("save, no receivers", timings["none"]))
    print(row("save + async enqueue (production)", timings["async"]))
    print(row("save + sync recording (seeds' way)", timings["sync"]))
    print(row("one bare Celery publish", publish_ms))
    p = {m: (percentile(timings[m], 50), percentile(timings[m], 99)) for m in MODES}
    print(
        f"added to the request by async enqueue: p50 {p['async'][0] - p['none'][0]:+.3f} ms, "
        f"p99 {p['async'][1] - p['none'][1]:+.3f} ms   (goal <= 1 ms p50, <= 2 ms p99)"
    )
    print(
        f"added to the request by sync recording: p50 {p['sync'][0] - p['none'][0]:+.3f} ms, "
        f"p99 {p['sync'][1] - p['none'][1]:+.3f} ms"
    )
    print(
        f"ratios: sync/async p50 {p['sync'][0] / p['async'][0]:.2f}x, p99 {p['sync'][1] / p['async'][1]:.2f}x; "
        f"async/none p50 {p['async'][0] / p['none'][0]:.2f}x; sync/none p50 {p['sync'][0] / p['none'][0]:.2f}x"
    )
    print(
        f"(purged {purged} queued no-op/bench tasks from the broker; no worker ran; load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})"
    )


if __name__ == "__main__":
    main()
