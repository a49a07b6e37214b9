"""Benchmark: reconciliation of 100k users / 5M events (synthetic), against the seeds' per-user loop. Prints figures.

    createdb -h 127.0.0.1 -U postgres activity_reconcile_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/activity_reconcile_bench SECRET_KEY=bench \
        .venv/bin/python bench/reconcile.py [--users 100000 --events 5000000] [--regenerate]

The data set is generated once, set-based (INSERT .. SELECT from generate_series; a realistic physical order: by time,
users interleaved) and reused by later runs. The stats are computed from it by stats.recompute. The only source rows
are the users' profiles (no matches etc.), so the sources -> ledger pass is measured on those 100k profile rows.
The naive loop (per user: aggregate with the ORM, compare, save) runs on a sample and is extrapolated.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Count, Max, Sum  # noqa: E402
from django.utils import timezone  # noqa: E402

from activity.derivation import PROFILE  # noqa: E402
from activity.models import UserActivity  # noqa: E402
from bench.bench_db import public_id_sql  # noqa: E402
from esports.profiles.models import UserProfile  # noqa: E402
from stats.counters import COUNTER_FIELDS, EFFECTS, grouped_measure  # noqa: E402
from stats.models import UserProfileStats  # noqa: E402
from stats.recompute import recompute_stats  # noqa: E402
from stats.reconcile import (  # noqa: E402
    CHUNK_USERS,
    compare_ledger_to_stats,
    comparison_sql,
    find_missing_events,
    run_reconciliation,
)

LEDGER = UserActivity._meta.db_table
STATS = UserProfileStats._meta.db_table
# A plausible mix (40 slots): matches dominate; coins are the only rows whose amount the comparison must read.
MIX = (
    ["match_played"] * 12
    + ["match_won"] * 5
    + ["match_lost"] * 5
    + ["tournament_registered"] * 3
    + ["tournament_joined"] * 3
    + ["tournament_completed"] * 2
    + ["coins_earned"] * 4
    + ["coins_spent"] * 2
    + ["achievement_unlocked"] * 2
    + ["team_joined"]
    + ["tournament_top4"]
)
assert len(MIX) == 40


def sql(statement: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def scalar(statement: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()[0]


def timed(fn):
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


def generate(users: int, events: int) -> None:
    print(f"generating {users:,} users and {events:,} events (once; later runs reuse them)...", flush=True)
    began = time.perf_counter()
    joined = timezone.now() - timedelta(days=400)
    # The public-ID counter goes with the profiles it numbered: the regenerated ones are numbered from 1 again.
    sql(
        f"TRUNCATE {LEDGER}, {STATS}, stats_stalestats, stats_reconciliationrun, profiles_userprofile, "
        f"profiles_publicidcounter, economy_deltacrownwallet, auth_user RESTART IDENTITY CASCADE"
    )
    sql(
        "INSERT INTO auth_user "
        "(id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined) "
        "SELECT g, '!', false, 'bench' || g, '', '', '', false, true, %s FROM generate_series(1, %s) g",
        [joined, users],
    )
    sql("SELECT setval(pg_get_serial_sequence('auth_user', 'id'), %s)", [users])
    with transaction.atomic():  # the IDs' reservation commits with the profiles that carry them
        sql(
            "INSERT INTO profiles_userprofile "
            "(user_id, display_name, show_match_history, show_tournament_stats, created_at, updated_at, public_id) "
            f"SELECT g, 'bench ' || g, true, true, %s, %s, {public_id_sql(joined, users, 'g')} "
            "FROM generate_series(1, %s) g",
            [joined, joined, users],
        )
    # One profile_created per user, with the key the derivation rules give it (so the sources pass finds it present).
    sql(
        f"INSERT INTO {LEDGER} "
        "(user_id, event_type, timestamp, recorded_at, amount, metadata, source_model, source_id, seq, visibility) "
        f"SELECT user_id, 'profile_created', created_at, created_at, NULL, '{{}}'::jsonb, %s, user_id, 1, 'public' "
        f"FROM profiles_userprofile",
        [PROFILE],
    )
    rest = events - users
    step = 1_000_000
    for start in range(1, rest + 1, step):
        stop = min(start + step - 1, rest)
        # user: a multiplicative hash of the row number spreads each user's events over the whole table (rows are in
        # time order, as a live ledger is); the type comes from an independent hash (else a user would get one type);
        # source ids are unique, so the idempotency key holds.
        sql(
            f"""
            INSERT INTO {LEDGER}
                   (user_id, event_type, timestamp, recorded_at, amount, metadata, source_model, source_id, seq,
                    visibility)
            SELECT u, t, ts, ts + interval '1 second',
                   CASE WHEN t IN ('coins_earned', 'coins_spent') THEN 1 + (g * 7919) %% 500 END,
                   '{{}}'::jsonb, 'bench.synthetic', g, 1,
                   CASE WHEN t IN ('coins_earned', 'coins_spent') THEN 'private' ELSE 'public' END
            FROM (SELECT g, 1 + ((g * 2654435761) %% %s) AS u, (%s::text[])[1 + ((hashint8(g) %% 40) + 40) %% 40] AS t,
                         now() - interval '365 days' + g * interval '6 seconds' AS ts
                  FROM generate_series(%s::bigint, %s::bigint) AS g) AS x
        """,
            [users, MIX, start, stop],
        )
        print(f"  ledger: {stop + users:,} rows ({time.perf_counter() - began:.0f} s)", flush=True)
    seconds, written = timed(lambda: recompute_stats(range(1, users + 1)))
    print(f"  stats: {written:,} rows by recompute_stats in {seconds:.1f} s", flush=True)
    connection.cursor().execute(f"VACUUM ANALYZE {LEDGER}")
    connection.cursor().execute(f"VACUUM ANALYZE {STATS}")
    print(f"generated in {time.perf_counter() - began:.0f} s", flush=True)


def naive_loop(user_ids: list[int]) -> int:
    """The seeds' way: per user, aggregate the ledger with the ORM, compare with the stats row, save if different."""
    fixed = 0
    for uid in user_ids:
        values = dict.fromkeys(COUNTER_FIELDS, 0)
        rows = (
            UserActivity.objects.filter(user_id=uid)
            .values("event_type")
            .annotate(n=Count("id"), amount_sum=Sum("amount"), amount_n=Count("amount"))
        )
        for row in rows:
            grouped = {"n": row["n"], "amount_sum": row["amount_sum"] or 0, "amount_n": row["amount_n"]}
            for field, sign in EFFECTS[row["event_type"]]:
                values[field] += sign * grouped[grouped_measure(field)]
        last = UserActivity.objects.filter(user_id=uid).aggregate(last=Max("timestamp"))["last"]
        stats = UserProfileStats.objects.get(profile_id=uid)
        if any(getattr(stats, f) != v for f, v in values.items()) or stats.last_activity_at != last:
            for f, v in values.items():
                setattr(stats, f, v)
            stats.last_activity_at = last
            stats.save()
            fixed += 1
    return fixed


