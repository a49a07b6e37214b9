"""Read path figures (DESIGN.md §8): timeline first page, stats lookup (cached / uncached), leaderboard top 100
(overall, per game and per season, beside the old per-request ledger aggregate), the following feed (first and tenth
page at 10 / 1,000 / 10,000 followees, beside the naive IN (...) query), profile page render; p50 / p95 over many
iterations, with the naive way (no projection: aggregate the ledger per request) as a ratio in the same run.
Prints figures; asserts nothing.

The ledger is generated directly with set-based SQL in a database of its own: USERS x 50 events (a realistic mix:
matches with outcomes, registrations, check-ins, completions, one placement, coins, an achievement, teams, the
profile event; 10% follower-only, coins private; tournament events carry their tournament's game and season), 5
follows per user, then the stats (lifetime, per game, per season) recomputed with stats.recompute.recompute_stats.
A later run with the same size reuses the data.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python bench/read_path.py --users 10000 [--iterations 500]

Database: BENCH_DATABASE_NAME (default activity_read_bench); the cache is the Redis of REDIS_URL under a key prefix of
its own.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("CACHE_KEY_PREFIX", f"bench-{uuid.uuid4().hex[:8]}")
os.environ.setdefault("DB_CONN_MAX_AGE", "600")

from bench.bench_db import percentile, public_id_sql, use_bench_database, without_statement_timeout  # noqa: E402
from bench.career_read_path import career_figures  # noqa: E402

EVENTS_PER_USER = 50
GAMES = ("valorant", "chess", "tennis", "dota")
TOURNAMENTS = 2000  # the events name tournament 1 + hash % TOURNAMENTS, of game GAMES[id % 4]
FIRST_SEASON, SEASONS = 2015, 10  # tournament id's season: FIRST_SEASON + id % SEASONS
BOARD_SEASON = FIRST_SEASON + 3

# The per-user template: 49 events + profile_created = 50. (kind, slot): match slots pair match_played with its
# outcome (same source id and time); the outcome is won or lost per user and match.
TEMPLATE: list[tuple[str, int]] = (
    [("match_played", m) for m in range(14)]
    + [("match_outcome", m) for m in range(14)]
    + [("tournament_registered", t) for t in range(4)]
    + [("tournament_joined", t) for t in range(4)]
    + [("tournament_completed", t) for t in range(3)]
    + [("placement", 0)]
    + [("coins_earned", c) for c in range(4)]
    + [("coins_spent", c) for c in range(2)]
    + [("achievement_unlocked", 0), ("team_joined", 0), ("team_created", 0)]
)
assert len(TEMPLATE) + 1 == EVENTS_PER_USER


def generate(users: int) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from activity.models import UserActivity
    from stats.recompute import recompute_stats

    ledger = UserActivity._meta.db_table
    template = ", ".join(f"({i}, '{kind}', {slot})" for i, (kind, slot) in enumerate(TEMPLATE))
    games = "ARRAY[" + ", ".join(f"'{g}'" for g in GAMES) + "]"
    started = time.monotonic()
    joined = timezone.now() - timedelta(days=800)
    with connection.cursor() as cursor:
        # The public-ID counter goes with the profiles it numbered: the regenerated ones are numbered from 1 again.
        cursor.execute(
            f"TRUNCATE {ledger}, stats_userprofilestats, profiles_follow, economy_deltacrowntransaction, "
            "economy_deltacrownwallet, profiles_userprofile, profiles_publicidcounter, tournaments_tournament, "
            "auth_user CASCADE"
        )
        # The tournaments the events name: a per-game board is only served for a game some tournament is played in.
        cursor.execute(
            "INSERT INTO tournaments_tournament (id, name, game, season, status, created_at, updated_at) "
            "SELECT t, 'Bench Cup ' || t, (%s::text[])[1 + t %% 4], %s + t %% %s, 'completed', %s, %s "
            "FROM generate_series(1, %s) t",
            [list(GAMES), FIRST_SEASON, SEASONS, joined, joined, TOURNAMENTS],
        )
        cursor.execute("SELECT setval(pg_get_serial_sequence('tournaments_tournament', 'id'), %s)", [TOURNAMENTS])
        cursor.execute(
            "INSERT INTO auth_user (id, password, username, first_name, last_name, email, is_staff, is_active, "
            "is_superuser, date_joined) SELECT g, '!', 'bench' || g, 'Player', g::text, '', false, true, false, "
            "%s FROM generate_series(1, %s) g",
            [joined, users],
        )
        cursor.execute("SELECT setval(pg_get_serial_sequence('auth_user', 'id'), %s)", [users])
        with transaction.atomic():  # the IDs' reservation commits with the profiles that carry them
            cursor.execute(
                "INSERT INTO profiles_userprofile (user_id, display_name, show_match_history, show_tournament_stats, "
                f"created_at, updated_at, public_id) SELECT g, 'Player ' || g, g %% 10 <> 0, g %% 7 <> 0, %s, now(), "
                f"{public_id_sql(joined, users, 'g')} FROM generate_series(1, %s) g",
                [joined, users],
            )
        cursor.execute(
            "INSERT INTO profiles_follow (follower_id, followee_id, created_at) "
            "SELECT g, 1 + ((g::bigint * 7919 + k * 104729) %% %s), now() FROM generate_series(1, %s) g, "
            "generate_series(1, 5) k WHERE 1 + ((g::bigint * 7919 + k * 104729) %% %s) <> g ON CONFLICT DO NOTHING",
            [users, users, users],
        )
        chunk = 10_000
        for lo in range(1, users + 1, chunk):
            hi = min(users, lo + chunk - 1)
            with transaction.atomic():
                cursor.execute(
                    _LEDGER_SQL.format(
                        ledger=ledger,
                        template=template,
                        games=games,
                        tournaments=TOURNAMENTS,
                        first_season=FIRST_SEASON,
                        seasons=SEASONS,
                    ),
                    [lo, hi],
                )
            print(
                f"  ledger: users {lo}..{hi} ({hi * EVENTS_PER_USER:,} events, {time.monotonic() - started:.0f}s)",
                flush=True,
            )
    print(f"  generated {users * EVENTS_PER_USER:,} events in {time.monotonic() - started:.1f}s", flush=True)
    t = time.monotonic()
    recompute_stats(range(1, users + 1))
    print(f"  stats recomputed for {users:,} users in {time.monotonic() - t:.1f}s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


# Per (user u, template row): deterministic pseudo-random choices from hashes of (u, row).
_LEDGER_SQL = """
INSERT INTO {ledger}
       (user_id, event_type, timestamp, recorded_at, amount, metadata, source_model, source_id, seq, visibility,
        game, season)
