"""Import the ATP tour history into the source models: `manage.py import_atp PATH [--from-year Y] [--to-year Y]`."""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from esports.tournaments.atp_import import AtpImportError, import_atp


class Command(BaseCommand):
    help = ("Import ATP tour-level matches (the directory holding atp_tour_matches.csv.gz and atp_players.csv.gz) "
            "as users, tournaments, registrations, matches and results. Idempotent; one transaction per season.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="directory holding atp_tour_matches.csv.gz and atp_players.csv.gz")
        parser.add_argument("--from-year", type=int, default=None, help="first season to import (inclusive)")
        parser.add_argument("--to-year", type=int, default=None, help="last season to import (inclusive)")

    def handle(self, *args, path: str, from_year: int | None, to_year: int | None, **options) -> None:
        self.stdout.write(settings.BACKENDS_DESCRIPTION)
        try:
            report = import_atp(path, from_year=from_year, to_year=to_year, progress=self.stdout.write)
        except AtpImportError as exc:
            raise CommandError(f"ATP import failed: {exc}. Seasons committed before this point stay imported; "
                               "the season being read was rolled back.") from exc
        for line in report.summary_lines():
            self.stdout.write(line)