def explain_one_chunk(hi: int) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")  # as the service runs it
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) " + comparison_sql(), [0, hi] * 3)
        plan = [row[0] for row in cursor.fetchall()]
    nodes = [line.strip() for line in plan if "Scan" in line or "Execution Time" in line]
    print("  plan of one chunk's comparison:")
    for line in nodes:
        print(f"    {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--sample", type=int, default=2000, help="users timed in the naive loop (then extrapolated)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()

    name = settings.DATABASES["default"]["NAME"]
    if "bench" not in name:
        sys.exit(
            f"refusing to run on {name!r}: point DATABASE_URL at a PostgreSQL database whose name contains 'bench'"
        )
    call_command("migrate", verbosity=0)
    have_users = UserProfile.objects.count()
    have_events = scalar(f"SELECT reltuples::bigint FROM pg_class WHERE oid = '{LEDGER}'::regclass")
    if args.regenerate or have_users != args.users or abs(have_events - args.events) > args.events * 0.02:
        generate(args.users, args.events)
    events = scalar(f"SELECT COUNT(*) FROM {LEDGER}")
    users = UserProfile.objects.count()
    size = scalar(f"SELECT pg_size_pretty(pg_total_relation_size('{LEDGER}'))")
    print(f"data: {users:,} users, {events:,} events (ledger {size} with indexes), chunk {CHUNK_USERS} users")

    # Warm the cache once (a nightly job on a live database finds the hot indexes in memory; the first run is shown).
    cold, result = timed(lambda: compare_ledger_to_stats(fix=False))
    print(
        f"ledger -> stats, first run: {cold:.2f} s, {result.users_checked:,} users checked, "
        f"{result.users_drifted} drifted"
    )
    runs = [timed(lambda: compare_ledger_to_stats(fix=False))[0] for _ in range(args.repeat)]
    stats_pass = statistics.median(runs)
    print(
        f"ledger -> stats (report only): median {stats_pass:.2f} s of {args.repeat} "
        f"({', '.join(f'{r:.2f}' for r in runs)}); "
        f"{users / stats_pass:,.0f} users/s, {events / stats_pass:,.0f} events/s"
    )
    explain_one_chunk(CHUNK_USERS)

    seconds, missing = timed(lambda: find_missing_events(fix=False))
    missing_total = sum(sum(c.values()) for c in missing.values())
    print(
        f"sources -> ledger alone (report only): {seconds:.2f} s over {users:,} profile rows, "
        f"the only source rows here ({users / seconds:,.0f} rows/s; {missing_total} missing)"
    )

    drifted = max(1, users // 100)
    sql(
        f"UPDATE {STATS} SET matches_won = matches_won + 1 WHERE profile_id IN "
        f"(SELECT profile_id FROM {STATS} ORDER BY profile_id LIMIT %s)",
        [drifted],
    )
    seconds, run = timed(lambda: run_reconciliation(fix=True, trigger="bench"))
    print(
        f"both passes with repair ({drifted:,} users corrupted first): {seconds:.2f} s total - "
        f"sources pass over {users:,} profile rows + ledger -> stats: {run.users_checked:,} checked, "
        f"{run.users_drifted:,} drifted, {run.users_fixed:,} fixed, {run.missing_events_total} missing events"
    )
    seconds, run = timed(lambda: run_reconciliation(fix=False, trigger="bench"))
    print(
        f"both passes, report only (clean): {seconds:.2f} s "
        f"({run.users_drifted} drifted, {run.missing_events_total} missing)"
    )

    step = max(1, users // args.sample)
    sample = list(UserProfile.objects.order_by("pk").values_list("pk", flat=True)[::step][: args.sample])
    sql(f"UPDATE {STATS} SET matches_won = matches_won + 1 WHERE profile_id = ANY(%s)", [sample[::100]])
    naive, fixed = timed(lambda: naive_loop(sample))
    per_user = naive / len(sample)
    extrapolated = per_user * users
    recompute_stats(sample[::100])
    print(
        f"seeds' per-user loop: {len(sample):,} users in {naive:.2f} s ({1000 * per_user:.2f} ms/user, {fixed} fixed) "
        f"-> {extrapolated:,.0f} s extrapolated to {users:,} users"
    )
    print(f"ratio: the per-user loop takes {extrapolated / stats_pass:,.0f}x the set-based ledger -> stats pass")


if __name__ == "__main__":
    main()
