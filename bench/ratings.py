"""Benchmark: Elo ratings (issue 17) on the whole ATP tour history. Prints figures (medians, ratios), no thresholds.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/4 \
        .venv/bin/python bench/ratings.py [--atp-dir ../shared/data/atp] [--runs 3] [--live-seconds 20] [--regenerate]

The data set (database `activity_ratings_bench`, or BENCH_DATABASE_NAME) is built once: import_atp of every season,
then a backfill of the matches (the ledger's match events; ratings read nothing else). Printed:

1. full replay of the whole history through the replay code (recompute_ratings' path), median of --runs, beside the
   naive way (per match: ORM reads of both players' rows, two saves, one history create) timed on a sample and
   extrapolated;
2. the cost a new latest match adds to its recording (the O(1) fold in the recording transaction): record_events_for
   of one new match with and without the rating projector, medians and p99 - the rating is visible when the
   recording commits, so this is also its visibility lag;
3. a correction one season back (a final flipped) replayed while live matches flow at --events-per-second through
   the real path: --producers processes save completed matches through the ORM (post_save -> after-commit enqueue
   -> Redis), one `celery worker -Q events` (--concurrency, ACTIVITY_ENQUEUE_MODE as configured: batch by default)
   records them, the rating folded in the recording. Printed: the events/s achieved beside the target, the replay's
   duration and switch, and the live lag (a match's commit -> its rating history row visible to a poller on its
   own connection) p50/p99 during the replay and over the whole run. The replay folds into a draft, so a live match
   is rated on the previous fold at once and refolded by the replay before its switch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_db import percentile, use_bench_database  # noqa: E402

GAME = "tennis"


def build(atp_dir: str, regenerate: bool) -> None:
    from django.core.management import call_command
    from django.db import connection

    from activity import backfill
    from activity.models import BackfillRun, UserActivity
    from esports.tournaments.models import Match

    if regenerate or not Match.objects.exists():
        started = time.monotonic()
        call_command("import_atp", atp_dir, verbosity=0)
        print(f"import_atp: {Match.objects.count():,} matches in {time.monotonic() - started:.1f} s")
    if not BackfillRun.objects.filter(status=BackfillRun.Status.SUCCEEDED).exists():
        with connection.cursor() as cursor:  # a half-done earlier build: start the ledger over (bench database)
            cursor.execute(f"TRUNCATE {UserActivity._meta.db_table}")
        started = time.monotonic()
        run = backfill.start_backfill(["tournaments.match"], batch_size=5000, enqueue=False)
        backfill.drive_inline(run.pk)
        print(f"backfill of the matches: {UserActivity.objects.count():,} events in {time.monotonic() - started:.1f} s")


def vacuum() -> None:
    """What autovacuum does in production, done here (the bench server may run with autovacuum off, as this
    machine's does): planner statistics and the visibility map of the tables the replay and the live path read.
    Without it the ledger looks empty to the planner and every outcome read fetches its heap rows (seconds per
    5,000-match batch instead of milliseconds)."""
    from django.db import connection

    tables = [
        "activity_useractivity",
        "tournaments_match",
        "tournaments_tournament",
        "tournaments_registration",
        "stats_playerrating",
        "stats_ratinghistory",
        "stats_ratingdraftrating",
    ]
    started = time.monotonic()
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    print(f"  VACUUM (ANALYZE) of {len(tables)} tables: {time.monotonic() - started:.1f} s")


def full_replay(runs: int) -> float:
    from stats.ratings.models import RatingHistory
    from stats.ratings.replay import request_replay, run_replay

    times = []
    for i in range(runs):
        request_replay(GAME)
        started = time.monotonic()
        result = run_replay(GAME)
        times.append(time.monotonic() - started)
        print(f"  run {i + 1}: {result.matches:,} rated matches, {result.chunks} chunks, {times[-1]:.2f} s")
    print(f"  history rows: {RatingHistory.objects.filter(game=GAME).count():,}")
    return statistics.median(times)


def naive_replay(sample: int) -> tuple[float, int]:
    """The seeds' way on the first `sample` rated matches: per match, get_or_create both rows, compute, save each,
    create the history rows. Rolled back. Returns (seconds per match, rated matches in the game)."""
    from django.db import transaction

    from stats.ratings import source
    from stats.ratings.models import PlayerRating, RatingHistory
    from stats.ratings.rules import winner_gain

    candidates = source.candidates_after(GAME, None)
    rated = source.rated_matches(candidates[: sample * 2])[:sample]
    started = time.monotonic()
    with transaction.atomic():
        for match in rated:
            (w,), (lo,) = match.winners, match.losers
            rw, _ = PlayerRating.objects.get_or_create(
                profile_id=w, game="naive", defaults={"rating": 1500, "peak": 1500, "updated_at": match.at}
            )
            rl, _ = PlayerRating.objects.get_or_create(
                profile_id=lo, game="naive", defaults={"rating": 1500, "peak": 1500, "updated_at": match.at}
            )
            delta = winner_gain(rw.rating, rl.rating)
            for row, sign in ((rw, 1), (rl, -1)):
                before = row.rating
                row.rating += sign * delta
                row.peak = max(row.peak, row.rating)
                row.matches_rated += 1
                row.save()
                RatingHistory.objects.create(
                    profile_id=row.profile_id,
                    game="naive",
                    key_at=match.key[0],
                    key_ext=match.key[1],
                    key_round=match.key[2],
                    key_num=match.key[3],
                    match_id=-match.key[4],  # beside the real history rows (unique per match and player)
                    at=match.at,
                    before=before,
                    after=row.rating,
                )
        transaction.set_rollback(True)
    per_match = (time.monotonic() - started) / len(rated)
    total = len(source.rated_after(GAME, None))
    return per_match, total


def live_fixture(n: int):
    """A tournament after every other, with `n` fresh entries of existing players, for new latest matches."""
    from django.contrib.auth import get_user_model

    from esports.tournaments.models import Registration, Tournament

    last = (
        Tournament.objects.filter(game=GAME, starts_at__isnull=False)
        .order_by("-starts_at")
        .values_list("starts_at", flat=True)
        .first()
    )
    assert last is not None, "no tournament to follow"
    cup = Tournament.objects.create(
        name=f"bench live {time.time()}", game=GAME, status="ongoing", starts_at=last + timedelta(days=365)
    )
    users = list(
        get_user_model().objects.filter(username__startswith="atp").order_by("id").values_list("id", flat=True)[:n]
    )
    regs = Registration.objects.bulk_create(
        [Registration(tournament=cup, user_id=u, status="confirmed", checked_in=True) for u in users]
    )
    return cup, regs


def record_new_match(cup, regs, num: int) -> float:
    from django.utils import timezone

    from activity.recording import record_events_for
    from esports.tournaments.models import Match

    a, b = regs[(2 * num) % len(regs)], regs[(2 * num + 1) % len(regs)]
    match = Match.objects.create(
        tournament=cup,
        round="R32",
        match_num=num,
        participant1=a,
        participant2=b,
        winner=a,
        loser=b,
        state="completed",
        completed_at=timezone.now(),
    )
    started = time.monotonic()
    record_events_for("tournaments.match", [match.pk])
    return time.monotonic() - started


def update_latency(samples: int) -> None:
    from activity import projection
    from stats.ratings.live import on_events_inserted
    from stats.ratings.models import RatingReplayMark

    cup, regs = live_fixture(2 * samples)
    with_ratings = [record_new_match(cup, regs, i) * 1000 for i in range(samples)]
    assert not RatingReplayMark.objects.exists(), "a new latest match must fold live, not mark"
    projection._projectors.remove(on_events_inserted)
    try:
        without = [record_new_match(cup, regs, samples + i) * 1000 for i in range(samples)]
    finally:
        projection._projectors.append(on_events_inserted)
    print(
        f"  record one new latest match: {statistics.median(with_ratings):.2f} ms p50 / "
        f"{percentile(with_ratings, 99):.2f} ms p99 with the rating fold, {statistics.median(without):.2f} / "
        f"{percentile(without, 99):.2f} ms without (+{statistics.median(with_ratings) - statistics.median(without):.2f}"
        " ms p50); the rating is visible at the recording's commit"
    )


def produce(args: argparse.Namespace) -> None:
    """A producer process (--produce): saves completed matches of the live cup through the ORM at its share of the
    rate (the post_save signal enqueues them; the worker records them, rating included), and a poller thread on its
    own connection sees each match's rating history appear. Prints one line per match: id, commit, visible (epoch)."""
    from django.db import connection
    from django.utils import timezone

    from esports.tournaments.models import Match, Registration
    from stats.ratings.models import RatingHistory

    regs = list(Registration.objects.filter(tournament_id=args.produce).order_by("id"))
    interval = 4 / args.events_per_second  # match_played x2, match_won, match_lost
    committed: dict[int, float] = {}
    visible: dict[int, float] = {}
    stop = threading.Event()
    lock = threading.Lock()

    def poll() -> None:
        while True:
            with lock:
                pending = [m for m in committed if m not in visible]
            if pending:
                seen = RatingHistory.objects.filter(match_id__in=pending).values_list("match_id", flat=True)
                now = time.time()
                for match_id in set(seen):
                    visible[match_id] = now
            elif stop.is_set():
                break
            if stop.is_set() and time.time() > stop_at + 30:
                break  # what is still not rated 30 s after the traffic ended is reported as such
            time.sleep(0.02)
        connection.close()

    stop_at = float("inf")
    poller = threading.Thread(target=poll)
    poller.start()
    started = next_at = time.monotonic()
    k = 0
    while time.monotonic() - started < args.live_seconds:
        # New latest matches, as live play makes them: the match number follows the clock (ms since the bench's
        # start, interleaved between producers), so each sorts after those committed before it (a few recorded out
        # of order across producers are corrections by the rules: marked and replayed by the maintenance job).
        num = int((time.time() - args.epoch) * 1000) * args.producers + args.offset
        a, b = regs[(2 * k) % len(regs)], regs[(2 * k + 1) % len(regs)]
        k += 1
        match = Match.objects.create(
            tournament_id=args.produce,
            round="R32",
            match_num=num,
            participant1=a,
            participant2=b,
            winner=a,
            loser=b,
            state="completed",
            completed_at=timezone.now(),
        )  # autocommit: committed (and its enqueue done by the after-commit hook) when create returns
        with lock:
            committed[match.pk] = time.time()
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    stop_at = time.time()
    stop.set()
    poller.join()
    for match_id, at in committed.items():
        print(match_id, at, visible.get(match_id, "nan"))
    connection.close()


def replay_under_traffic(seconds: float, events_per_second: float, producers: int, concurrency: int) -> None:
    import os
    import subprocess

    from django.db import connection

    from activity.recording import record_events_for
    from bench.ingest import Worker
    from esports.tournaments.models import Match, Tournament
    from project.celery import app
    from stats.ratings.models import RatingGame
    from stats.ratings.pending import replay_pending_games

    season = (
        Tournament.objects.filter(game=GAME, season__isnull=False)
        .order_by("-season")
        .values_list("season", flat=True)
        .first()
    )
    assert season is not None, "no imported season"
    final = Match.objects.filter(
        tournament__game=GAME, tournament__season=season - 1, round="F", state="completed"
    ).first()
    assert final is not None, f"no final in {season - 1}"
    cup, _regs = live_fixture(400)
    app.control.purge()
    worker = Worker(concurrency, [])
    worker.wait_ready(app)
    epoch = time.time()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--produce",
                str(cup.pk),
                "--offset",
                str(i),
                "--producers",
                str(producers),
                "--epoch",
                str(epoch),
                "--events-per-second",
                str(events_per_second / producers),
                "--live-seconds",
                str(seconds),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ,
        )
        for i in range(producers)
    ]
    try:
        time.sleep(3)  # the traffic in its stride
        # the correction: the final of the season before the last, won by the other player
        final.winner_id, final.loser_id = final.loser_id, final.winner_id
        final.save()
        record_events_for("tournaments.match", [final.pk])
        replay_from = time.time()
        results = replay_pending_games()
        replay_to = time.time()
        # Then what the maintenance worker does with the replay task a correction publishes (and beat's minutely
        # job): take the marks of live matches recorded out of order.
        job_stop = threading.Event()

        def maintenance() -> None:
            while not job_stop.is_set():
                replay_pending_games()
                time.sleep(0.5)
            connection.close()

        job = threading.Thread(target=maintenance)
        job.start()
        try:
            outputs = [p.communicate()[0] for p in procs]
        finally:
            job_stop.set()
            job.join()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        worker.stop()
    rows = [line.split() for out in outputs for line in out.splitlines() if line.strip()]
    matches = [(float(at), float(seen)) for _, at, seen in rows]
    first, last = min(at for at, _ in matches), max(at for at, _ in matches)
    achieved = 4 * len(matches) / (last - first)
    lags = [(seen - at) * 1000 for at, seen in matches if seen == seen]
    during = [(seen - at) * 1000 for at, seen in matches if seen == seen and replay_from <= at <= replay_to]
    missing = sum(1 for _, seen in matches if seen != seen)
    switch = RatingGame.objects.get(game=GAME).last_switch_seconds or 0.0
    print(
        f"  live traffic: {len(matches)} matches saved through the ORM by {producers} producer process(es), "
        f"recorded by one worker (-c {concurrency}, enqueue mode {os.environ.get('ACTIVITY_ENQUEUE_MODE', 'batch')}): "
        f"{achieved:.0f} events/s achieved (target {events_per_second:.0f})"
    )
    print(
        f"  correction of a {season - 1} final replayed in {replay_to - replay_from:.2f} s "
        f"({sum(r.matches for r in results):,} matches refolded, switch {switch * 1000:.0f} ms)"
    )
    if during:
        print(
            f"  live lag (commit -> rating visible) during the replay: {statistics.median(during):.0f} ms p50 / "
            f"{percentile(during, 99):.0f} ms p99 / {max(during):.0f} ms max over {len(during)} matches"
        )
    print(
        f"  live lag over the whole run: {statistics.median(lags):.0f} ms p50 / {percentile(lags, 99):.0f} ms p99; "
        f"{missing} match(es) not rated 30 s after the traffic stopped"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--atp-dir", default=str(Path(__file__).resolve().parent.parent.parent / "shared/data/atp"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--naive-sample", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=200, help="new matches timed for the update latency")
    parser.add_argument("--live-seconds", type=float, default=20)
    parser.add_argument("--events-per-second", type=float, default=200)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--skip-traffic", action="store_true")
    parser.add_argument("--skip-replay", action="store_true", help="only the live-traffic part (3.)")
    parser.add_argument("--producers", type=int, default=2, help="producer processes of the live traffic")
    parser.add_argument("--concurrency", type=int, default=2, help="the events worker's prefork processes")
    parser.add_argument("--produce", type=int, default=None, help=argparse.SUPPRESS)  # a producer process's cup
    parser.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)  # a producer's index
    parser.add_argument("--epoch", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    use_bench_database("activity_ratings_bench")
    if args.produce is not None:
        produce(args)
        return
    from project.db_timeouts import use_job_timeouts

    use_job_timeouts()  # a job, like the worker that replays: no web statement timeout
    build(args.atp_dir, args.regenerate)
    vacuum()
    if not args.skip_replay:
        print("1. full replay of the ATP history")
        replay = full_replay(args.runs)
        per_match, total = naive_replay(args.naive_sample)
        print(
            f"  median {replay:.2f} s; naive per-match ORM loop {per_match * 1000:.2f} ms/match x {total:,} = "
            f"{per_match * total:.0f} s extrapolated ({per_match * total / replay:.0f}x)"
        )
        print("2. rating update after a new match")
        update_latency(args.samples)
    if not args.skip_traffic:
        print("3. replay under live traffic")
        if not args.skip_replay:
            vacuum()  # the full replays rewrote every rating row
        replay_under_traffic(args.live_seconds, args.events_per_second, args.producers, args.concurrency)


if __name__ == "__main__":
    main()
