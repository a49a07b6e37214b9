"""Soak: mixed platform traffic under faults, then proof that the ledger and the stats kept their promises.

    python bench/soak.py [--duration 600] [--rate 200] [--processes 4] [--kill-every 60] [--redis-outage 30]

Runs everything real on this machine: a fresh PostgreSQL database, a private redis-server (on its own port, so the
outage it causes touches nobody else), a Celery worker (prefork, queues events + maintenance) and one beat
(django-celery-beat, schedules from `setup_schedules`). Several traffic processes save source rows through the ORM at a
steady rate - registrations, check-ins, matches, results, disputes flipping outcomes, coin transactions, team changes,
achievements - exactly as requests would (each save's after-commit publish is part of the measured request time).
Meanwhile the worker is SIGKILLed and restarted every --kill-every seconds, Redis is stopped once for --redis-outage
seconds, and a reconciliation runs in the middle. At the end the script waits for the catch-up sweep and prints:
source changes made, events expected (derived independently from the final source tables, not by activity.derivation),
events in the ledger, missing, duplicated, users drifted, request errors, request-path p50/p99 and the worst
commit -> stats lag. Promise: 0 missing, 0 duplicated, 0 drift, 0 request errors (exit status 1 otherwise).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_db import database_url_on_server  # noqa: E402 - needs ROOT on sys.path when run as a script

GAMES = ("valorant", "cs2", "dota2", "lol")
SEED_USERS = 300
STABLE_TEAMS = 12  # entered in tournaments; their rosters never change during the soak
CHURN_TEAMS_PER_PROCESS = 3  # members join and leave these (never entered, so team-entry members stay well defined)


# --- infrastructure ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A private redis-server: stopping it is a real broker outage that no other user of the machine notices."""

    def __init__(self, port: int, logdir: Path):
        self.port, self.logdir = port, logdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(self.logdir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"private redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Managed:
    """A Celery process in its own process group, so SIGKILL takes the pool children down with the main process."""

    def __init__(self, name: str, argv: list[str], env: dict, logdir: Path):
        self.name, self.argv, self.env, self.logdir, self.starts = name, argv, env, logdir, 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.starts += 1
        # The child holds its own copy of the log's descriptor: ours is closed at once, not leaked on every restart.
        with open(self.logdir / f"{self.name}.{self.starts}.log", "w") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def recreate_database(name: str) -> None:
    import psycopg

    with psycopg.connect(database_url_on_server("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


# --- traffic -----------------------------------------------------------------------------------------------------

OPERATIONS = {  # weight of each kind of source change
    "tournament": 2,
    "register": 14,
    "confirm": 10,
    "check_in": 10,
    "cancel_pending": 2,
    "team_entry": 2,
    "match": 16,
    "dispute_flip": 6,
    "result": 2,
    "coins": 18,
    "team_join": 4,
    "team_leave": 3,
    "achievement": 5,
}


class Traffic:
    """One traffic process: its own tournaments, its own slice of users for achievements, its own churn teams, so
    processes never collide on a unique constraint (a collision would be a request error)."""

    def __init__(self, index: int, processes: int, seed: int):
        from django.contrib.auth import get_user_model

        from esports.achievements.models import Achievement
        from esports.teams.models import Team, TeamMembership

        self.rng = random.Random(seed * 1000 + index)
        self.index = index
        self.users = list(get_user_model().objects.order_by("id").values_list("id", flat=True))
        self.my_users = [u for u in self.users if u % processes == index]
        self.stable_teams = list(Team.objects.filter(name__startswith="stable-").values_list("id", flat=True))
        self.rosters: dict[int, set[int]] = defaultdict(set)
        for team, user in TeamMembership.objects.filter(team_id__in=self.stable_teams).values_list(
            "team_id", "user_id"
        ):
            self.rosters[team].add(user)
        self.churn_teams = list(Team.objects.filter(name__startswith=f"churn-{index}-").values_list("id", flat=True))
        self.achievements = list(Achievement.objects.values_list("id", flat=True))
        self.unlocked: set[tuple[int, int]] = set()
        self.tournaments: list[int] = []  # open ones
        # tournament -> players entered (solo or through a team) and teams entered: a player enters a tournament once
        self.entrants: dict[int, set] = defaultdict(set)
        self.teams_in: dict[int, set] = defaultdict(set)
        self.pending: list[int] = []
        self.confirmed: list[int] = []
        self.checked_in: dict[int, list[int]] = defaultdict(list)  # tournament -> registration ids
        self.completed: list[int] = []
        self.played: dict[int, int] = Counter()  # tournament -> matches completed

    def run_one(self, kind: str) -> bool:
        """Perform one source change of `kind`; False when there is nothing to do it on (not counted)."""
        return getattr(self, f"op_{kind}")()

    def op_tournament(self) -> bool:
        from esports.tournaments.models import Tournament

        t = Tournament.objects.create(
            name=f"Soak {self.index}-{len(self.tournaments)}-{self.rng.random():.6f}",
            game=self.rng.choice(GAMES),
            status=Tournament.Status.REGISTRATION,
        )
        self.tournaments.append(t.id)
        return True

    def _open_tournament(self) -> int:
        if not self.tournaments:
            self.op_tournament()
        return self.rng.choice(self.tournaments[-4:])

    def op_register(self) -> bool:
        from esports.tournaments.models import Registration

        t = self._open_tournament()
        candidates = [u for u in self.rng.sample(self.users, 8) if u not in self.entrants[t]]
        if not candidates:
            return False
        reg = Registration.objects.create(tournament_id=t, user_id=candidates[0], status=Registration.Status.PENDING)
        self.entrants[t].add(candidates[0])
        self.pending.append(reg.id)
        return True

    def op_confirm(self) -> bool:
        from esports.tournaments.models import Registration

        if not self.pending:
            return False
        reg = Registration.objects.get(id=self.pending.pop(self.rng.randrange(len(self.pending))))
        reg.status = Registration.Status.CONFIRMED
        reg.save()
        self.confirmed.append(reg.id)
        return True

    def op_cancel_pending(self) -> bool:
        from esports.tournaments.models import Registration

        if not self.pending:
            return False
        reg = Registration.objects.get(id=self.pending.pop(self.rng.randrange(len(self.pending))))
        reg.status = Registration.Status.CANCELLED
        reg.save()
        return True

    def op_check_in(self) -> bool:
        from django.utils import timezone

        from esports.tournaments.models import Registration

        if not self.confirmed:
            return False
        reg = Registration.objects.get(id=self.confirmed.pop(self.rng.randrange(len(self.confirmed))))
        reg.checked_in, reg.checked_in_at = True, timezone.now()
        reg.save()
        self.checked_in[reg.tournament_id].append(reg.id)
        return True

    def op_team_entry(self) -> bool:
        from django.utils import timezone

        from esports.tournaments.models import Registration

        t = self._open_tournament()
        teams = [
            team
            for team in self.stable_teams
            if team not in self.teams_in[t] and not self.rosters[team] & self.entrants[t]
        ]
        if not teams:
            return False
        team = self.rng.choice(teams)
        reg = Registration.objects.create(
            tournament_id=t,
            team_id=team,
            status=Registration.Status.CONFIRMED,
            checked_in=True,
            checked_in_at=timezone.now(),
        )
        self.teams_in[t].add(team)
        self.entrants[t] |= self.rosters[team]
        self.checked_in[t].append(reg.id)
        return True

    def op_match(self) -> bool:
        from django.utils import timezone

        from esports.tournaments.models import Match

        ready = [t for t in self.tournaments if len(self.checked_in[t]) >= 2]
        if not ready:
            return False
        t = self.rng.choice(ready)
        a, b = self.rng.sample(self.checked_in[t], 2)
        match = Match.objects.create(
            tournament_id=t, round=self.rng.choice(("R16", "QF", "SF")), participant1_id=a, participant2_id=b
        )
        match.winner_id, match.loser_id = (a, b) if self.rng.random() < 0.5 else (b, a)
        match.state = Match.State.FORFEIT if self.rng.random() < 0.1 else Match.State.COMPLETED
        match.completed_at = timezone.now()
        match.save()
        self.completed.append(match.id)
        self.played[t] += 1
        return True

    def op_dispute_flip(self) -> bool:
        from esports.tournaments.models import Match

        if not self.completed:
            return False
        match = Match.objects.get(id=self.rng.choice(self.completed[-50:]))
        match.state = Match.State.DISPUTED
        match.save()
        # Resolved the other way (or a forfeit turned into a played result): the outcome flips.
        match.state = Match.State.COMPLETED
        match.winner_id, match.loser_id = match.loser_id, match.winner_id
        match.save()
        return True

    def op_result(self) -> bool:
        from esports.tournaments.models import Tournament, TournamentResult

        ready = [t for t in self.tournaments if len(self.checked_in[t]) >= 4 and self.played[t] >= 2]
        if not ready:
            return False
        t = ready[0]
        placed = self.rng.sample(self.checked_in[t], 4)
        TournamentResult.objects.create(
            tournament_id=t,
            winner_id=placed[0],
            runner_up_id=placed[1],
            third_place_id=placed[2],
            fourth_place_id=placed[3] if self.rng.random() < 0.7 else None,
        )
        Tournament.objects.filter(id=t).update(status=Tournament.Status.COMPLETED)
        self.tournaments.remove(t)
        # Registrations of a finished tournament stop changing: their tournament_completed events are final.
        self.pending = [r for r in self.pending if r not in set(self._registrations_of(t))]
        self.confirmed = [r for r in self.confirmed if r not in set(self._registrations_of(t))]
        return True

    def _registrations_of(self, t: int) -> list[int]:
        from esports.tournaments.models import Registration

        return list(Registration.objects.filter(tournament_id=t).values_list("id", flat=True))

    def op_coins(self) -> bool:
        from esports.economy import services as economy

        user = self.rng.choice(self.users)
        amount = self.rng.choice((1, 5, 10, 50, 100, 250))
        if self.rng.random() < 0.6:
            economy.credit(user, amount, "soak")
            return True
        try:
            economy.debit(user, amount, "soak")
        except economy.InsufficientFunds:
            return False  # nothing to spend: no source change (not counted)
        return True

    def op_team_join(self) -> bool:
        from django.utils import timezone

        from esports.teams.models import TeamMembership

        team = self.rng.choice(self.churn_teams)
        active = set(
            TeamMembership.objects.filter(team_id=team, left_at__isnull=True).values_list("user_id", flat=True)
        )
        candidates = [u for u in self.rng.sample(self.my_users, 5) if u not in active]
        if not candidates:
            return False
        TeamMembership.objects.create(team_id=team, user_id=candidates[0], joined_at=timezone.now())
        return True

    def op_team_leave(self) -> bool:
        from django.utils import timezone

        from esports.teams.models import TeamMembership

        membership = (
            TeamMembership.objects.filter(team_id__in=self.churn_teams, left_at__isnull=True).order_by("?").first()
        )
        if membership is None:
            return False
        membership.left_at = timezone.now()
        membership.save()
        return True

    def op_achievement(self) -> bool:
        from django.utils import timezone

        from esports.achievements.models import UserAchievement

        for _ in range(5):
            pair = (self.rng.choice(self.my_users), self.rng.choice(self.achievements))
            if pair not in self.unlocked:
                self.unlocked.add(pair)
                UserAchievement.objects.create(user_id=pair[0], achievement_id=pair[1], unlocked_at=timezone.now())
                return True
        return False


def traffic_process(index: int, processes: int, rate: float, duration: float, seed: int, start_at: float, out) -> None:
    import django

    django.setup()
    from django.db import connections

    traffic = Traffic(index, processes, seed)
    kinds, weights = zip(*OPERATIONS.items())
    interval = processes / rate
    latencies: list[float] = []
    made: Counter = Counter()
    errors: list[str] = []
    while time.time() < start_at:
        time.sleep(0.01)
    begin = time.monotonic()
    n = 0
    while True:
        due = begin + n * interval
        now = time.monotonic()
        if now - begin >= duration:
            break
        if due > now:
            time.sleep(due - now)
        n += 1
        kind = traffic.rng.choices(kinds, weights)[0]
        t0 = time.perf_counter()
        try:
            if traffic.run_one(kind):
                latencies.append((time.perf_counter() - t0) * 1000)
                made[kind] += 1
        except Exception as exc:  # noqa: BLE001 - a request error is exactly what the soak counts
            errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            connections.close_all()
    out.put({"index": index, "made": dict(made), "latencies": latencies, "errors": errors})


# --- independent expectation -------------------------------------------------------------------------------------

COUNT_FIELDS = (
    "tournaments_registered",
    "tournaments_played",
    "tournaments_completed",
    "tournaments_won",
    "tournaments_runner_up",
    "tournaments_top4",
    "matches_played",
    "matches_won",
    "matches_lost",
    "achievements_count",
    "teams_created",
    "teams_joined",
    "current_teams_count",
)
AMOUNT_FIELDS = ("total_earned", "total_spent")
# The soak's own reading of the ledger (deliberately not stats.counters): base event +1, its *_reversed -1.
LEDGER_COUNTS = {
    "tournament_registered": "tournaments_registered",
    "tournament_joined": "tournaments_played",
    "tournament_completed": "tournaments_completed",
    "tournament_won": "tournaments_won",
    "tournament_runner_up": "tournaments_runner_up",
    "tournament_top4": "tournaments_top4",
    "match_played": "matches_played",
    "match_won": "matches_won",
    "match_lost": "matches_lost",
    "achievement_unlocked": "achievements_count",
    "team_created": "teams_created",
    "team_joined": "teams_joined",
}


def expected_from_sources() -> tuple[dict[int, Counter], int]:
    """Each user's counters as the final source tables imply them, computed straight from those tables.
    Returns (user -> counters, number of profiles)."""
    from django.db import connection

    exp: dict[int, Counter] = defaultdict(Counter)
    with connection.cursor() as c:
        c.execute("SELECT team_id, user_id, joined_at, left_at FROM teams_teammembership")
        memberships = c.fetchall()
        c.execute(
            "SELECT id, tournament_id, user_id, team_id, status, checked_in, created_at FROM tournaments_registration"
        )
        regs = {r[0]: r for r in c.fetchall()}

        def members(reg_id: int) -> list[int]:
            _, _, user_id, team_id, _, _, created = regs[reg_id]
            if user_id is not None:
                return [user_id]
            return sorted(
                {
                    u
                    for t, u, joined, left in memberships
                    if t == team_id and joined <= created and (left is None or left > created)
                }
            )

        for reg_id, (_, _, _, _, status, checked_in, _) in regs.items():
            if status == "confirmed":
                for u in members(reg_id):
                    exp[u]["tournaments_registered"] += 1
                    if checked_in:
                        exp[u]["tournaments_played"] += 1
        c.execute(
            "SELECT state, participant1_id, participant2_id, winner_id, loser_id FROM tournaments_match "
            "WHERE state IN ('completed', 'forfeit')"
        )
        for state, p1, p2, winner, loser in c.fetchall():
            for u in set(members(p1)) | set(members(p2)):
                exp[u]["matches_played"] += 1
            if state == "completed":
                for u in members(winner):
                    exp[u]["matches_won"] += 1
                for u in members(loser):
                    exp[u]["matches_lost"] += 1
        c.execute(
            "SELECT tournament_id, winner_id, runner_up_id, third_place_id, fourth_place_id "
            "FROM tournaments_tournamentresult"
        )
        for tournament, winner, runner_up, third, fourth in c.fetchall():
            # A tournament completes (or places) a user once, even if they held two entries in it (solo + team).
            placed: dict[str, set[int]] = {
                "tournaments_won": set(members(winner)),
                "tournaments_runner_up": set(members(runner_up)),
                "tournaments_top4": {u for place in (third, fourth) if place is not None for u in members(place)},
                "tournaments_completed": {
                    u for reg_id, reg in regs.items() if reg[1] == tournament and reg[5] for u in members(reg_id)
                },
            }
            for field, users in placed.items():
                for u in users:
                    exp[u][field] += 1
        c.execute(
            "SELECT w.profile_id, t.amount FROM economy_deltacrowntransaction t "
            "JOIN economy_deltacrownwallet w ON w.id = t.wallet_id"
        )
        for user, amount in c.fetchall():
            exp[user]["total_earned" if amount > 0 else "total_spent"] += abs(amount)
        c.execute("SELECT user_id FROM achievements_userachievement")
        for (user,) in c.fetchall():
            exp[user]["achievements_count"] += 1
        c.execute("SELECT created_by_id FROM teams_team")
        for (user,) in c.fetchall():
            exp[user]["teams_created"] += 1
        for _team, user, _joined, left in memberships:
            exp[user]["teams_joined"] += 1
            exp[user]["current_teams_count"] += 0 if left is not None else 1
        c.execute("SELECT count(*) FROM profiles_userprofile")
        profiles = c.fetchone()[0]
    return exp, profiles


def ledger_net() -> tuple[dict[int, Counter], int, int]:
    """(user -> net counters read from the ledger, ledger rows, duplicate idempotency keys)."""
    from django.db import connection

    net: dict[int, Counter] = defaultdict(Counter)
    with connection.cursor() as c:
        c.execute(
            "SELECT user_id, event_type, count(*), COALESCE(sum(amount), 0) FROM activity_useractivity GROUP BY 1, 2"
        )
        for user, event_type, n, amount in c.fetchall():
            if event_type == "coins_earned":
                net[user]["total_earned"] += amount
            elif event_type == "coins_spent":
                net[user]["total_spent"] += amount
            elif event_type in LEDGER_COUNTS:
                net[user][LEDGER_COUNTS[event_type]] += n
                if event_type == "team_joined":
                    net[user]["current_teams_count"] += n
            elif event_type == "team_left":
                net[user]["current_teams_count"] -= n
            elif event_type.removesuffix("_reversed") == "tournament_placed":
                # Not compared: a placement follows the whole bracket, which expected_from_sources does not re-derive;
                # the reconciliation's ledger -> stats pass checks its counters.
                continue
            elif event_type.endswith("_reversed"):
                net[user][LEDGER_COUNTS[event_type.removesuffix("_reversed")]] -= n
        c.execute("SELECT count(*) FROM activity_useractivity")
        rows = c.fetchone()[0]
        c.execute(
            "SELECT count(*) FROM (SELECT 1 FROM activity_useractivity GROUP BY source_model, source_id, user_id, "
            "event_type, seq HAVING count(*) > 1) d"
        )
        duplicate_keys = c.fetchone()[0]
    return net, rows, duplicate_keys


def compare(expected: dict[int, Counter], actual: dict[int, Counter]) -> tuple[int, int, set[int]]:
    """(missing, extra, users that differ) in event units for counts and in transactions for coins."""
    missing = extra = 0
    differing: set[int] = set()
    for user in set(expected) | set(actual):
        for field in COUNT_FIELDS + AMOUNT_FIELDS:
            diff = expected[user][field] - actual[user][field]
            if diff:
                differing.add(user)
                if field in COUNT_FIELDS:
                    missing += max(diff, 0)
                    extra += max(-diff, 0)
    return missing, extra, differing


def coin_event_gaps() -> tuple[int, int]:
    """(transactions with no coin event, transactions with more than one)."""
    from django.db import connection

    with connection.cursor() as c:
        c.execute("""SELECT count(*) FILTER (WHERE n = 0), count(*) FILTER (WHERE n > 1) FROM (
                       SELECT t.id, count(a.id) AS n FROM economy_deltacrowntransaction t
                       LEFT JOIN activity_useractivity a
                              ON a.source_model = 'economy.deltacrowntransaction' AND a.source_id = t.id
                       GROUP BY t.id) x""")
        return c.fetchone()


def stats_table() -> dict[int, Counter]:
    from stats.models import UserProfileStats

    return {
        row["profile_id"]: Counter({k: v for k, v in row.items() if k != "profile_id"})
        for row in UserProfileStats.objects.values("profile_id", *COUNT_FIELDS, *AMOUNT_FIELDS)
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


# --- the run -----------------------------------------------------------------------------------------------------


def seed_platform(seed: int, processes: int) -> None:
    from django.utils import timezone

    from activity.chunks import iter_id_chunks
    from activity.recording import record_events_for
    from activity.sources import SOURCES
    from esports.achievements.models import Achievement
    from esports.profiles.services import create_users_bulk
    from esports.teams.models import Team, TeamMembership

    rng = random.Random(seed)
    ids = sorted(create_users_bulk([(f"soak{i}", f"Soak Player {i}") for i in range(SEED_USERS)]).values())
    long_ago = timezone.now() - timedelta(days=400)
    Achievement.objects.bulk_create(
        [
            Achievement(code=f"soak-{i}", name=f"Soak achievement {i}", tier=rng.choice(("minor", "major")))
            for i in range(12)
        ]
    )
    pool = ids[:]
    rng.shuffle(pool)
    for t in range(STABLE_TEAMS):
        roster = pool[t * 5 : (t + 1) * 5]
        team = Team.objects.create(name=f"stable-{t}", game=rng.choice(GAMES), created_by_id=roster[0])
        TeamMembership.objects.bulk_create([TeamMembership(team=team, user_id=u, joined_at=long_ago) for u in roster])
    for p in range(processes):
        for t in range(CHURN_TEAMS_PER_PROCESS):
            Team.objects.create(name=f"churn-{p}-{t}", game=rng.choice(GAMES), created_by_id=rng.choice(ids))
    # The seed went in through bulk paths (no signals): record it the way a backfill does.
    for label, kind in SOURCES.items():
        for chunk in iter_id_chunks(kind, 2000):
            record_events_for(label, chunk.ids, origin="backfill")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600, help="seconds of traffic (default 600)")
    parser.add_argument(
        "--rate", type=float, default=200, help="source changes per second, all processes (default 200)"
    )
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--kill-every", type=float, default=60, help="SIGKILL + restart the worker this often (s)")
    parser.add_argument("--redis-outage", type=float, default=30, help="stop Redis once for this long (s)")
    parser.add_argument("--sweep-every", type=int, default=60, help="catch-up sweep interval in beat (s)")
    parser.add_argument("--sweep-grace", type=int, default=15, help="ACTIVITY_SWEEP_GRACE_SECONDS")
    parser.add_argument("--database", default="activity_soak")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settle-timeout", type=float, default=420, help="max wait for the sweep after traffic (s)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    logdir = Path(tempfile.mkdtemp(prefix="soak-"))
    redis = RedisServer(free_port(), logdir)
    redis.start()
    env = {
        **os.environ,
        # Its own database on the server DATABASE_URL names (the embedded one when `make test` runs on it).
        "DATABASE_URL": database_url_on_server(args.database),
        "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "soak-only"),
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "ACTIVITY_SWEEP_GRACE_SECONDS": str(args.sweep_grace),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("CELERY_BROKER_URL", None)
    env.pop("CACHE_URL", None)
    os.environ.update(env)
    recreate_database(args.database)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [sys.executable, "manage.py", "setup_schedules"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )

    import django

    django.setup()
    from django.db import connections
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every, _ = IntervalSchedule.objects.get_or_create(every=args.sweep_every, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(task="tasks.sweeps.catch_up").update(interval=every, expires=None, expire_seconds=None)
    PeriodicTask.objects.exclude(task="tasks.sweeps.catch_up").update(
        enabled=False
    )  # nightly jobs stay out of the soak
    seed_platform(args.seed, args.processes)
    connections.close_all()

    celery = str(Path(sys.executable).with_name("celery"))
    worker = Managed(
        "worker",
        [
            celery,
            "-A",
            "project",
            "worker",
            "-Q",
            "events,maintenance",
            "-c",
            "2",
            "--prefetch-multiplier",
            "1",
            "-l",
            "WARNING",
        ],
        env,
        logdir,
    )
    beat = Managed(
        "beat",
        [
            celery,
            "-A",
            "project",
            "beat",
            "-l",
            "WARNING",
            "-s",
            str(logdir / "beat-schedule"),
            "--scheduler",
            "django_celery_beat.schedulers:DatabaseScheduler",
        ],
        env,
        logdir,
    )
    worker.start()
    beat.start()
    try:
        return run_traffic_and_verify(args, env, redis, worker, beat)
    finally:
        worker.stop()
        beat.stop()
        redis.stop()


def run_traffic_and_verify(args, env: dict, redis: RedisServer, worker: Managed, beat: Managed) -> int:
    from django.db import connections

    from stats.reconcile import compare_ledger_to_stats, run_reconciliation

    ctx = mp.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 2
    traffic_started = time.time()
    procs = [
        ctx.Process(
            target=traffic_process, args=(i, args.processes, args.rate, args.duration, args.seed, start_at, out)
        )
        for i in range(args.processes)
    ]
    for p in procs:
        p.start()

    kills = 0
    outage_at = start_at + args.duration * 0.4
    reconcile_at = start_at + args.duration * 0.6
    outage_done = reconcile_done = False
    mid_run: dict = {}

    def reconcile_midway() -> None:
        run = run_reconciliation(fix=True, trigger="soak")
        mid_run.update(
            users_drifted=run.users_drifted, missing_events=run.missing_events_total, users_checked=run.users_checked
        )
        connections.close_all()

    reconciler = threading.Thread(target=reconcile_midway)
    next_kill = start_at + args.kill_every
    print(
        f"soak: {args.duration:.0f}s at {args.rate:.0f} changes/s from {args.processes} processes; "
        f"logs in {redis.logdir}",
        flush=True,
    )
    results: list[dict] = []
    while len(results) < len(procs):
        # Drain the queue while waiting: a child cannot exit before its (large) result has left its pipe.
        try:
            while True:
                results.append(out.get_nowait())
        except queue.Empty:
            pass
        if not any(p.is_alive() for p in procs) and out.empty() and len(results) < len(procs):
            raise RuntimeError("a traffic process died without reporting; see its traceback above")
        now = time.time()
        if now >= next_kill and now < start_at + args.duration:
            worker.kill()
            kills += 1
            worker.start()
            next_kill += args.kill_every
            print(f"  t+{now - start_at:5.0f}s worker SIGKILLed and restarted ({kills})", flush=True)
        if not outage_done and now >= outage_at and args.redis_outage > 0:
            redis.stop()
            print(f"  t+{now - start_at:5.0f}s Redis stopped for {args.redis_outage:.0f}s", flush=True)
            time.sleep(args.redis_outage)
            redis.start()
            outage_done = True
            print(f"  t+{time.time() - start_at:5.0f}s Redis back", flush=True)
        if not reconcile_done and now >= reconcile_at:
            reconciler.start()
            reconcile_done = True
            print(f"  t+{now - start_at:5.0f}s reconciliation started while traffic flows", flush=True)
        time.sleep(0.2)
    for p in procs:
        p.join()
    if reconcile_done:
        reconciler.join()
    traffic_end = time.time()

    # Wait for the worker to drain the queue and for a catch-up sweep whose window covers the end of the traffic.
    from django.utils import timezone

    from activity.models import SweepWatermark

    print("traffic done; waiting for the worker and the catch-up sweep", flush=True)
    settle_deadline = time.monotonic() + args.settle_timeout
    end_mark = timezone.now()
    settled = False
    while time.monotonic() < settle_deadline:
        marks = list(SweepWatermark.objects.values_list("watermark", flat=True))
        if len(marks) >= 8 and min(marks) >= end_mark:
            settled = True
            break
        time.sleep(1)
    connections.close_all()
    settle_seconds = time.time() - traffic_end

    expected, profiles = expected_from_sources()
    net, ledger_rows, duplicate_keys = ledger_net()
    missing, extra, ledger_differing = compare(expected, net)
    coins_missing, coins_doubled = coin_event_gaps()
    stats = stats_table()
    _, _, stats_differing = compare(expected, defaultdict(Counter, stats))
    ledger_vs_stats = compare_ledger_to_stats(fix=False)
    from django.db import connection

    with connection.cursor() as c:
        c.execute(
            "SELECT EXTRACT(EPOCH FROM recorded_at - timestamp) FROM activity_useractivity "
            "WHERE recorded_at >= to_timestamp(%s)",
            [traffic_started],
        )
        lags = [float(r[0]) for r in c.fetchall()]
    latencies = [ms for r in results for ms in r["latencies"]]
    errors = [e for r in results for e in r["errors"]]
    made: Counter[str] = Counter()
    for r in results:
        made.update(r["made"])
    expected_events = sum(sum(c[f] for f in COUNT_FIELDS if f != "current_teams_count") for c in expected.values())
    expected_events += profiles + coin_count()
    figures = {
        "duration_s": args.duration,
        "rate_per_s": args.rate,
        "processes": args.processes,
        "source_changes": sum(made.values()),
        "by_kind": dict(made),
        "worker_kills": kills,
        "redis_outage_s": args.redis_outage if outage_done else 0,
        "mid_run_reconciliation": mid_run,
        "events_expected_net": expected_events,
        "ledger_rows": ledger_rows,
        "missing": missing + coins_missing,
        "duplicated": extra + coins_doubled + duplicate_keys,
        "users_drifted": ledger_vs_stats.users_drifted + len(stats_differing),
        "stats_vs_sources_users_differing": len(stats_differing),
        "request_errors": len(errors),
        "error_sample": errors[:5],
        "request_p50_ms": round(percentile(latencies, 50), 2),
        "request_p99_ms": round(percentile(latencies, 99), 2),
        "lag_p50_s": round(percentile(lags, 50), 3),
        "lag_p99_s": round(percentile(lags, 99), 3),
        "worst_lag_s": round(max(lags), 3) if lags else 0.0,
        "settled": settled,
        "settle_s": round(settle_seconds, 1),
    }
    drift_detail = f"ledger vs stats: {ledger_vs_stats.users_drifted}; stats vs sources: {len(stats_differing)}"
    request_ms = f"{figures['request_p50_ms']:>7.2f} ms / {figures['request_p99_ms']:.2f} ms"
    lag_s = f"p50 {figures['lag_p50_s']:.3f}s  p99 {figures['lag_p99_s']:.3f}s  worst {figures['worst_lag_s']:.1f}s"
    settle_note = "sweep covered the end" if settled else "TIMED OUT waiting for the sweep"
    print(f"""
source changes made        {figures["source_changes"]:>10,}   ({", ".join(f"{k} {v}" for k, v in sorted(made.items()))})
worker SIGKILLs / Redis    {kills:>10}   / {figures["redis_outage_s"]:.0f}s outage; mid-run reconciliation: {mid_run}
events expected (net)      {expected_events:>10,}   (from the final source tables, independently of activity.derivation)
events in the ledger       {ledger_rows:>10,}   (rows, compensations included)
missing                    {figures["missing"]:>10}
duplicated                 {figures["duplicated"]:>10}
users drifted              {figures["users_drifted"]:>10}   ({drift_detail})
request errors             {len(errors):>10}   {errors[:3] if errors else ""}
request path p50 / p99     {request_ms}  (ORM save + after-commit publish)
commit -> stats lag        {lag_s}
settled after traffic      {figures["settle_s"]:>8.1f}s  ({settle_note})""")
    for user in sorted(ledger_differing | stats_differing)[:10]:
        fields = {
            f: (expected[user][f], net[user][f], stats.get(user, Counter())[f])
            for f in COUNT_FIELDS + AMOUNT_FIELDS
            if not expected[user][f] == net[user][f] == stats.get(user, Counter())[f]
        }
        print(f"  user {user}: field -> (expected, ledger, stats): {fields}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    kept = (
        settled
        and figures["missing"] == 0
        and figures["duplicated"] == 0
        and figures["users_drifted"] == 0
        and not errors
    )
    print("PROMISE KEPT" if kept else "PROMISE BROKEN")
    return 0 if kept else 1


def coin_count() -> int:
    from esports.economy.models import DeltaCrownTransaction

    return DeltaCrownTransaction.objects.count()


if __name__ == "__main__":
    sys.exit(main())
