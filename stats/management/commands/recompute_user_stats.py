"""`python manage.py recompute_user_stats [--dry-run] [--limit N] [--user-id ID]`: set every chosen user's stats
(lifetime, per-game and per-season rows) to the ledger's aggregates, through stats.recompute.recompute_stats - the
service the admin action and the stale-stats job use - chunk by chunk, each chunk one transaction under its rows'
locks (live recording meanwhile is never lost)."""

from __future__ import annotations

from argparse import ArgumentTypeError

from django.core.management.base import BaseCommand, CommandError, CommandParser

from esports.profiles.models import UserProfile
from project.progress import progress
from stats.recompute import CHUNK, recompute_stats


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


class Command(BaseCommand):
    help = (
        "Recompute users' stats (lifetime, per game, per season) from the ledger, set-based and chunked by user id. "
        "--dry-run only says which users and how many chunks it would write."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="write nothing; say what would be recomputed")
        parser.add_argument("--limit", type=_positive, default=None, help="the first N users by id only")
        parser.add_argument("--user-id", type=_positive, default=None, help="this one user only")

    def handle(self, *args, dry_run: bool, limit: int | None, user_id: int | None, verbosity: int, **options) -> None:
        profiles = UserProfile.objects.order_by("pk").values_list("pk", flat=True)
        if user_id is not None:
            profiles = profiles.filter(pk=user_id)
        ids = list(profiles[:limit] if limit is not None else profiles)
        if user_id is not None and not ids:
            raise CommandError(f"No user with id {user_id} (no profile with that id).")
        chunks = (len(ids) + CHUNK - 1) // CHUNK
        if dry_run:
            span = f"ids {ids[0]}..{ids[-1]}" if ids else "none"
            self.stdout.write(f"dry run: would recompute {len(ids):,} user(s) ({span}) in {chunks} chunk(s)")
            return
        with progress(len(ids), "recompute_user_stats: users", self.stdout, verbosity) as bar:
            seen = [0]

            def advance(done: int, written: int) -> None:
                bar.update(done - seen[0], note=f"{written:,} row(s) written")
                seen[0] = done

            written = recompute_stats(ids, progress=advance)
        if verbosity:
            self.stdout.write(f"recomputed {written:,} user(s) in {chunks} chunk(s)")
