"""The DeltaCoin economy's proof as one service: `reconcile_economy` prints it, the nightly reconciliation stores it on
its ReconciliationRun (and sets the economy gauges).

Three comparisons against the transactions, the source of truth, each set-based and chunked by wallet id:
(a) "wallet": the wallet's cached balance and lifetimes; (b) "mirror": the profile's copy of them; (c) "ledger": a
transaction with no coin event, and "stats": the stats' total_earned / total_spent. The wallet side
(esports.economy.reconciliation) runs first and, repairing, brings wallet and mirror to the transactions; the ledger
side (stats.economy_check) then compares with transactions the wallets now equal.

Inside a reconciliation run the ledger side is only checked: repairing it is recording the missing events and
recomputing stats from the ledger, which the run's own passes (sources -> ledger, ledger -> stats) do right after
through the same append path and recompute. Repairing it here first would hide from those passes the drift they are
there to report. It runs before them (check_ledger_side), so what it reports is what they find; the wallet side,
which reads and writes only wallets and profile mirrors, then runs beside them (run_economy_pass).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from esports.economy.models import DeltaCrownWallet
from esports.economy.reconciliation import BATCH_SIZE, EconomyReport, describe, reconcile_economy
from monitoring import metrics
from stats.economy_check import LedgerReport, describe_ledger, reconcile_economy_ledger
from stats.models import ReconciliationRun

KINDS = ("wallet", "mirror", "ledger", "stats")
SAMPLE_SIZE = 20  # drifted wallets kept on the run, with both sides of what differed
# The run's columns this pass writes (stats.models.ReconciliationRun).
ECONOMY_FIELDS = (
    "economy_checked",
    "economy_wallets_checked",
    "economy_wallets_drifted",
    "economy_wallets_repaired",
    "economy_drift",
    "economy_sample",
    "economy_unrepairable",
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class EconomyCheck:
    wallets_checked: int
    wallet_side: EconomyReport
    ledger_side: LedgerReport

    @property
    def by_kind(self) -> Counter[str]:
        """kind -> drifted wallets of that kind (a wallet may drift in several)."""
        return self.wallet_side.by_kind + Counter(kind for d in self.ledger_side.drift for kind in d.kinds)

    @property
    def drifted_wallets(self) -> set[int]:
        return {d.wallet_id for d in self.wallet_side.drift} | {d.wallet_id for d in self.ledger_side.drift}

    @property
    def unrepairable(self) -> list[int]:
        return self.wallet_side.unrepairable

    def lines(self) -> list[str]:
        """One line per drifted wallet and side, the wallet side first (what the command prints)."""
        return [describe(d) for d in self.wallet_side.drift] + [describe_ledger(d) for d in self.ledger_side.drift]

    def sample(self, size: int = SAMPLE_SIZE) -> list[dict]:
        """The first `size` drifted wallets (by id), both sides of each comparison that differed."""
        rows: dict[int, dict] = {}
        for w in self.wallet_side.drift:
            rows[w.wallet_id] = {
                "wallet_id": w.wallet_id,
                "user_id": w.user_id,
                "kinds": w.kinds,
                "wallet": _named(("balance", "earned", "spent"), w.cached),
                "mirror": _named(("balance", "earnings"), w.mirror),
                "transactions": _named(("balance", "earned", "spent"), w.expected),
                "repairable": w.repairable,
            }
        for d in self.ledger_side.drift:
            row = rows.setdefault(d.wallet_id, {"wallet_id": d.wallet_id, "user_id": d.user_id, "kinds": []})
            row["kinds"] = [*row["kinds"], *d.kinds]
            row["stats"] = _named(("earned", "spent"), d.stats)
            row["transactions_earned_spent"] = _named(("earned", "spent"), d.expected)
            row["unrecorded_transactions"] = list(d.unrecorded[:10])
        return [rows[wallet_id] for wallet_id in sorted(rows)[:size]]


def _named(names: tuple[str, ...], values: tuple) -> dict[str, int]:
    return {name: int(value) for name, value in zip(names, values, strict=True)}  # SUM() comes back a Decimal


def check_economy(
    *,
    repair_wallets: bool,
    repair_ledger: bool,
    user_id: int | None = None,
    batch_size: int = BATCH_SIZE,
    limit: int | None = None,
) -> EconomyCheck:
    """All three comparisons (one user's wallet with `user_id`); `repair_wallets` sets wallet caches and mirrors to
    the transactions, `repair_ledger` records missing coin events and recomputes stats totals; `limit` stops each
    side after that many drifted wallets."""
    wallet_side = reconcile_economy(user_id=user_id, repair=repair_wallets, batch_size=batch_size, limit=limit)
    ledger_side = reconcile_economy_ledger(user_id=user_id, repair=repair_ledger, batch_size=batch_size, limit=limit)
    return EconomyCheck(count_wallets(user_id), wallet_side, ledger_side)


def count_wallets(user_id: int | None = None) -> int:
    wallets = DeltaCrownWallet.objects.all()
    return (wallets if user_id is None else wallets.filter(profile_id=user_id)).count()


def check_ledger_side(run: ReconciliationRun, *, progress: Progress | None = None) -> LedgerReport:
    """The economy pass's ledger side of a reconciliation run (coin events and stats totals against the
    transactions), checked only. First, before the run's other passes move the ledger or the stats: its findings
    are what they then repair."""
    report = reconcile_economy_ledger(user_id=run.scope_user_id, repair=False)
    (progress or (lambda message: None))(f"economy (ledger side): {len(report.drift)} wallet(s) drifted")
    return report


def run_economy_pass(
    run: ReconciliationRun, ledger_side: LedgerReport, *, progress: Progress | None = None
) -> EconomyCheck:
    """The rest of the economy pass of a reconciliation run: the wallet side (repairing wallet and mirror when the
    run repairs), then the findings of both sides stored on `run` and, for a full run, the economy gauges. The wallet
    side reads and writes only wallets and profile mirrors, which no other pass touches, so it may run beside them."""
    say = progress or (lambda message: None)
    wallet_side = reconcile_economy(user_id=run.scope_user_id, repair=run.fix)
    check = EconomyCheck(count_wallets(run.scope_user_id), wallet_side, ledger_side)
    by_kind = check.by_kind
    repairable_drift = {d.wallet_id for d in check.wallet_side.drift if d.repairable}
    run.economy_checked = True
    run.economy_wallets_checked = check.wallets_checked
    run.economy_wallets_drifted = len(check.drifted_wallets)
    run.economy_wallets_repaired = len(repairable_drift) if run.fix else 0
    run.economy_drift = {kind: by_kind[kind] for kind in KINDS}
    run.economy_sample = check.sample()
    run.economy_unrepairable = check.unrepairable[:SAMPLE_SIZE]
    run.save(update_fields=list(ECONOMY_FIELDS))
    say(
        f"economy: {check.wallets_checked} wallet(s) checked, {run.economy_wallets_drifted} drifted ("
        + ", ".join(f"{kind} {n}" for kind, n in run.economy_drift.items())
        + ")"
        + (f", {run.economy_wallets_repaired} wallet(s) and mirror(s) repaired" if run.fix else "")
    )
    if run.scope == ReconciliationRun.Scope.ALL:  # one user's wallet says nothing about the fleet
        for kind in KINDS:
            metrics.ECONOMY_WALLETS_DRIFTED.labels(kind=kind).set(by_kind[kind])
        metrics.ECONOMY_WALLETS_UNREPAIRABLE.set(len(check.unrepairable))
    return check


def format_economy_report(run: ReconciliationRun) -> list[str]:
    """The economy lines of the run's report (stats.reconcile.format_report)."""
    if not run.economy_checked:
        return ["  economy: not checked"]
    lines = [
        f"  economy: {run.economy_wallets_checked} wallet(s) checked, {run.economy_wallets_drifted} drifted"
        + (f", {run.economy_wallets_repaired} wallet(s) and mirror(s) repaired" if run.fix else "")
    ]
    lines += [f"    {kind}: {n} wallet(s)" for kind, n in run.economy_drift.items() if n]
    if run.economy_unrepairable:
        lines.append(f"    transactions overdraw (not repairable from them): wallets {run.economy_unrepairable}")
    return lines
