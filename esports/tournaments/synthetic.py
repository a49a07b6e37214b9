"""A deterministic synthetic platform for tests, demos and benchmarks: `generate_platform(users, tournaments, seed)`.

The same (users, tournaments, seed) gives the same platform: every random choice comes from a `random.Random` seeded
with the seed and the phase's name, all times are offsets from a fixed epoch (never "now"), and the rows are built
in a fixed order. Only database ids differ between databases, so `platform_fingerprint` describes the rows through
natural keys (usernames, tournament keys, team names).

What it builds (sizes scale with `users` / `tournaments`):

* users `gen<seed>_<n>` joined over 90 days, each with a profile and a wallet (`provision_users`), the profile dated
  when the user joined;
* follows (about 3 per user, never oneself);
* teams of several games with memberships: the creator stays, some members join later and some leave;
* tournaments of several games, solo and team entries: completed ones (single-elimination bracket with completed,
  forfeit and some disputed matches, and a TournamentResult), ongoing ones (current round scheduled, live or
  disputed), ones open for registration (pending / confirmed), upcoming and cancelled ones; registrations of every
  status (confirmed and checked in, no_show, cancelled, pending). A team entry is registered after the team was
  created, when its creator's membership (never ended) is active;
* DeltaCoin transactions (earn and spend, never 0, never overdrawing; prizes for solo winners and runners-up);
* an achievement catalogue and unlocks.

Rows go in with `insert_rows` (chunked multi-row inserts keeping the generated timestamps). Bulk paths send no
signals: nothing is recorded in the ledger here (a backfill does that). One transaction: a failure leaves nothing.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery

from esports.achievements.models import Achievement, UserAchievement
from esports.economy.balances import refresh_wallets_of
from esports.economy.models import DeltaCrownTransaction, DeltaCrownWallet
from esports.profiles.models import Follow, UserProfile
from esports.profiles.services import provision_users
from esports.teams.models import Team, TeamMembership
from esports.tournaments.bulk_insert import MATCH_ROW_COLUMNS, insert_rows
from esports.tournaments.models import Match, Registration, Tournament, TournamentResult

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
AS_OF = EPOCH + timedelta(days=365)  # the platform's "today": past tournaments are done, later ones are ahead
DAY = 86400.0
MIN_USERS = 16

GAMES = ("valorant", "cs2", "dota2", "league_of_legends", "rocket_league", "overwatch2")
TEAM_SIZE = {"valorant": 5, "cs2": 5, "dota2": 5, "league_of_legends": 5, "rocket_league": 3, "overwatch2": 5}
ROUND_NAMES = {2: "F", 4: "SF", 8: "QF", 16: "R16", 32: "R32", 64: "R64", 128: "R128"}
# (code, name, tier, share of users who unlock it)
ACHIEVEMENTS = (
    ("first-match", "First Match", "minor", 0.45),
    ("first-win", "First Win", "minor", 0.35),
    ("ten-matches", "Ten Matches", "minor", 0.25),
    ("early-bird", "Early Bird", "minor", 0.20),
    ("team-player", "Team Player", "minor", 0.15),
    ("big-spender", "Big Spender", "minor", 0.10),
    ("social-butterfly", "Social Butterfly", "minor", 0.10),
    ("hat-trick", "Hat Trick", "major", 0.04),
    ("champion", "Champion", "major", 0.03),
    ("legend", "Legend", "major", 0.01),
)
EARN_REASONS = ("daily login", "match reward", "quest reward", "referral bonus")
SPEND_REASONS = ("skin purchase", "entry fee", "profile boost", "emote pack")
FIRST_NAMES = (
    "Alex",
    "Sam",
    "Kim",
    "Noor",
    "Jonas",
    "Mei",
    "Ravi",
    "Lena",
    "Omar",
    "Ines",
    "Tariq",
    "Yuki",
    "Ana",
    "Bo",
    "Chen",
    "Dara",
    "Eli",
    "Farah",
    "Gus",
    "Hana",
    "Ivo",
    "Jade",
    "Kai",
    "Lior",
)
LAST_NAMES = (
    "Rahman",
    "Novak",
    "Silva",
    "Tanaka",
    "Okafor",
    "Larsen",
    "Haddad",
    "Kowalski",
    "Moreau",
    "Ivanova",
    "Chowdhury",
    "Schmidt",
    "Rossi",
    "Nguyen",
    "Park",
    "Costa",
    "Meyer",
    "Ali",
    "Hossain",
    "Dubois",
)
TEAM_WORDS = (
    ("Crimson", "Silent", "Rapid", "Iron", "Neon", "Lucky", "Frozen", "Golden", "Shadow", "Wild"),
    ("Wolves", "Falcons", "Titans", "Vipers", "Owls", "Comets", "Ravens", "Sharks", "Foxes", "Dragons"),
)
TOURNAMENT_STATUSES = (
    (Tournament.Status.COMPLETED, 75),
    (Tournament.Status.ONGOING, 10),
    (Tournament.Status.REGISTRATION, 7),
    (Tournament.Status.UPCOMING, 5),
    (Tournament.Status.CANCELLED, 3),
)
TOURNAMENT_BATCH = 200


class GeneratorError(Exception):
    """The platform cannot be generated as asked (bad sizes, or this seed was already generated here)."""


def username_for(seed: int, index: int) -> str:
    return f"gen{seed}_{index:06d}"


def tournament_key(seed: int, index: int) -> str:
    return f"gen{seed}-t{index:05d}"


@dataclass
class PlatformReport:
    seed: int
    counts: Counter = field(default_factory=Counter)
    phases: list[tuple[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(v for k, v in self.counts.items() if "." not in k)  # dotted keys are breakdowns

    def summary_lines(self) -> list[str]:
        lines = [
            f"{name}: {self.counts[name]:,}" + _breakdown(self.counts, name)
            for name in (
                "users",
                "profiles",
                "wallets",
                "follows",
                "teams",
                "memberships",
                "tournaments",
                "registrations",
                "matches",
                "results",
                "transactions",
                "achievements",
                "unlocks",
            )
        ]
        lines.append("phases: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.phases))
        lines.append(
            f"took {self.seconds:.1f} s ({self.rows:,} rows, {self.rows / max(self.seconds, 1e-9):,.0f} rows/s)"
        )
        return lines


def _breakdown(counts: Counter, name: str) -> str:
    parts = sorted((k.split(".", 1)[1], v) for k, v in counts.items() if k.startswith(name + "."))
    return f" ({', '.join(f'{k} {v:,}' for k, v in parts)})" if parts else ""


def generate_platform(
    users: int, tournaments: int, seed: int, progress: Callable[[str], None] | None = None
) -> PlatformReport:
    if users < MIN_USERS:
        raise GeneratorError(f"--users must be at least {MIN_USERS} (got {users})")
    if tournaments < 0:
        raise GeneratorError(f"--tournaments must not be negative (got {tournaments})")
    started = time.perf_counter()
    report = PlatformReport(seed)
    with transaction.atomic():
        if get_user_model().objects.filter(username=username_for(seed, 0)).exists():
            raise GeneratorError(
                f"a platform with seed {seed} was already generated in this database "
                f"(user {username_for(seed, 0)} exists); use another seed or a fresh database"
            )
        _Builder(users, tournaments, seed, report, progress or (lambda line: None)).run()
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class _Team:
    id: int
    game: str
    created_at: datetime


@dataclass
class _Entry:
    """A planned registration: user index or team, with its state."""

    user: int | None
    team: _Team | None
    status: str
    checked_in: bool
    created_at: datetime
    checked_in_at: datetime | None


@dataclass
class _PlannedMatch:
    round: str
    p1: int  # indices into the tournament's entries
    p2: int
    winner: int | None
    state: str
    score: str
    at: datetime


@dataclass
class _Plan:
    key: str
    name: str
    game: str
    status: str
    starts_at: datetime
    entries: list[_Entry]
    matches: list[_PlannedMatch]


class _Builder:
    def __init__(
        self, users: int, tournaments: int, seed: int, report: PlatformReport, progress: Callable[[str], None]
    ) -> None:
        self.n, self.m, self.seed, self.report, self.progress = users, tournaments, seed, report, progress
        self.user_ids: list[int] = []
        self.joined: list[datetime] = []
        self.wallets: list[int] = []
        self.teams_by_game: dict[str, list[_Team]] = {g: [] for g in GAMES}
        self.prizes: list[tuple[int, int, str, datetime]] = []  # (user index, amount, reason, at)

    def rng(self, phase: str) -> random.Random:
        return random.Random(f"synthetic-platform:{self.seed}:{phase}")

    def run(self) -> None:
        for name, phase in (
            ("users", self.users),
            ("follows", self.follows),
            ("teams", self.teams),
            ("tournaments", self.tournaments),
            ("transactions", self.transactions),
            ("achievements", self.achievements),
        ):
            started = time.perf_counter()
            phase()
            took = time.perf_counter() - started
            self.report.phases.append((name, took))
            self.progress(f"{name}: done in {took:.1f} s ({self.report.counts[name]:,} rows)")

    # --- users, profiles, wallets ------------------------------------------------------------------------------

    def users(self) -> None:
        rng = self.rng("users")
        names: list[tuple[str, str]] = []
        for _ in range(self.n):
            self.joined.append(EPOCH + timedelta(seconds=rng.uniform(0, 90 * DAY)))
            names.append((rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)))
        # An unusable password like make_password(None) gives ("!" + random), at a fraction of its cost.
        rows = (
            (
                UNUSABLE_PASSWORD_PREFIX + secrets.token_urlsafe(30),
                False,
                username_for(self.seed, i),
                first,
                last,
                "",
                False,
                True,
                self.joined[i],
            )
            for i, (first, last) in enumerate(names)
        )
        ids = insert_rows(
            get_user_model(),
            (
                "password",
                "is_superuser",
                "username",
                "first_name",
                "last_name",
                "email",
                "is_staff",
                "is_active",
                "date_joined",
            ),
            rows,
        )
        self.user_ids = [row[0] for row in ids]
        self.report.counts["users"] = len(self.user_ids)
        provision_users(self.user_ids, {uid: f"{first} {last}" for uid, (first, last) in zip(self.user_ids, names)})
        # Profiles and wallets were stamped "now" by provision_users; date them when their user joined, set-based.
        joined_at = Subquery(get_user_model().objects.filter(pk=OuterRef("user_id")).values("date_joined")[:1])
        wallet_joined_at = Subquery(
            get_user_model().objects.filter(pk=OuterRef("profile_id")).values("date_joined")[:1]
        )
        for chunk in _chunks(self.user_ids, 10000):
            self.report.counts["profiles"] += UserProfile.objects.filter(user_id__in=chunk).update(
                created_at=joined_at, updated_at=joined_at
            )
            self.report.counts["wallets"] += DeltaCrownWallet.objects.filter(profile_id__in=chunk).update(
                created_at=wallet_joined_at
            )
            wallets = dict(DeltaCrownWallet.objects.filter(profile_id__in=chunk).values_list("profile_id", "id"))
            self.wallets.extend(wallets[uid] for uid in chunk)

    def follows(self) -> None:
        rng = self.rng("follows")

        def rows() -> Iterator[tuple]:
            for i in range(self.n):
                k = rng.choices((0, 1, 2, 3, 4, 6, 10), weights=(15, 15, 20, 20, 15, 10, 5))[0]
                targets: set[int] = set()
                while len(targets) < k:
                    j = rng.randrange(self.n)
                    if j != i:
                        targets.add(j)
                for j in sorted(targets):
                    at = max(self.joined[i], self.joined[j]) + timedelta(seconds=rng.uniform(0, 30 * DAY))
                    yield self.user_ids[i], self.user_ids[j], at

        self.report.counts["follows"] = len(insert_rows(Follow, ("follower_id", "followee_id", "created_at"), rows()))

    # --- teams -------------------------------------------------------------------------------------------------

    def teams(self) -> None:
        rng = self.rng("teams")
        n_teams = max(self.n // 25, min(2 * len(GAMES), self.n // 8))
        order = rng.sample(range(self.n), self.n)  # each user in at most one team: slices of a permutation
        plans: list[tuple[str, str, int, datetime, list[tuple[int, datetime, datetime | None]]]] = []
        pos = 0
        for k in range(n_teams):
            game = GAMES[k % len(GAMES)]
            extras = rng.choice((0, 0, 1, 2))
            members = order[pos : pos + TEAM_SIZE[game] + extras]
            pos += len(members)
            creator = members[0]
            created = self.joined[creator] + timedelta(seconds=rng.uniform(DAY, 30 * DAY))
            roster: list[tuple[int, datetime, datetime | None]] = [(creator, created, None)]  # the creator stays
            for slot, user in enumerate(members[1:], start=1):
                if slot < TEAM_SIZE[game]:  # founding members join within two days
                    joined = max(created, self.joined[user]) + timedelta(seconds=rng.uniform(0, 2 * DAY))
                    leave_share, stay = 0.12, (20, 200)
                else:  # later recruits, who leave more often
                    joined = created + timedelta(seconds=rng.uniform(10 * DAY, 150 * DAY))
                    leave_share, stay = 0.4, (5, 120)
                left = None
                if rng.random() < leave_share:
                    left = joined + timedelta(seconds=rng.uniform(stay[0] * DAY, stay[1] * DAY))
                    left = left if left < AS_OF else None
                roster.append((user, joined, left))
            name = f"{rng.choice(TEAM_WORDS[0])} {rng.choice(TEAM_WORDS[1])} #{k}"
            plans.append((name, game, creator, created, roster))

        ids = insert_rows(
            Team,
            ("name", "game", "created_by_id", "created_at", "updated_at"),
            ((name, game, self.user_ids[creator], created, created) for name, game, creator, created, _ in plans),
        )
        memberships = []
        for (team_id,), (_name, game, _, created, roster) in zip(ids, plans):
            self.teams_by_game[game].append(_Team(team_id, game, created))
            for user, joined, left in roster:
                memberships.append((team_id, self.user_ids[user], joined, left, joined, left or joined))
                self.report.counts["memberships.left"] += left is not None
        self.report.counts["teams"] = len(ids)
        self.report.counts["memberships"] = len(
            insert_rows(
                TeamMembership, ("team_id", "user_id", "joined_at", "left_at", "created_at", "updated_at"), memberships
            )
        )

    # --- tournaments, registrations, matches, results ----------------------------------------------------------

    def tournaments(self) -> None:
        rng = self.rng("tournaments")
        for start in range(0, self.m, TOURNAMENT_BATCH):
            plans = [self._plan(rng, k) for k in range(start, min(start + TOURNAMENT_BATCH, self.m))]
            self._write(plans)
            self.progress(f"tournaments: {min(start + TOURNAMENT_BATCH, self.m):,} / {self.m:,}")

    def _plan(self, rng: random.Random, k: int) -> _Plan:
        # Fixed guarantees (so every platform, however small, has them): #0 is a completed team tournament, #1 an
        # ongoing one with a disputed match in its current round.
        statuses = [status for status, _ in TOURNAMENT_STATUSES]
        weights = [weight for _, weight in TOURNAMENT_STATUSES]
        status: str = (
            Tournament.Status.COMPLETED
            if k == 0
            else Tournament.Status.ONGOING
            if k == 1
            else rng.choices(statuses, weights=weights)[0]
        )
        game = GAMES[0] if k == 0 else rng.choice(GAMES)
        teams = self.teams_by_game[game]
        team_entries = len(teams) >= 2 and (k == 0 or (k != 1 and rng.random() < 0.3))
        if team_entries:
            size = _power_of_two_at_most(min(rng.choice((4, 8, 8, 16)), len(teams)))
        else:
            size = _power_of_two_at_most(min(rng.choices((8, 16, 32, 64), weights=(3, 4, 3, 1))[0], self.n))

        if status in (Tournament.Status.COMPLETED, Tournament.Status.CANCELLED):
            starts = EPOCH + timedelta(seconds=rng.uniform(150 * DAY, 340 * DAY))
        elif status == Tournament.Status.ONGOING:
            starts = AS_OF - timedelta(seconds=rng.uniform(DAY, 5 * DAY))
        elif status == Tournament.Status.REGISTRATION:
            starts = AS_OF + timedelta(seconds=rng.uniform(3 * DAY, 20 * DAY))
        else:
            starts = AS_OF + timedelta(seconds=rng.uniform(20 * DAY, 60 * DAY))

        def registered_at() -> datetime:
            # Before the start and before "today"; always after every team was created (<= day 120 + 2).
            return min(starts, AS_OF) - timedelta(seconds=rng.uniform(DAY, 14 * DAY))

        played = status in (Tournament.Status.COMPLETED, Tournament.Status.ONGOING)
        if played:
            layout = [("confirmed", True)] * size + [
                (rng.choice(("no_show", "cancelled")), False) for _ in range(rng.randint(0, size // 4))
            ]
        elif status == Tournament.Status.REGISTRATION:
            layout = [
                (rng.choice(("pending", "pending", "confirmed")), False)
                for _ in range(max(2, int(size * rng.uniform(0.3, 1.0))))
            ]
        elif status == Tournament.Status.UPCOMING:
            layout = [("pending", False) for _ in range(rng.randint(0, max(1, size // 4)))]
        else:
            layout = [("cancelled", False) for _ in range(size // 2)]

        pool = len(teams) if team_entries else self.n
        picked = rng.sample(range(pool), min(len(layout), pool))
        entries = []
        for (status_, checked_in), who in zip(layout, picked):
            created = registered_at()
            checked = starts - timedelta(seconds=rng.uniform(0, 7200)) if checked_in else None
            entries.append(
                _Entry(
                    None if team_entries else who,
                    teams[who] if team_entries else None,
                    status_,
                    checked_in,
                    created,
                    checked,
                )
            )
        matches = (
            self._bracket(rng, status, starts, size, team_entries, showcase=k == 1) if played and size >= 2 else []
        )
        name = f"{game.replace('_', ' ').title()} {'Team ' if team_entries else ''}Cup #{k}"
        return _Plan(tournament_key(self.seed, k), name, game, status, starts, entries, matches)

    def _bracket(
        self, rng: random.Random, status: str, starts: datetime, size: int, team: bool, showcase: bool
    ) -> list[_PlannedMatch]:
        """Single elimination over entries 0..size-1. Completed: every round played. Ongoing: the rounds before a
        random current round are played, the current round is scheduled / live / disputed, nothing after it.
        The showcase tournament (solo, 8+ entries) is in its first round with one disputed, one scheduled and one live
        match, so that every platform has each of them."""
        rounds = size.bit_length() - 1
        if status == Tournament.Status.COMPLETED:
            current_round = rounds
        else:
            current_round = 0 if showcase else rng.randrange(rounds)
        alive = list(range(size))
        matches: list[_PlannedMatch] = []
        for r in range(rounds):
            label = ROUND_NAMES[len(alive)]
            at = starts + timedelta(days=r, seconds=rng.uniform(0, 6 * 3600))
            winners = []
            for slot, (a, b) in enumerate(zip(alive[::2], alive[1::2])):
                won = a if rng.random() < 0.5 else b
                if r < current_round:
                    roll = rng.random()
                    # Completed tournaments keep their semi-finals and final undisputed (the result is read off them).
                    state = "forfeit" if roll < 0.04 else "disputed" if roll < 0.06 and len(alive) > 4 else "completed"
                    matches.append(_PlannedMatch(label, a, b, won, state, _score(rng, team, state), at))
                    winners.append(won)
                else:
                    pending = ("scheduled", "scheduled", "live", "disputed")
                    state = ("disputed", "scheduled", "live")[slot] if showcase and slot < 3 else rng.choice(pending)
                    outcome = won if state == "disputed" else None
                    matches.append(
                        _PlannedMatch(
                            label, a, b, outcome, state, _score(rng, team, state) if outcome is not None else "", at
                        )
                    )
            if r == current_round:
                break
            alive = winners
        return matches

    def _write(self, plans: list[_Plan]) -> None:
        counts = self.report.counts
        ids = insert_rows(
            Tournament,
            ("name", "game", "status", "season", "starts_at", "external_id", "created_at", "updated_at"),
            (
                (
                    p.name,
                    p.game,
                    p.status,
                    p.starts_at.year,
                    p.starts_at,
                    p.key,
                    min(p.starts_at, AS_OF) - timedelta(days=30),
                    min(p.starts_at, AS_OF),
                )
                for p in plans
            ),
        )
        counts["tournaments"] += len(ids)
        reg_rows = []
        for (tid,), plan in zip(ids, plans):
            counts[f"tournaments.{plan.status}"] += 1
            for e in plan.entries:
                reg_rows.append(
                    (
                        tid,
                        None if e.user is None else self.user_ids[e.user],
                        None if e.team is None else e.team.id,
                        e.status,
                        e.checked_in,
                        e.checked_in_at,
                        e.created_at,
                        e.checked_in_at or e.created_at,
                    )
                )
                counts[f"registrations.{'team' if e.team else 'solo'}"] += 1
                counts[f"registrations.{e.status}{'+checked_in' if e.checked_in else ''}"] += 1
        reg_ids = [
            r[0]
            for r in insert_rows(
                Registration,
                (
                    "tournament_id",
                    "user_id",
                    "team_id",
                    "status",
                    "checked_in",
                    "checked_in_at",
                    "created_at",
                    "updated_at",
                ),
                reg_rows,
            )
        ]
        counts["registrations"] += len(reg_ids)

        match_rows, result_rows, offset = [], [], 0
        for (tid,), plan in zip(ids, plans):
            reg = reg_ids[offset : offset + len(plan.entries)]
            offset += len(plan.entries)
            for num, pm in enumerate(plan.matches, start=1):
                loser = None if pm.winner is None else (pm.p2 if pm.winner == pm.p1 else pm.p1)
                done = pm.state in ("completed", "forfeit", "disputed")
                match_rows.append(
                    (
                        tid,
                        pm.round,
                        num,
                        reg[pm.p1],
                        reg[pm.p2],
                        None if pm.winner is None else reg[pm.winner],
                        None if loser is None else reg[loser],
                        pm.state,
                        pm.score,
                        pm.at if done else None,
                        pm.at - timedelta(days=1),
                        pm.at if done else pm.at - timedelta(days=1),
                    )
                )
                counts[f"matches.{pm.state}"] += 1
            final = plan.matches[-1] if plan.matches else None
            if plan.status == Tournament.Status.COMPLETED and final is not None and final.winner is not None:
                runner_up = final.p2 if final.winner == final.p1 else final.p1
                semi_losers = [reg[pm.p2 if pm.winner == pm.p1 else pm.p1] for pm in plan.matches if pm.round == "SF"]
                third, fourth = semi_losers if len(semi_losers) == 2 else (None, None)
                at = final.at + timedelta(hours=2)
                result_rows.append((tid, reg[final.winner], reg[runner_up], third, fourth, at, at))
                champion, finalist = plan.entries[final.winner].user, plan.entries[runner_up].user
                if champion is not None and finalist is not None:  # solo prizes; team prizes are split off-platform
                    self.prizes.append((champion, 1000, f"prize: {plan.name}", at))
                    self.prizes.append((finalist, 400, f"prize: {plan.name}", at))
        counts["matches"] += len(
            insert_rows(
                Match,
                MATCH_ROW_COLUMNS,
                match_rows,
            )
        )
        counts["results"] += len(
            insert_rows(
                TournamentResult,
                (
                    "tournament_id",
                    "winner_id",
                    "runner_up_id",
                    "third_place_id",
                    "fourth_place_id",
                    "created_at",
                    "updated_at",
                ),
                result_rows,
            )
        )

    # --- economy and achievements ------------------------------------------------------------------------------

    def transactions(self) -> None:
        rng = self.rng("transactions")
        counts = self.report.counts

        prizes_of: dict[int, list[tuple[datetime, int, str, str]]] = {}
        for user, amount, reason, at in self.prizes:
            prizes_of.setdefault(user, []).append((at, amount, reason, "prize"))

        def rows() -> Iterator[tuple]:
            for i in range(self.n):
                span = (AS_OF - self.joined[i]).total_seconds()
                moves: list[tuple[datetime, int, str, str]] = []
                for _ in range(rng.choices((0, 1, 2, 3, 5, 8, 12), weights=(10, 15, 20, 20, 15, 12, 8))[0]):
                    at = self.joined[i] + timedelta(seconds=rng.uniform(0, span))
                    if rng.random() < 0.6:
                        moves.append((at, rng.randint(5, 500), rng.choice(EARN_REASONS), "earn"))
                    else:
                        moves.append((at, -rng.randint(5, 300), rng.choice(SPEND_REASONS), "spend"))
                # In time order with a running balance: a spend never takes more than the wallet holds at that moment
                # (the service would refuse it, and the wallet's CHECK cached_balance >= 0 would refuse the refresh).
                balance = 0
                for at, amount, reason, kind in sorted(moves + prizes_of.get(i, []), key=lambda move: move[0]):
                    if amount < 0:
                        amount = -min(-amount, balance)
                        if amount == 0:
                            continue
                    balance += amount
                    counts[f"transactions.{kind}"] += 1
                    yield self.wallets[i], amount, reason, at

        counts["transactions"] = len(
            insert_rows(DeltaCrownTransaction, ("wallet_id", "amount", "reason", "created_at"), rows())
        )
        # A bulk history bypasses the economy service: bring the wallet caches and profile mirrors to it, set-based.
        refresh_wallets_of(self.wallets)

    def achievements(self) -> None:
        rng = self.rng("achievements")
        # The catalogue is shared by every seed (codes are unique): add what is missing, keep what exists.
        Achievement.objects.bulk_create(
            [Achievement(code=c, name=n, tier=t) for c, n, t, _ in ACHIEVEMENTS], ignore_conflicts=True
        )
        by_code = dict(Achievement.objects.filter(code__in=[a[0] for a in ACHIEVEMENTS]).values_list("code", "id"))
        self.report.counts["achievements"] = len(by_code)

        def rows() -> Iterator[tuple]:
            for i in range(self.n):
                span = (AS_OF - self.joined[i]).total_seconds()
                for code, _, _, share in ACHIEVEMENTS:
                    if rng.random() < share:
                        at = self.joined[i] + timedelta(seconds=rng.uniform(0, span))
                        yield self.user_ids[i], by_code[code], at, at, at

        self.report.counts["unlocks"] = len(
            insert_rows(
                UserAchievement, ("user_id", "achievement_id", "unlocked_at", "created_at", "updated_at"), rows()
            )
        )


def _score(rng: random.Random, team: bool, state: str) -> str:
    if state == "forfeit":
        return "W/O"
    return f"{13}-{rng.randint(3, 11)}" if team else f"2-{rng.randint(0, 1)}"


def _power_of_two_at_most(value: int) -> int:
    return 1 << (max(value, 1).bit_length() - 1)


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- fingerprint ---------------------------------------------------------------------------------------------------


def platform_fingerprint(seed: int) -> str:
    """SHA-256 over the generated rows of `seed`, described by natural keys (never database ids) and sorted.

    Two databases generated with the same arguments give the same fingerprint. Columns that record when a row was
    written (auto updated_at of profiles and wallets) are left out; every generated time is included.
    """
    User = get_user_model()
    prefix = f"gen{seed}_"
    users = User.objects.filter(username__startswith=prefix)
    tournaments = Tournament.objects.filter(external_id__startswith=f"gen{seed}-")
    teams = Team.objects.filter(created_by__username__startswith=prefix)

    def entrant(path: str) -> tuple[str, str]:
        return (f"{path}__user__username", f"{path}__team__name")

    sections = {
        "users": users.values_list(
            "username",
            "first_name",
            "last_name",
            "date_joined",
            "profile__display_name",
            "profile__created_at",
            "profile__wallet__created_at",
        ),
        "follows": Follow.objects.filter(follower__username__startswith=prefix).values_list(
            "follower__username", "followee__username", "created_at"
        ),
        "teams": teams.values_list("name", "game", "created_by__username", "created_at"),
        "memberships": TeamMembership.objects.filter(team__in=teams).values_list(
            "team__name", "user__username", "joined_at", "left_at"
        ),
        "tournaments": tournaments.values_list(
            "external_id", "name", "game", "status", "season", "starts_at", "created_at"
        ),
        "registrations": Registration.objects.filter(tournament__in=tournaments).values_list(
            "tournament__external_id",
            "user__username",
            "team__name",
            "status",
            "checked_in",
            "checked_in_at",
            "created_at",
        ),
        "matches": Match.objects.filter(tournament__in=tournaments).values_list(
            "tournament__external_id",
            "match_num",
            "round",
            *entrant("participant1"),
            *entrant("participant2"),
            *entrant("winner"),
            *entrant("loser"),
            "state",
            "score",
            "completed_at",
        ),
        "results": TournamentResult.objects.filter(tournament__in=tournaments).values_list(
            "tournament__external_id",
            *entrant("winner"),
            *entrant("runner_up"),
            *entrant("third_place"),
            *entrant("fourth_place"),
            "created_at",
        ),
        "transactions": DeltaCrownTransaction.objects.filter(
            wallet__profile__user__username__startswith=prefix
        ).values_list("wallet__profile__user__username", "amount", "reason", "created_at"),
        "unlocks": UserAchievement.objects.filter(Q(user__username__startswith=prefix)).values_list(
            "user__username", "achievement__code", "unlocked_at"
        ),
    }
    digest = hashlib.sha256()
    for name, queryset in sections.items():
        digest.update(name.encode())
        for row in sorted(map(repr, queryset.iterator(chunk_size=5000))):
            digest.update(row.encode())
    return digest.hexdigest()
