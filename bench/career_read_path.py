"""Career read path figures (issue 16), run by bench/read_path.py on its data: head-to-head, the season table,
player search over realistic names, and the profile page with its charts; p50 / p95.

The generated ledger has no real match rows and no seasons, so this first makes the data career-like, idempotently:
  * every tournament gets a season (2015 + id % 10) - the season table groups by it;
  * display names become real-world names, first and last names drawn from the ATP players file (ATP_DIR) in
    combinations, so search meets the trigram distribution of real names instead of "Player 4242" x 100k;
  * pairs of players (1, 2), (3, 4), ... share their match rows' source ids for 10 matches, so head-to-head finds
    meetings (outcomes as generated: who "won" each is the generator's coin toss).
"""

from __future__ import annotations

import csv
import gzip
import os
import random
from pathlib import Path

from bench.bench_db import without_statement_timeout

H2H_MEETINGS = 10


def _atp_names() -> tuple[list[str], list[str]]:
    atp = Path(os.environ.get("ATP_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data" / "atp")
    firsts, lasts = set(), set()
    with gzip.open(atp / "atp_players.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("name_first") and row.get("name_last"):
                firsts.add(row["name_first"].strip())
                lasts.add(row["name_last"].strip())
    return sorted(firsts), sorted(lasts)


def prepare(users: int) -> list[str]:
    """Make the bench data career-like (see the module doc); returns the names, for the search queries."""
    from django.db import connection, transaction

    firsts, lasts = _atp_names()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE tournaments_tournament SET season = 2015 + id % 10 WHERE season IS NULL")
        cur.execute("SELECT count(*) FROM profiles_userprofile WHERE display_name LIKE 'Player %%'")
        if cur.fetchone()[0]:
            cur.execute(
                "UPDATE profiles_userprofile p SET display_name = "
                "f.names[1 + ((p.user_id::bigint * 7919) %% f.n)::int] || ' ' || "
                "l.names[1 + ((p.user_id::bigint * 104729) %% l.n)::int] "
                "FROM (SELECT %s::text[] AS names, %s AS n) f, (SELECT %s::text[] AS names, %s AS n) l "
                "WHERE p.display_name LIKE 'Player %%'",
                [firsts, len(firsts), lasts, len(lasts)],
            )
        # Pair (2k-1, 2k): the second's first H2H_MEETINGS match rows take the first's source ids (slots 0..9 of
        # the generator: match_played / its outcome share the slot's source id), and their outcomes mirror.
        cur.execute(
            "SELECT count(*) FROM activity_useractivity WHERE user_id = 2 AND source_model = 'tournaments.match' "
            "AND source_id < 200"
        )
        if not cur.fetchone()[0]:
            cur.execute(
                "UPDATE activity_useractivity SET source_id = (user_id - 1)::bigint * 100 + (source_id %% 100) "
                "WHERE user_id %% 2 = 0 AND user_id <= %s AND source_model = 'tournaments.match' "
                "AND source_id %% 100 < %s",
                [users, H2H_MEETINGS],
            )
        cur.execute("SELECT display_name FROM profiles_userprofile ORDER BY user_id LIMIT 5000")
        names = [r[0] for r in cur.fetchall()]
    with connection.cursor() as cur:  # fresh statistics for what was just rewritten (plans follow them)
        cur.execute("ANALYZE profiles_userprofile")
        cur.execute("ANALYZE auth_user")
        cur.execute("ANALYZE tournaments_tournament")
        # VACUUM too: the rewritten ledger rows cleared their pages' all-visible bits, and the index-only scans of
        # every later figure (the feed's, the boards') would fetch heap pages that autovacuum (off on the benchmark
        # server) would have marked again in production.
        cur.execute("VACUUM ANALYZE activity_useractivity")
    return names


def _misspell(rng: random.Random, word: str) -> str:
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def career_figures(users: int, n: int, timed, report) -> None:
    from django.test import Client

    from activity.privacy import ViewerClass, ViewerRelation
    from activity.selectors.head_to_head import head_to_head
    from activity.selectors.tournament_rows import tournament_rows
    from esports.profiles.models import UserProfile
    from esports.profiles.search import search_players
    from stats.selectors.seasons import season_table

    print("career surfaces (issue 16): head-to-head, seasons, tournament rows, search, profile with charts")
    with without_statement_timeout():
        names = prepare(users)
    rng = random.Random(16)
    pairs = [(2 * k - 1, 2 * k) for k in rng.sample(range(1, users // 2), min(200, users // 2 - 1))]
    anon = lambda uid: ViewerRelation(ViewerClass.ANONYMOUS, uid)  # noqa: E731
    probe = head_to_head(anon(pairs[0][0]), anon(pairs[0][1]))
    print(f"  (a pair's meetings: {probe.total.meetings}; a_wins {probe.total.a_wins}, b_wins {probe.total.b_wins})")
    report(
        "head-to-head totals + first page (selector)",
        timed(lambda: head_to_head(*(anon(u) for u in rng.choice(pairs))), n),
    )
    users_pool = rng.sample(range(1, users + 1), min(500, users))
    report("season table (selector)", timed(lambda: season_table(rng.choice(users_pool)), n))
    report(
        "tournament history, one row per event (selector)",
        timed(lambda: tournament_rows(anon(rng.choice(users_pool))), n),
    )
    surnames = [nm.split()[-1] for nm in names if " " in nm]
    queries = {
        "full name": [nm.lower() for nm in names[:500]],
        "surname prefix (4 letters)": [s[:4].lower() for s in surnames[:500] if len(s) >= 4],
        "misspelled surname": [_misspell(rng, s.lower()) for s in surnames[:500] if len(s) >= 6],
    }
    for label, qs in queries.items():
        report(f"search, {label}", timed(lambda qs=qs: search_players(rng.choice(qs)), n), goal=10)
    client = Client(HTTP_X_FORWARDED_PROTO="https")
    usernames = dict(UserProfile.objects.filter(pk__in=users_pool).values_list("pk", "user__username"))
    page = client.get(f"/u/{usernames[users_pool[0]]}/")
    assert page.status_code == 200 and b'class="chart' in page.content, "the profile page draws no chart"
    report(
        "profile page with career charts (test client)",
        timed(lambda: client.get(f"/u/{usernames[rng.choice(users_pool)]}/"), n),
        goal=30,
    )
    a, b = pairs[0]
    pa, pb = UserProfile.objects.get(pk=a).public_id, UserProfile.objects.get(pk=b).public_id
    report("head-to-head API (test client)", timed(lambda: client.get(f"/api/h2h/?a={pa}&b={pb}"), n))
    report(
        "search API (test client)",
        timed(lambda: client.get("/api/users/search/?q=" + rng.choice(queries["misspelled surname"])), n),
    )


if __name__ == "__main__":  # the career figures alone, on read_path.py's data (same arguments)
    import argparse
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench import read_path

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--iterations", type=int, default=500)
    args = parser.parse_args()
    read_path.use_bench_database("activity_read_bench")
    career_figures(args.users, args.iterations, read_path.timed, read_path.report)
