"""`make demo`: the main job end to end on whatever backend the environment selects (the embedded default by default)."""
from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from activity.models import UserActivity
from esports.economy.models import DeltaCrownTransaction
from esports.profiles.models import UserProfile
from esports.tournaments.models import Match, Registration, Tournament, TournamentResult
from project.backends import describe_backends
from stats.models import UserProfileStats
from tasks.demo_season import play_demo_season


class Command(BaseCommand):
    help = "Migrate, load a decade of ATP history (or a synthetic platform), play a demo season, print what happened."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--atp-dir", default=str(Path(settings.BASE_DIR).parent / "shared" / "data" / "atp"))
        parser.add_argument("--from-year", type=int, default=2015)
        parser.add_argument("--to-year", type=int, default=2024)

    def handle(self, *args, atp_dir: str, from_year: int, to_year: int, **options) -> None:
        started = time.monotonic()
        out = self.stdout
        out.write(self.style.MIGRATE_HEADING(f"Backends — {describe_backends()}"))
        call_command("migrate", verbosity=0)
        out.write("migrated")

        atp = Path(atp_dir)
        if (atp / "atp_tour_matches.csv.gz").exists():
            out.write(self.style.MIGRATE_HEADING(f"Importing ATP tour history {from_year}-{to_year} from {atp}"))
            call_command("import_atp", str(atp), from_year=from_year, to_year=to_year, stdout=out)
        else:
            out.write(self.style.MIGRATE_HEADING(f"No ATP data at {atp}: generating a synthetic platform"))
            call_command("generate_platform", users=300, tournaments=12, seed=7, stdout=out)
        self._print_counts("Source tables")

        out.write(self.style.MIGRATE_HEADING("Playing a demo season through signals -> tasks -> ledger -> stats"))
        players = list(
            Registration.objects.filter(user__isnull=False, tournament__result__isnull=False)
            .order_by("-tournament__starts_at", "-tournament_id", "id").values_list("user_id", flat=True)[:8]
        ) or list(UserProfile.objects.order_by("user_id").values_list("user_id", flat=True)[:8])
        season = play_demo_season(players)
        out.write(f"played {season.tournament.name}: 7 matches (one walkover), final disputed and overturned, prize paid")
        self._print_counts("After the season")
        self._print_leaderboard()
        self._print_player(season.champion_id)
        out.write(self.style.SUCCESS(f"demo finished in {time.monotonic() - started:.1f}s"))

    def _print_counts(self, title: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(title))
        for label, qs in (("users/profiles", UserProfile.objects), ("tournaments", Tournament.objects),
                          ("registrations", Registration.objects), ("matches", Match.objects),
                          ("forfeits", Match.objects.filter(state=Match.State.FORFEIT)),
                          ("tournament results", TournamentResult.objects), ("coin transactions", DeltaCrownTransaction.objects),
                          ("ledger events", UserActivity.objects), ("stats rows", UserProfileStats.objects)):
            self.stdout.write(f"  {label:<20} {qs.count():>10,}")

    def _print_leaderboard(self) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING("Top 10 — tournaments won, then matches won"))
        rows = (UserProfileStats.objects.select_related("profile")
                .order_by("-tournaments_won", "-matches_won", "profile_id")[:10])
        self.stdout.write(f"  {'#':>2}  {'player':<28} {'titles':>6} {'won':>5} {'played':>6} {'win %':>6}")
        for rank, s in enumerate(rows, 1):
            self.stdout.write(f"  {rank:>2}  {s.profile.display_name[:28]:<28} {s.tournaments_won:>6} {s.matches_won:>5} "
                              f"{s.matches_played:>6} {s.win_rate:>6}")

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
