"""`manage.py backfill_public_ids [--dry-run] [--limit N] [--batch-size N]`: public IDs for profiles that have none."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from esports.profiles.public_id_backfill import (
    DEFAULT_BATCH_SIZE,
    backfill_public_ids,
    count_missing,
)
from project.progress import progress


def _non_negative(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value


class Command(BaseCommand):
    help = (
        "Assign public IDs (DC-YY-NNNNNN) to profiles created before they existed, in creation order, one "
        "transaction per batch. Idempotent: a second run assigns nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count what would be assigned, change nothing")
        parser.add_argument("--limit", type=_non_negative, default=None, help="assign at most N IDs")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="profiles per transaction")

    def handle(self, *args, dry_run: bool, limit: int | None, batch_size: int, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        pending = sum(count_missing().values())
        total = pending if limit is None else min(limit, pending)
        # A bar on a terminal, a line per batch when piped (project/progress.py); none for a dry run or nothing to do.
        shown = 0 if dry_run or total == 0 else options["verbosity"]
        with progress(total, "backfill_public_ids: profiles", self.stdout, shown) as bar:
            report = backfill_public_ids(dry_run=dry_run, limit=limit, batch_size=batch_size, progress=bar.update)
        years = ", ".join(f"{year}: {n:,}" for year, n in sorted(report.by_year.items())) or "none"
        verb = "would assign" if dry_run else "assigned"
        self.stdout.write(
            f"{report.pending:,} profile(s) without a public ID; {verb} {report.assigned:,} "
            f"in {report.batches} batch(es) (by year: {years})."
        )
