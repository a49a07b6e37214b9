"""Import the ATP tour history into the source models: `manage.py import_atp PATH [--from-year Y] [--to-year Y]`."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from esports.tournaments.atp_import import AtpImportError, import_atp
from project.progress import progress


class Command(BaseCommand):
    help = (
        "Import ATP tour-level matches (the directory holding atp_tour_matches.csv.gz and atp_players.csv.gz) "
        "as users, tournaments, registrations, matches and results. Idempotent; one transaction per season."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="directory holding atp_tour_matches.csv.gz and atp_players.csv.gz")
        parser.add_argument("--from-year", type=int, default=None, help="first season to import (inclusive)")
        parser.add_argument("--to-year", type=int, default=None, help="last season to import (inclusive)")

    def handle(self, *args, path: str, from_year: int | None, to_year: int | None, verbosity: int, **options) -> None:
        if verbosity:
            self.stdout.write(settings.BACKENDS_DESCRIPTION)
        # One step per season (one transaction each); the count is known only when both bounds are given.
        seasons = (
            to_year - from_year + 1 if from_year is not None and to_year is not None and to_year >= from_year else None
        )
        try:
            with progress(seasons, "import_atp: seasons", self.stdout, verbosity) as bar:
                report = import_atp(
                    path, from_year=from_year, to_year=to_year, progress=lambda line: bar.update(1, note=line)
                )
        except AtpImportError as exc:
            raise CommandError(
                f"ATP import failed: {exc}. Seasons committed before this point stay imported; "
                "the season being read was rolled back."
            ) from exc
        if verbosity:
            for line in report.summary_lines():
                self.stdout.write(line)
