"""`python manage.py reconcile_user_stats [--fix] [--user-id N] [--skip-sources] [--full]`: the same service as the
nightly task."""

from __future__ import annotations

from argparse import ArgumentTypeError

from django.core.management.base import BaseCommand, CommandError, CommandParser

from project.progress import progress
from stats.reconcile import (
    CHUNK_USERS,
    SOURCE_BATCH,
    ReconciliationAlreadyRunning,
    ReconciliationError,
    format_report,
    progress_lines,
    run_reconciliation,
)


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
        "Check that every user's stats equal their ledger (and that every source row's events are in the ledger); "
        "report drift per field, and repair it with --fix. Exits with status 1 when drift or missing events remain."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fix", action="store_true", help="record missing events and set drifted stats to the ledger's values"
        )
        parser.add_argument(
            "--user-id", type=_positive, default=None, help="check one user's stats only (skips the sources pass)"
        )
        parser.add_argument("--skip-sources", action="store_true", help="skip the sources -> ledger pass")
        parser.add_argument(
            "--full",
            action="store_true",
            help="re-derive every source row (default: the nightly pass - rows changed since the last repairing run, "
            "their dependents and one rolling slice)",
        )
        parser.add_argument(
            "--chunk-users", type=_positive, default=CHUNK_USERS, help="users per locked comparison chunk"
        )
        parser.add_argument(
            "--source-batch", type=_positive, default=SOURCE_BATCH, help="source rows per re-derivation call"
        )

    def handle(
        self,
        *args,
        fix: bool,
        user_id: int | None,
        skip_sources: bool,
        chunk_users: int,
        source_batch: int,
        full: bool = False,
        **options,
    ) -> None:
        mode = "check and repair" if fix else "check only (nothing is written; --fix repairs)"
        verbosity = options["verbosity"]
        if verbosity:
            self.stdout.write(f"Reconciling {'user ' + str(user_id) if user_id else 'all users'}: {mode}")
        try:
            steps = progress_lines(user_id=user_id, skip_sources=skip_sources, full=full, chunk_users=chunk_users)
            with progress(steps, "reconcile", self.stdout, verbosity) as bar:
                run = run_reconciliation(
                    fix=fix,
                    user_id=user_id,
                    skip_sources=skip_sources,
                    trigger="command",
                    progress=lambda line: bar.update(1, note=line),
                    chunk_users=chunk_users,
                    source_batch=source_batch,
                    full=full,
                )
        except (ReconciliationError, ReconciliationAlreadyRunning) as exc:
            raise CommandError(str(exc)) from None
        report = format_report(run)
        clean = (run.users_drifted == 0 or run.users_fixed == run.users_drifted) and (
            fix or run.missing_events_total == 0
        )
        if verbosity or not clean:
            self.stdout.write(self.style.SUCCESS(report) if clean and not run.error else self.style.WARNING(report))
        if not clean:
            raise CommandError(
                "drift or missing events found" + ("" if fix else "; run again with --fix to repair"), returncode=1
            )