SELECT u,
       et,
       at,
       at + interval '2 seconds',
       CASE WHEN et IN ('coins_earned', 'coins_spent') THEN 10 + (h %% 490) END,
       CASE
         WHEN et LIKE 'coins%%'
           THEN jsonb_build_object('reason', CASE WHEN et = 'coins_earned' THEN 'Prize' ELSE 'Shop' END)
         WHEN et = 'achievement_unlocked'
           THEN jsonb_build_object('code', 'a' || (h %% 40), 'name', 'Badge ' || (h %% 40), 'tier', 'minor')
         WHEN et LIKE 'team%%' THEN jsonb_build_object('team_id', 1 + u / 5, 'team', 'Team ' || (1 + u / 5))
         WHEN et = 'profile_created' THEN '{{}}'::jsonb
         ELSE jsonb_build_object('tournament_id', tid, 'tournament', 'Bench Cup ' || tid,
                                 'game', ({games})[1 + tid %% 4], 'round', 'R16')
       END,
       CASE
         WHEN et LIKE 'match%%' THEN 'tournaments.match'
         WHEN et LIKE 'coins%%' THEN 'economy.deltacrowntransaction'
         WHEN et = 'achievement_unlocked' THEN 'achievements.userachievement'
         WHEN et = 'team_created' THEN 'teams.team'
         WHEN et = 'team_joined' THEN 'teams.teammembership'
         WHEN et = 'profile_created' THEN 'profiles.userprofile'
         WHEN et IN ('tournament_registered', 'tournament_joined') THEN 'tournaments.registration'
         ELSE 'tournaments.tournamentresult'
       END,
       u::bigint * 100 + slot_key,
       1,
       CASE WHEN et LIKE 'coins%%' THEN 'private' WHEN h %% 10 = 0 THEN 'followers' ELSE 'public' END,
       CASE WHEN et LIKE 'match%%' OR et LIKE 'tournament%%' THEN ({games})[1 + tid %% 4] END,
       CASE WHEN et LIKE 'match%%' OR et LIKE 'tournament%%' THEN {first_season} + tid %% {seasons} END
