"""`python manage.py reconcile_economy (--all | --user-id N) [--dry-run] [--batch-size N] [--limit N]`."""

from __future__ import annotations

from argparse import ArgumentTypeError

from django.core.management.base import BaseCommand, CommandError, CommandParser

from esports.economy.reconciliation import BATCH_SIZE, describe, reconcile_economy


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
        "Compare every wallet's cached balance and lifetimes, and the profile's mirror of them, with the wallet's "
        "transactions; report drift per wallet and kind and repair it (wallet and mirror from the transactions) "
        "unless --dry-run. Exits with status 1 when drift remains."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--all", action="store_true", help="check every wallet")
        scope.add_argument("--user-id", type=_positive, default=None, help="check one user's wallet")
        parser.add_argument("--dry-run", action="store_true", help="report only, write nothing")
        parser.add_argument("--batch-size", type=_positive, default=BATCH_SIZE, help="wallet ids per chunk")
        parser.add_argument("--limit", type=_positive, default=None, help="stop after this many drifted wallets")

    def handle(self, *args, **options) -> None:
        repair = not options["dry_run"]
        report = reconcile_economy(
            user_id=options["user_id"], repair=repair, batch_size=options["batch_size"], limit=options["limit"]
        )
        for drift in report.drift:
            self.stdout.write(describe(drift))
        kinds = ", ".join(f"{kind}: {n}" for kind, n in sorted(report.by_kind.items())) or "none"
        self.stdout.write(
            f"{len(report.drift)} drifted wallet(s) ({kinds})" + (" [limit reached]" if report.truncated else "")
        )
        if repair:
            self.stdout.write(
                f"repaired {report.repaired_wallets} wallet(s), {report.repaired_mirrors} profile mirror(s)"
            )
        elif not report.clean:
            raise CommandError("drift found (dry run: nothing repaired)", returncode=1)
