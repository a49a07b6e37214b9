"""`python manage.py audit_verify_integrity [--limit N] [--since DATE]`: re-compute the audit hash chain.

Exits with status 1 naming the first row that was changed, deleted, inserted or reordered (audit/verify.py says how
each is told apart, and what --since trusts).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.cli import moment, positive_int
from audit.verify import run_verification
from project.progress import progress


class Command(BaseCommand):
    help = (
        "Re-compute the SHA-256 chain of the audit trail in id order and exit non-zero naming the first broken row. "
        "--since DATE starts at the first row at/after DATE and trusts its stored prev_hash; --limit N stops after "
        "N rows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=positive_int, default=None, help="verify at most N rows")
        parser.add_argument("--since", type=moment, default=None, help="start at the first row at/after DATE")

    def handle(self, *args, **options) -> None:
        with progress(None, "audit_verify_integrity", self.stdout, options["verbosity"]) as bar:
            report = run_verification(since=options["since"], limit=options["limit"], on_chunk=bar.update)
        span = f"rows {report.first_id}..{report.last_id}" if report.first_id else "no rows"
        if report.problem is not None:
            raise CommandError(
                f"audit chain BROKEN at row {report.problem.row_id} ({report.problem.kind}): {report.problem.message}; "
                f"{report.rows_checked} row(s) verified before it"
            )
        self.stdout.write(
            f"audit chain intact: {report.rows_checked} row(s) verified ({span}) in {report.duration_seconds:.2f} s"
            + ("" if report.reached_end else " [limit reached]")
        )
