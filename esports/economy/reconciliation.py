"""Prove the wallets and the profile mirror against the transactions, chunk by chunk of wallet ids; repair on ask.

The same service behind `reconcile_economy`; each chunk is one comparison statement (and, when repairing, one locked
recomputation of the drifted wallets only), so the cost is a scan of the transactions, not a query per wallet.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction

from esports.economy.balances import WalletDrift, find_drift, refresh_wallets, wallet_id_bounds
from esports.economy.movement_audit import audit_repairs

BATCH_SIZE = 10_000


@dataclass
class EconomyReport:
    wallets_checked_up_to: int | None = None  # the last wallet id range ends here (exclusive)
    drift: list[WalletDrift] = field(default_factory=list)
    by_kind: Counter[str] = field(default_factory=Counter)
    repaired_wallets: int = 0
    repaired_mirrors: int = 0
    truncated: bool = False  # --limit reached: wallets past the last reported one were not examined
    unrepairable: list[int] = field(default_factory=list)  # wallets whose transactions overdraw: left as they are

    @property
    def clean(self) -> bool:
        return not self.drift


def reconcile_economy(
    *, user_id: int | None = None, repair: bool = False, batch_size: int = BATCH_SIZE, limit: int | None = None
) -> EconomyReport:
    """Find (and with `repair`, fix) every wallet whose caches or mirror differ from its transactions.

    `limit` stops after that many drifted wallets (a first look at a large drift without one huge report).
    """
    report = EconomyReport()
    bounds = wallet_id_bounds()
    if bounds is None:
        return report
    for lo in range(bounds[0], bounds[1], batch_size):
        hi = min(lo + batch_size, bounds[1])
        found = find_drift(lo, hi, user_id)
        if limit is not None and len(report.drift) + len(found) >= limit:
            found = found[: limit - len(report.drift)]
            report.truncated = True
            hi = found[-1].wallet_id + 1 if found else hi
        report.drift.extend(found)
        report.by_kind.update(kind for d in found for kind in d.kinds)
        report.unrepairable.extend(d.wallet_id for d in found if not d.repairable)
        if repair and found:
            with transaction.atomic():  # the repair and its audit events commit together
                wallets, mirrors = refresh_wallets(lo, hi, [d.wallet_id for d in found])
                audit_repairs(found)
            report.repaired_wallets += wallets
            report.repaired_mirrors += mirrors
        report.wallets_checked_up_to = hi
        if report.truncated:
            break
    return report


def describe(drift: WalletDrift) -> str:
    """One line per drifted wallet: what the wallet and the profile hold beside what the transactions say."""
    (bal, earned, spent), (e_bal, e_earned, e_spent) = drift.cached, drift.expected
    return (
        f"wallet {drift.wallet_id} (user {drift.user_id}) {'+'.join(drift.kinds)}: "
        f"wallet balance/earned/spent {bal}/{earned}/{spent}, "
        f"profile balance/earnings {drift.mirror[0]}/{drift.mirror[1]}, "
        f"transactions say {e_bal}/{e_earned}/{e_spent}"
        + ("" if drift.repairable else " (the transactions overdraw: not repairable from them)")
    )