FROM (
  SELECT u, i, slot, h, tid,
         CASE kind
           WHEN 'match_outcome' THEN CASE WHEN mix %% 100 < 55 THEN 'match_won' ELSE 'match_lost' END
           WHEN 'placement'
             THEN (ARRAY['tournament_won','tournament_runner_up','tournament_top4','tournament_top4'])[1 + mix %% 4]
           ELSE kind
         END AS et,
         CASE WHEN kind IN ('match_played', 'match_outcome') THEN slot ELSE 20 + i END AS slot_key,
         now() - make_interval(
           secs => (abs(hashint8(u::bigint * 1000 + CASE WHEN kind IN ('match_played','match_outcome')
                                                    THEN slot ELSE 100 + i END)) %% 63072000)::double precision
         ) AS at
  FROM (
    SELECT u, t.i, t.kind, t.slot,
           abs(hashint8(u::bigint * 1000 + t.i)) AS h,
           abs(hashint8(u::bigint * 977 + t.slot * 31 + length(t.kind))) AS mix,
           1 + abs(hashint8(u::bigint * 53 + t.slot)) %% {tournaments} AS tid
    FROM generate_series(%s, %s) AS u
    CROSS JOIN (VALUES {template}, (49, 'profile_created', 0)) AS t(i, kind, slot)
  ) AS base
) AS rows
"""


def timed(fn: Callable[[], object], iterations: int, warmup: int = 20) -> list[float]:
    for _ in range(min(warmup, iterations)):
        fn()
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def report(name: str, samples: list[float], goal: float | None = None, naive: list[float] | None = None) -> None:
    p50, p95 = statistics.median(samples), percentile(samples, 95)
    line = f"  {name:<46} p50 {p50:8.3f} ms   p95 {p95:8.3f} ms"
    if goal is not None:
        line += f"   goal p95 <= {goal:g} ms: {'met' if p95 <= goal else 'MISSED'}"
    if naive:
        ratio = statistics.median(naive) / p50  # one decimal below 10: "x0" would hide a slower-than-naive figure
        line += f"   (naive p50 {statistics.median(naive):.2f} ms: x{ratio:.{0 if ratio >= 10 else 1}f})"
    print(line, flush=True)


FEED_FOLLOWEES = (10, 1_000, 10_000)
FEED_GOALS = {1_000: 10.0, 10_000: 20.0}  # DESIGN.md §8: p95 at 1,000 and 10,000 followees


def feed_viewers(users: int) -> list[tuple[int, int]]:
    """(followee count, viewer): a viewer (one of the last users) following that many players spread over all of them
    (capped by the platform's size); rebuilt on every run, so the data's own 5 follows per user stay as they were."""
    from django.db import connection

    viewers = []
    with connection.cursor() as cursor:
        for k, wanted in enumerate(FEED_FOLLOWEES):
            viewer, count = users - k, min(wanted, users - 1)
            cursor.execute("DELETE FROM profiles_follow WHERE follower_id = %s", [viewer])
            # Followees 1 + (i * users / count) for i < count, skipping the viewer: every part of the platform.
            cursor.execute(
                "INSERT INTO profiles_follow (follower_id, followee_id, created_at) "
                "SELECT %s, f, now() FROM (SELECT DISTINCT 1 + (i::bigint * %s / %s) AS f "
                "FROM generate_series(0, %s) i) c WHERE f <> %s AND f <= %s ORDER BY f LIMIT %s",
                [viewer, users, count, count, viewer, users, count],
            )
            viewers.append((count, viewer))
        cursor.execute("VACUUM ANALYZE profiles_follow")
    return viewers


def feed_figures(users: int, n: int) -> None:
    """The following feed's first and tenth page (20 per page) per follow count, beside the naive query."""
    from django.db import connection, transaction

    from activity.selectors.feed import FEED_DEFAULT_TYPES, Strategy, feed, page_query_for
    from activity.selectors.feed_sql import follow_count_and_players

    print("following feed (selector: follow count + one page query; 20 per page)")
    viewers = feed_viewers(users)
    types = sorted(FEED_DEFAULT_TYPES)
    naive_sql = (
        "SELECT a.* FROM activity_useractivity a WHERE a.user_id IN "
        "(SELECT followee_id FROM profiles_follow WHERE follower_id = %s) "
        "AND a.event_type = ANY (%s) AND a.visibility IN ('public', 'followers') "
        "ORDER BY a.timestamp DESC, a.id DESC LIMIT 21 OFFSET %s"
    )

    def naive(viewer: int, offset: int) -> None:
        # The naive way: everyone's events in one IN (...) list, sorted, and OFFSET for deeper pages (JIT off too;
        # no statement timeout: at 10,000 followees it may take longer than the site allows, and it is timed anyway).
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off; SET LOCAL statement_timeout = 0")
            cursor.execute(naive_sql, [viewer, types, offset])
            cursor.fetchall()

    def tenth_cursor(viewer: int) -> str | None:
        cursor = None
        for _ in range(9):
            cursor = feed(viewer, cursor=cursor).next_cursor
        return cursor

    for count, viewer in viewers:
        followees, players = follow_count_and_players(viewer)
        chosen = page_query_for(followees, players, 21).value
        naive_n = max(5, n // 20)
        first_naive = timed(partial(naive, viewer, 0), naive_n, warmup=2)
        report(
            f"feed first page, {count:,} followees ({chosen})",
            timed(partial(feed, viewer), n),
            goal=FEED_GOALS.get(count),
            naive=first_naive,
        )
        cursor = tenth_cursor(viewer)
        report(
            f"feed tenth page, {count:,} followees",
            timed(partial(feed, viewer, cursor=cursor), n),
            goal=FEED_GOALS.get(count),
            naive=timed(partial(naive, viewer, 180), naive_n, warmup=2),
        )
        for strategy in (Strategy.PER_FOLLOWEE, Strategy.RECENT_FIRST):
            report(
                f"  first page forced {strategy.value}",
                timed(partial(feed, viewer, strategy=strategy), max(5, n // 10), warmup=2),
            )


SECTIONS = ("timeline", "stats", "boards", "ratings", "feed", "career", "profile")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--regenerate", action="store_true", help="rebuild the data even if the size matches")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default all): {', '.join(SECTIONS)}",
    )
    args = parser.parse_args()
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    use_bench_database("activity_read_bench")

    from django.conf import settings
    from django.core.cache import cache

    from activity.models import UserActivity
    from esports.profiles.models import UserProfile
    from esports.tournaments.models import Tournament

    assert not settings.DEBUG, "DEBUG records every query: run without DEBUG"
    users = args.users
    with without_statement_timeout():  # counting 5M rows of a cold cache may take longer than a request may
        have_users = UserProfile.objects.count()
        have_events = UserActivity.objects.count()
    print(
        f"read path benchmark: {users:,} users x {EVENTS_PER_USER} events; "
        f"database {settings.DATABASES['default']['NAME']}, "
        f"cache {str(settings.CACHES['default']['BACKEND']).rsplit('.', 1)[-1]}"
    )
    stale = (
        have_users != users
        or have_events != users * EVENTS_PER_USER
        or not Tournament.objects.filter(season__isnull=False).exists()  # data from before events had seasons
    )
    if args.regenerate or stale:
        print(f"generating (found {have_users:,} users / {have_events:,} events)", flush=True)
        with without_statement_timeout():
            generate(users)
    print(
        f"ledger rows: {users * EVENTS_PER_USER if stale else have_events:,}; iterations per figure: {args.iterations}",
        flush=True,
    )

    rng = random.Random(7)
    n = args.iterations
    profiles = {
        p.pk: p for p in UserProfile.objects.select_related("user").filter(pk__in=rng.sample(range(1, users + 1), 200))
    }
    sample = Sample(users, n, rng, profiles, list(profiles))
    runners: dict[str, Callable[[Sample], None]] = {
        "timeline": timeline_figures,
        "stats": stats_figures,
        "boards": board_figures,
        "ratings": rating_figures,
        "feed": lambda s: feed_figures(s.users, s.n),
        "career": lambda s: career_figures(s.users, s.n, timed, report),
        "profile": profile_figures,
    }
    for name in SECTIONS:  # in this order whatever --only's: the profile figures come after career's data changes
        if name in sections:
            runners[name](sample)
    cache.close()


@dataclass
class Sample:
    """What every section draws from: the platform's size, the iterations, one seeded RNG and 200 sampled
    profiles (with their users)."""

    users: int
    n: int
    rng: random.Random
    profiles: dict
    pool: list[int]

    def pick(self):
        return self.profiles[self.rng.choice(self.pool)]

    def viewer(self):
        """A signed-in other user (maybe a follower)."""
        from esports.profiles.models import UserProfile

        return UserProfile.objects.select_related("user").get(pk=1).user


def timeline_figures(s: Sample) -> None:
    from django.contrib.auth.models import AnonymousUser

    from activity.privacy import relation_between
    from activity.selectors.match_history import match_history
    from activity.selectors.profiles import profile_by_id
    from activity.selectors.timeline import timeline

    anonymous, viewer, rng, n, pool = AnonymousUser(), s.viewer(), s.rng, s.n, s.pool
    print("timeline / history (selector: privacy filter + one keyset page query + rows -> models)")
    report(
        "timeline first page, anonymous viewer",
        timed(lambda: timeline(relation_between(anonymous, s.pick())).items, n),
        goal=5,
    )
    report(
        "timeline first page, signed-in viewer (+ follow check)",
        timed(lambda: timeline(relation_between(viewer, s.pick())).items, n),
        goal=5,
    )
    self_relations = {uid: relation_between(s.profiles[uid].user, s.profiles[uid]) for uid in pool}
    report(
        "match history first page (outcomes from the ledger), self",
        timed(lambda: match_history(self_relations[rng.choice(pool)]).items, n),
    )
    report(
        "match history first page, game filter, self",
        timed(lambda: match_history(self_relations[rng.choice(pool)], game="chess").items, n),
    )
    report(
        "profile lookup by id (+ follower counts)",
        timed(lambda: profile_by_id(rng.choice(pool), anonymous, with_counts=True), n),
    )


def stats_figures(s: Sample) -> None:
    from django.db import connection

    from stats.recompute import ledger_aggregate_sql
    from stats.selectors.lifetime import cached_stats, load_stats

    rng, n, pool = s.rng, s.n, s.pool
    print("stats lookup")

    def naive_stats(uid: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(ledger_aggregate_sql("user_id = %s"), [uid])
            cursor.fetchall()

    naive = timed(lambda: naive_stats(rng.choice(pool)), n)
    report(
        "stats lookup, uncached (projection row by primary key)",
        timed(lambda: load_stats(rng.choice(pool)), n),
        goal=1,
        naive=naive,
    )
    for uid in pool:
        cached_stats(uid)
    report(
        "stats lookup, cached (Redis, one MGET)", timed(lambda: cached_stats(rng.choice(pool)), n), goal=1, naive=naive
    )


def board_figures(s: Sample) -> None:
    from django.db import connection

    from activity.models import UserActivity
    from stats.counters import counter_sql
    from stats.recompute import ledger_aggregate_sql
    from stats.selectors.leaderboards import Board, leaderboard

    n = s.n
    print("leaderboards (top 100)")

    def naive_board() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT * FROM ({ledger_aggregate_sql('true')}) a ORDER BY tournaments_won DESC, user_id LIMIT 100"
            )
            cursor.fetchall()

    with without_statement_timeout():  # the old way, timed for the ratio: seconds, past the site's timeout
        naive_lb = timed(naive_board, max(5, n // 50), warmup=1)
    board_n = max(50, n // 5)
    for board in Board:
        report(
            f"{board.value}, uncached",
            timed(partial(leaderboard, board, use_cache=False), board_n),
            goal=10,
            naive=naive_lb if board is Board.TOURNAMENTS_WON else None,
        )
    report("tournaments_won, cached", timed(lambda: leaderboard(Board.TOURNAMENTS_WON), n), goal=10)
    # The old per-game board, for the ratio: the game's events aggregated from the ledger per request (what the
    # selector did before the per-game / per-season rows).
    old_types = ["tournament_won", "tournament_runner_up", "match_played", "match_won"]
    old_types += [f"{t}_reversed" for t in old_types]
    old_counters = ", ".join(
        f"{counter_sql(f)} AS {f}"
        for f in ("tournaments_won", "tournaments_runner_up", "matches_played", "matches_won")
    )

    def ledger_board(season: int | None) -> None:
        where = "metadata ->> 'game' = %s AND event_type = ANY(%s)"
        params: list = ["chess", old_types]
        if season is not None:  # the tournament's season: metadata names the tournament only
            where += (
                " AND (metadata ->> 'tournament_id')::int IN (SELECT id FROM tournaments_tournament WHERE season = %s)"
            )
            params.append(season)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT * FROM (SELECT user_id, {old_counters} FROM {UserActivity._meta.db_table} WHERE {where} "
                "GROUP BY user_id) a WHERE matches_won > 0 "
                "ORDER BY matches_won DESC, matches_played, user_id LIMIT 100",
                params,
            )
            cursor.fetchall()

    few = max(5, n // 50)
    for label, season in (("per game", None), (f"per season ({BOARD_SEASON})", BOARD_SEASON)):
        naive_scoped = timed(partial(ledger_board, season), few, warmup=1)
        report(f"ledger aggregate {label} (old board)", naive_scoped)
        for board in (Board.MATCHES_WON, Board.TOURNAMENTS_WON, Board.WIN_RATE):
            uncached = partial(leaderboard, board, game="chess", season=season, use_cache=False, min_matches=1)
            report(
                f"{board.value} {label}, uncached",
                timed(uncached, board_n),
                goal=10,
                naive=naive_scoped if board is Board.MATCHES_WON else None,
            )
        report(
            f"matches_won {label}, cached",
            timed(partial(leaderboard, Board.MATCHES_WON, game="chess", season=season), n),
            goal=10,
        )


RATING_MIN_MATCHES = (1, 5, 10)


def ensure_ratings() -> int:
    """PlayerRating rows for the bench players, set-based, once: one per (player, game) with a match in it (matches
    rated = that game's matches played), ratings spread around 1500 like an Elo pool's (a sum of three uniform
    draws: about normal, sd ~115), the peak at or above the rating. Returns the rows there are."""
    from django.db import connection, transaction

    from stats.models import UserGameStats
    from stats.ratings.models import PlayerRating

    ratings, game_stats = PlayerRating._meta.db_table, UserGameStats._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {ratings}")
        have = cursor.fetchone()[0]
        if have:
            return have
        started = time.monotonic()
        with transaction.atomic():
            cursor.execute(
                f"INSERT INTO {ratings} (profile_id, game, rating, peak, peak_at, matches_rated, updated_at) "
                "SELECT profile_id, game, r, r + (h3 %% 60), CASE WHEN h3 %% 60 > 0 THEN now() END, matches_played, "
                "now() FROM (SELECT profile_id, game, matches_played, "
                "1300 + (h1 %% 1331) / 10.0 + (h2 %% 1331) / 10.0 + ((h1 / 1331) %% 1331) / 10.0 AS r, h3 "
                "FROM (SELECT profile_id, game, matches_played, "
                "abs(hashint8(profile_id::bigint * 31 + length(game))) h1, "
                "abs(hashint8(profile_id::bigint * 37 + ascii(game))) h2, abs(hashint8(profile_id::bigint * 41)) h3 "
                f"FROM {game_stats} WHERE matches_played > 0) g) x",
                [],  # bound (no parameters): the driver turns %% into %
            )
            created = cursor.rowcount
        cursor.execute(f"VACUUM ANALYZE {ratings}")
        print(f"  ratings: {created:,} PlayerRating rows generated in {time.monotonic() - started:.1f}s", flush=True)
        return created


def rating_figures(s: Sample) -> None:
    """The per-game rating leaderboard (top 100, minimum matches filter) beside the naive way: the top 100 of the
    game's ratings sorted whole per request (no index order to walk)."""
    from django.db import connection

    from stats.ratings.models import PlayerRating
    from stats.ratings.selectors import rating_leaderboard

    with without_statement_timeout():
        rows = ensure_ratings()
    print(f"rating leaderboard per game (top 100; {rows:,} PlayerRating rows over {len(GAMES)} games)")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT matches_rated, count(*) FROM {PlayerRating._meta.db_table} WHERE game = %s GROUP BY 1 ORDER BY 1",
            ["chess"],
        )
        spread = cursor.fetchall()
    print(f"  (chess: {sum(c for _, c in spread):,} rated players; by matches rated: {dict(spread)})")

    def naive(min_matches: int) -> None:
        # ORDER BY an expression no index has: every qualifying row of the game read and sorted.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT profile_id, rating, peak, matches_rated FROM {PlayerRating._meta.db_table} "
                "WHERE game = %s AND matches_rated >= %s ORDER BY rating + 0 DESC, profile_id LIMIT 100",
                ["chess", min_matches],
            )
            cursor.fetchall()

    few = max(5, s.n // 20)
    for min_matches in RATING_MIN_MATCHES:
        report(
            f"rating board chess, min_matches {min_matches}",
            timed(partial(rating_leaderboard, "chess", min_matches=min_matches), s.n),
            goal=10,
            naive=timed(partial(naive, min_matches), few, warmup=2),
        )


def profile_figures(s: Sample) -> None:
    from django.test import Client

    from esports.profiles.models import UserProfile

    rng, n, pool, profiles, users, viewer = s.rng, s.n, s.pool, s.profiles, s.users, s.viewer()
    print("profile page (Django test client: URL routing, lookup, privacy, stats, timeline, match history, template)")
    # Production is HTTPS-only behind a TLS-terminating proxy that says so in X-Forwarded-Proto (plain HTTP redirects).
    client = Client(HTTP_X_FORWARDED_PROTO="https")
    probe = client.get(f"/u/{profiles[pool[0]].user.username}/")
    assert probe.status_code == 200, f"the profile page answered {probe.status_code}"
    # Uncached: each request a player no request of this run has asked for (their stats, first pages, season table
    # and rating curve all read from the database); cached: the sampled players, each requested once before.
    # (A platform smaller than the sample has no such player: its "uncached" figure repeats players, a smoke test.)
    unseen = sorted(set(range(1, users + 1)) - set(pool)) or sorted(pool)
    cold_users = rng.sample(unseen, min(n + 20, len(unseen)))
    cold = itertools.cycle(cold_users)
    names = dict(UserProfile.objects.filter(pk__in=cold_users + pool).values_list("pk", "user__username"))
    cache_cold = timed(lambda: client.get(f"/u/{names[next(cold)]}/"), max(1, len(cold_users) - 20))
    report("profile page, anonymous, uncached (caches cold)", cache_cold, goal=30)
    for uid in pool:
        client.get(f"/u/{names[uid]}/")
    report(
        "profile page, anonymous, cached (stats, first pages, seasons)",
        timed(lambda: client.get(f"/u/{names[rng.choice(pool)]}/"), n),
        goal=30,
    )
    client.force_login(viewer)
    signed_in = client.get(f"/u/{profiles[pool[0]].user.username}/")
    assert signed_in.status_code == 200 and b"Log out" in signed_in.content, "not signed in"
    for uid in pool:  # a signed-in viewer's pages are cached under its own viewer class
        client.get(f"/u/{names[uid]}/")
    report("profile page, signed in, cached", timed(lambda: client.get(f"/u/{names[rng.choice(pool)]}/"), n), goal=30)


if __name__ == "__main__":
    main()
