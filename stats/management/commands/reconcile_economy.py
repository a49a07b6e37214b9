"""`python manage.py reconcile_economy (--all | --user-id N) [--dry-run] [--batch-size N] [--limit N]`.

Three comparisons, each set-based and chunked by wallet id: (a) each wallet's cached balance and lifetimes with its
transactions, (b) the profile mirror with them, (c) the ledger's coin events and the stats' totals with them.
"""

from __future__ import annotations

from argparse import ArgumentTypeError

from django.core.management.base import BaseCommand, CommandError, CommandParser

from esports.economy.reconciliation import BATCH_SIZE
from stats.economy_pass import check_economy


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
        "Compare every wallet's cached balance and lifetimes, the profile's mirror of them, and the ledger's coin "
        "events and stats totals with the wallet's transactions; report drift per wallet and kind and repair it "
        "(wallet and mirror from the transactions, ledger gaps through the append path) unless --dry-run. "
        "Exits with status 1 when drift remains."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--all", action="store_true", help="check every wallet")
        scope.add_argument("--user-id", type=_positive, default=None, help="check one user's wallet")
        parser.add_argument("--dry-run", action="store_true", help="report only, write nothing")
        parser.add_argument("--batch-size", type=_positive, default=BATCH_SIZE, help="wallet ids per chunk")
        parser.add_argument(
            "--limit", type=_positive, default=None, help="stop each pass after this many drifted wallets"
        )

    def handle(self, *args, **options) -> None:
        repair, user_id = not options["dry_run"], options["user_id"]
        # The service the nightly reconciliation's economy pass calls (stats.economy_pass); here it also repairs the
        # ledger side, which in a reconciliation run the run's own passes do.
        check = check_economy(
            repair_wallets=repair,
            repair_ledger=repair,
            user_id=user_id,
            batch_size=options["batch_size"],
            limit=options["limit"],
        )
        for line in check.lines():
            self.stdout.write(line)
        report, ledger = check.wallet_side, check.ledger_side
        summary = ", ".join(f"{kind}: {n}" for kind, n in sorted(check.by_kind.items())) or "none"
        drifted = len(check.drifted_wallets)
        self.stdout.write(f"{drifted} drifted wallet(s) ({summary})" + (" [limit reached]" if report.truncated else ""))
        if repair:
            self.stdout.write(
                f"repaired {report.repaired_wallets} wallet(s), {report.repaired_mirrors} profile mirror(s); "
                f"recorded {ledger.events_recorded} missing event(s), recomputed {ledger.stats_recomputed} stats row(s)"
            )
        if check.unrepairable:
            self.stdout.write(
                f"{len(check.unrepairable)} wallet(s) whose transactions overdraw, left as they are (correct them "
                f"with a reversing credit): {check.unrepairable[:20]}"
            )
        if not repair and drifted:
            raise CommandError("drift found (dry run: nothing repaired)", returncode=1)
        if check.unrepairable:
            raise CommandError("drift remains: transactions that overdraw cannot be repaired from", returncode=1)
