"""`make demo`: the main job end to end exactly as production runs it, on the embedded stack or the configured URLs.

Migrations, the ATP import, `setup_schedules`, a real Celery worker and beat as subprocesses, the backfill started
through the admin's service and run by the worker, the demo season saved through the ORM and recorded by the worker
through the broker; then what happened and where to look. Idempotent: a second run reuses the data and changes
nothing (the import skips what it has, a finished backfill and a played demo season are detected and skipped).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path
from types import TracebackType

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from activity import backfill
from activity.models import BackfillRun, UserActivity
from dispatch.names import Queue
from esports.economy.models import DeltaCrownTransaction
from esports.profiles.models import UserProfile
from esports.profiles.public_id_backfill import backfill_public_ids
from esports.tournaments.models import Match, Registration, Tournament, TournamentResult
from project.progress import progress
from stats.models import UserProfileStats
from stats.selectors.leaderboards import Board, leaderboard
from tasks.batching import INFLIGHT_INDEX, PENDING_KEY
from tasks.demo_season import DEMO_CUP, demo_season_champion, play_demo_season

STAFF_USERNAME = "demo-admin"
STAFF_PASSWORD = "demo-admin-password"  # a local demo login, printed on purpose; never a production account
QUEUES = ("events", "maintenance")
DRAIN_TIMEOUT = 900.0
WORKER_PROCESSES = 2  # the demo worker's --concurrency, and the backfill's lanes: one chunk chain per process


class Command(BaseCommand):
    help = (
        "Migrate, import a decade of ATP history, start a worker and beat, backfill through the worker, play a demo "
        "season recorded by the worker, print what happened. Needs PostgreSQL and Redis (`make demo` brings both)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--atp-dir", default=str(Path(settings.BASE_DIR).parent / "shared" / "data" / "atp"))
        parser.add_argument("--from-year", type=int, default=2015)
        parser.add_argument("--to-year", type=int, default=2024)
        parser.add_argument(
            "--logs-dir",
            default=str(Path(settings.BASE_DIR) / ".embedded" / "logs"),
            help="where the worker's and beat's logs go (with -v 2 they go to the terminal)",
        )

    def handle(
        self, *args, atp_dir: str, from_year: int, to_year: int, logs_dir: str, verbosity: int, **options
    ) -> None:
        started = time.monotonic()
        out = self.stdout
        out.write(f"Backends — {settings.BACKENDS_DESCRIPTION}")
        if not settings.CELERY_BROKER_URL:
            raise CommandError(
                "the demo runs the production stack: PostgreSQL and a Redis broker. Run `make demo` "
                "(it starts embedded ones) or set DATABASE_URL and REDIS_URL."
            )
        detail = out if verbosity >= 2 else StringIO()
        call_command("migrate", verbosity=max(0, verbosity - 1), stdout=detail)
        out.write("migrated")
        before = _source_counts()
        _quiet_logging(verbosity)
        self._import(Path(atp_dir), from_year, to_year, verbosity)
        history_changed = _source_counts() != before
        call_command("setup_schedules", stdout=detail)
        out.write("periodic tasks in place (setup_schedules)")
        staff_created = _ensure_staff_login()

        with Workers(Path(logs_dir), verbose=verbosity >= 2) as workers:
            out.write(f"worker and beat started ({workers.where})")
            self._backfill(history_changed, verbosity)
            champion_id = self._season()
            out.write("waiting for the worker to drain the queues ...")
            _wait_until_drained()
            out.write("worker drained: every change is in the ledger")
        self._print_counts("Now in the database")
        self._print_leaderboard()
        self._print_player(champion_id)
        self._print_where_to_look(champion_id, staff_created)
        out.write(self.style.SUCCESS(f"demo finished in {time.monotonic() - started:.1f}s"))

    def _import(self, atp: Path, from_year: int, to_year: int, verbosity: int) -> None:
        if (atp / "atp_tour_matches.csv.gz").exists():
            self.stdout.write(
                self.style.MIGRATE_HEADING(f"Importing ATP tour history {from_year}-{to_year} from {atp}")
            )
            call_command(
                "import_atp", str(atp), from_year=from_year, to_year=to_year, stdout=self.stdout, verbosity=verbosity
            )
        elif UserProfile.objects.exists():
            self.stdout.write(f"No ATP data at {atp}; the platform an earlier run generated is kept")
        else:
            self.stdout.write(self.style.MIGRATE_HEADING(f"No ATP data at {atp}: generating a synthetic platform"))
            call_command(
                "generate_platform", users=300, tournaments=12, seed=7, stdout=self.stdout, verbosity=verbosity
            )

    def _backfill(self, history_changed: bool, verbosity: int) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING("Backfilling the ledger from that history, on the worker"))
        done = BackfillRun.objects.filter(dry_run=False, status=BackfillRun.Status.SUCCEEDED).order_by("-pk").first()
        if done is not None and not history_changed:
            self.stdout.write(f"  already done by run #{done.pk} (`manage.py backfill_user_activity` starts another)")
            return
        # The admin's "Start backfill" service: it enqueues the first chunk of each lane on the maintenance queue
        # after commit. One lane per worker process: the decade takes about half the time of one lane.
        run = backfill.start_backfill(lanes=WORKER_PROCESSES)
        self.stdout.write(f"  run #{run.pk}: {run.rows_total:,} source rows, chunks on queue {Queue.MAINTENANCE}")
        last, shown = 0.0, 0
        with progress(run.rows_total, "  backfill: source rows", self.stdout, verbosity) as bar:
            while run.is_active:
                time.sleep(0.5)
                run = BackfillRun.objects.get(pk=run.pk)
                # Every 3 s: a piped run gets a line that often, not one per poll.
                if time.monotonic() - last > 3 or not run.is_active:
                    last = time.monotonic()
                    seen = backfill.progress_of(run)
                    bar.update(seen.rows_done - shown, note=f"events {seen.events:,}")
                    shown = seen.rows_done
        if run.status != BackfillRun.Status.SUCCEEDED:
            raise CommandError(f"backfill #{run.pk} ended {run.status}: {run.last_error or 'see the worker log'}")
        if run.started_at is not None and run.finished_at is not None:
            seconds = (run.finished_at - run.started_at).total_seconds()
            self.stdout.write(
                f"  backfill: {run.events_created:,} events in {seconds:.1f} s "
                f"({run.events_created / max(seconds, 1e-9):,.0f} events/s)"
            )

    def _season(self) -> int:
        self.stdout.write(
            self.style.MIGRATE_HEADING("Playing a demo season: ORM saves -> broker -> worker -> ledger -> stats")
        )
        champion_id = demo_season_champion()
        if champion_id is not None:
            self.stdout.write(f"  {DEMO_CUP} was played by an earlier run; not replayed")
            return champion_id
        players = list(
            Registration.objects.filter(user__isnull=False, tournament__result__isnull=False)
            .order_by("-tournament__starts_at", "-tournament_id", "id")
            .values_list("user_id", flat=True)[:8]
        ) or list(UserProfile.objects.order_by("user_id").values_list("user_id", flat=True)[:8])
        season = play_demo_season(players)
        self.stdout.write(
            f"  played {season.tournament.name}: 7 matches (one walkover), final disputed and overturned, prize paid"
        )
        return season.champion_id

    def _print_counts(self, title: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(title))
        for label, qs in (
            ("users/profiles", UserProfile.objects),
            ("tournaments", Tournament.objects),
            ("registrations", Registration.objects),
            ("matches", Match.objects),
            ("forfeits", Match.objects.filter(state=Match.State.FORFEIT)),
            ("tournament results", TournamentResult.objects),
            ("coin transactions", DeltaCrownTransaction.objects),
            ("ledger events", UserActivity.objects),
            ("stats rows", UserProfileStats.objects),
        ):
            self.stdout.write(f"  {label:<20} {qs.count():>10,}")

    def _print_leaderboard(self) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING("Top 10 — tournaments won (ties: runner-up finishes)"))
        self.stdout.write(
            f"  {'#':>2}  {'player':<28} {'titles':>6} {'finals':>6} {'won':>5} {'played':>6} {'win %':>6}"
        )
        for e in leaderboard(Board.TOURNAMENTS_WON, limit=10, use_cache=False):
            self.stdout.write(
                f"  {e.rank:>2}  {e.display_name[:28]:<28} {e.tournaments_won:>6} {e.tournaments_runner_up:>6} "
                f"{e.matches_won:>5} {e.matches_played:>6} {e.win_rate:>6}"
            )

    def _print_player(self, user_id: int) -> None:
        stats = UserProfileStats.objects.select_related("profile").get(profile_id=user_id)
        self.stdout.write(self.style.MIGRATE_HEADING(f"Demo champion: {stats.profile.display_name} (user {user_id})"))
        for name, value in stats.to_dict().items():
            self.stdout.write(f"  {name:<24} {value}")
        self.stdout.write("  latest events:")
        for event in UserActivity.objects.filter(user_id=user_id).order_by("-timestamp", "-id")[:8]:
            extra = f" {event.amount} coins" if event.amount else ""
            where = event.metadata.get("tournament", "")
            self.stdout.write(f"    {event.timestamp:%Y-%m-%d %H:%M}  {event.event_type:<24}{extra} {where}")

    def _print_where_to_look(self, user_id: int, staff_created: bool) -> None:
        backfill_public_ids()  # a demo database from before public IDs: give its profiles theirs (no-op otherwise)
        profile = UserProfile.objects.select_related("user").get(pk=user_id)
        username, public_id = profile.user.username, profile.public_id
        self.stdout.write(self.style.MIGRATE_HEADING("Where to look (serve it with `make run`, then open)"))
        for what, path in (
            (f"public ID page {public_id}", f"/p/{public_id}/"),
            ("API by public ID", f"/api/users/{public_id}/"),
            ("profile page", f"/u/{username}/"),
            ("activity timeline", f"/u/{username}/activity/"),
            ("economy (log in first)", f"/u/{username}/economy/"),
            ("leaderboards", "/leaderboards/"),
            ("win-rate board", "/leaderboards/?board=win_rate"),
            ("tennis board", "/leaderboards/?game=tennis"),
            ("API: stats", f"/api/users/{user_id}/stats/"),
            ("API: activity", f"/api/users/{user_id}/activity/"),
            ("API: leaderboard", "/api/leaderboards/tournaments_won/"),
            ("OpenAPI schema", "/api/schema/"),
            ("admin (backfill, reconciliation)", "/admin/"),
            ("health", "/healthz"),
            ("metrics", "/metrics"),
        ):
            self.stdout.write(f"  {what:<34} http://127.0.0.1:8000{path}")
        note = "created now" if staff_created else "created by an earlier run"
        self.stdout.write(
            f"  staff login ({note}): {STAFF_USERNAME} / {STAFF_PASSWORD}  at http://127.0.0.1:8000/admin/"
        )


def _quiet_logging(verbosity: int) -> None:
    """Below -v 2 the demo's own INFO records (a backfill created, a chunk done) stay out of its report: warnings and
    errors still show. The worker's and beat's go to their log files (Workers)."""
    if verbosity < 2:
        logging.getLogger().setLevel(logging.WARNING)


def _source_counts() -> tuple[int, ...]:
    """Row counts of the history tables: when the import added nothing, a finished backfill already covers it."""
    return tuple(
        m.objects.count()
        for m in (UserProfile, Tournament, Registration, Match, TournamentResult, DeltaCrownTransaction)
    )


def _ensure_staff_login() -> bool:
    """A superuser for the admin and the owner-only pages; created once, never reset (a changed password stays)."""
    User = get_user_model()
    if User.objects.filter(username=STAFF_USERNAME).exists():
        return False
    User.objects.create_superuser(STAFF_USERNAME, email="demo-admin@example.invalid", password=STAFF_PASSWORD)
    return True


def _queue_depth(client: redis.Redis) -> int:
    return sum(client.llen(q) for q in QUEUES) + client.llen(PENDING_KEY) + client.zcard(INFLIGHT_INDEX)


def _wait_until_drained(timeout: float = DRAIN_TIMEOUT) -> None:
    """Nothing queued, nothing batched, nothing in a worker's hands - twice in a row, since a finishing task can
    publish a follow-up (the next backfill chunk, the next drain)."""
    from project.celery import app

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=5)
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2:
        if time.monotonic() > deadline:
            raise CommandError(
                f"the worker did not drain the queues within {timeout:.0f}s (depth {_queue_depth(client)})"
            )
        busy = _queue_depth(client)
        if not busy:
            inspect = app.control.inspect(timeout=1.0)
            busy = sum(
                len(tasks) for reply in (inspect.active(), inspect.reserved()) for tasks in (reply or {}).values()
            )
        quiet = quiet + 1 if not busy else 0
        time.sleep(0.3)


class Workers:
    """A Celery worker and beat as subprocesses of the demo, exactly as the Procfile starts them; stopped on exit."""

    def __init__(self, logs: Path, *, verbose: bool) -> None:
        self.logs, self.verbose = logs, verbose
        self.name = f"demo-{os.getpid()}@{socket.gethostname()}"
        self.processes: list[subprocess.Popen] = []
        self.where = "logs on this terminal" if verbose else f"logs in {logs}"

    def _spawn(self, role: str, args: list[str]) -> None:
        level = "info" if self.verbose else "warning"
        command = [sys.executable, "-m", "celery", "-A", "project", role, *args, "-l", level]
        if self.verbose:
            self.processes.append(subprocess.Popen(command, cwd=settings.BASE_DIR))
            return
        self.logs.mkdir(parents=True, exist_ok=True)
        # Celery's own records go to --logfile; the file below catches whatever is printed before logging is set up.
        with open(self.logs / f"{role}.out", "ab") as early:
            self.processes.append(
                subprocess.Popen(
                    [*command, "--logfile", str(self.logs / f"{role}.log")],
                    cwd=settings.BASE_DIR,
                    stdout=early,
                    stderr=early,
                )
            )

    def __enter__(self) -> Workers:
        self._spawn(
            "worker",
            [
                "-Q",
                ",".join(QUEUES),
                "-n",
                self.name,
                "--concurrency",
                str(WORKER_PROCESSES),
                "--prefetch-multiplier",
                "1",
            ],
        )
        self._spawn("beat", ["--scheduler", "django_celery_beat.schedulers:DatabaseScheduler", "--pidfile="])
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self, timeout: float = 90.0) -> None:
        from project.celery import app

        deadline = time.monotonic() + timeout
        while not app.control.ping(destination=[self.name], timeout=0.5):
            dead = [p for p in self.processes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise CommandError(
                    f"the worker/beat did not start (exit codes {[p.returncode for p in dead]}); see {self.logs}"
                )

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # warm shutdown: the running task finishes, nothing is lost
        for process in self.processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
