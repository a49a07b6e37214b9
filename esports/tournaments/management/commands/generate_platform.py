"""A deterministic synthetic platform: `manage.py generate_platform --users N --tournaments M --seed S`."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from esports.tournaments.synthetic import (
    TOURNAMENT_BATCH,
    GeneratorError,
    generate_platform,
    platform_fingerprint,
)
from project.progress import progress

PHASES = 6  # users, follows, teams, tournaments, transactions, achievements: one progress line each when done


class Command(BaseCommand):
    help = (
        "Generate a deterministic synthetic platform (users with profiles and wallets, follows, teams, solo and "
        "team tournaments with matches, disputes and results, coin transactions, achievements). Same seed, same "
        "data. One transaction."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=1000)
        parser.add_argument("--tournaments", type=int, default=50)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--checksum",
            action="store_true",
            help="also print the fingerprint of the generated rows (slow for large platforms)",
        )

    def handle(self, *args, users: int, tournaments: int, seed: int, checksum: bool, verbosity: int, **options) -> None:
        if verbosity:
            self.stdout.write(settings.BACKENDS_DESCRIPTION)
        # Every progress line is one step: a line per finished phase and one per batch of tournaments written.
        steps = PHASES + -(-max(tournaments, 0) // TOURNAMENT_BATCH)
        try:
            with progress(steps, "generate_platform", self.stdout, verbosity) as bar:
                report = generate_platform(users, tournaments, seed, progress=lambda line: bar.update(1, note=line))
        except GeneratorError as exc:
            raise CommandError(f"generate_platform: {exc}") from exc
        if verbosity:
            for line in report.summary_lines():
                self.stdout.write(line)
        if checksum:
            self.stdout.write(f"fingerprint (seed {seed}): {platform_fingerprint(seed)}")
