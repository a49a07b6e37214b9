"""The third leg of reconcile_economy: the ledger's coin events and the stats' total_earned / total_spent against the
transactions (esports.economy.reconciliation proves the wallet and the profile mirror; this side needs the ledger
and the projection, so it lives here, above both).

Per chunk of wallet ids, one statement finds the wallets with a transaction the ledger has no event for, or whose
user's stats totals differ from the transactions. Repair goes through the one append path (record_events_for: the
missing events, and their counters, in one transaction) and then, for totals still off, recompute_stats from the
ledger. A transaction committed a moment ago and not yet recorded by the worker shows as a gap until it is; the
repair is idempotent, so recording it here as well changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection

from activity.derivation import TRANSACTION
from activity.recording import record_events_for
from esports.economy.balances import TRANSACTION_SUMS_SQL, wallet_id_bounds
from stats.recompute import recompute_stats

# The wallet-side sums are the economy's own (one side rule for reversals), so both legs compare the same figures.
_LEDGER_DRIFT = f"""
WITH sums AS ({TRANSACTION_SUMS_SQL}), gaps AS (
    SELECT t.wallet_id, ARRAY_AGG(t.id) AS ids
      FROM economy_deltacrowntransaction t
     WHERE t.wallet_id >= %(lo)s AND t.wallet_id < %(hi)s
       AND NOT EXISTS (SELECT 1 FROM activity_useractivity a WHERE a.source_model = %(label)s AND a.source_id = t.id)
  GROUP BY t.wallet_id
)
SELECT w.id, w.profile_id, COALESCE(s.earned, 0), COALESCE(s.spent, 0),
       COALESCE(st.total_earned, 0), COALESCE(st.total_spent, 0), COALESCE(g.ids, '{{}}')
  FROM economy_deltacrownwallet w
  LEFT JOIN sums s ON s.wallet_id = w.id
  LEFT JOIN gaps g ON g.wallet_id = w.id
  LEFT JOIN stats_userprofilestats st ON st.profile_id = w.profile_id
 WHERE w.id >= %(lo)s AND w.id < %(hi)s AND (%(user_id)s::bigint IS NULL OR w.profile_id = %(user_id)s)
   AND (g.ids IS NOT NULL
        OR (COALESCE(st.total_earned, 0), COALESCE(st.total_spent, 0))
           IS DISTINCT FROM (COALESCE(s.earned, 0), COALESCE(s.spent, 0)))
 ORDER BY w.id
"""


@dataclass(frozen=True)
class LedgerDrift:
    wallet_id: int
    user_id: int
    expected: tuple[int, int]  # (earned, spent) from the transactions
    stats: tuple[int, int]  # (total_earned, total_spent) of the user's stats
    unrecorded: tuple[int, ...]  # transactions without a ledger event

    @property
    def kinds(self) -> list[str]:
        return (["ledger"] if self.unrecorded else []) + (["stats"] if self.stats != self.expected else [])


@dataclass
class LedgerReport:
    drift: list[LedgerDrift] = field(default_factory=list)
    events_recorded: int = 0
    stats_recomputed: int = 0


def find_ledger_drift(lo: int, hi: int, user_id: int | None = None) -> list[LedgerDrift]:
    with connection.cursor() as cursor:
        cursor.execute(_LEDGER_DRIFT, {"lo": lo, "hi": hi, "user_id": user_id, "label": TRANSACTION})
        return [LedgerDrift(r[0], r[1], (r[2], r[3]), (r[4], r[5]), tuple(sorted(r[6]))) for r in cursor.fetchall()]


def reconcile_economy_ledger(
    *, user_id: int | None = None, repair: bool = False, batch_size: int = 10_000, limit: int | None = None
) -> LedgerReport:
    """Find (and with `repair`, fix) coin events missing from the ledger and stats totals off the transactions;
    `limit` stops after that many drifted wallets."""
    report = LedgerReport()
    bounds = wallet_id_bounds()
    if bounds is None:
        return report
    for lo in range(bounds[0], bounds[1], batch_size):
        found = find_ledger_drift(lo, min(lo + batch_size, bounds[1]), user_id)
        if limit is not None:
            found = found[: limit - len(report.drift)]
        report.drift.extend(found)
        if repair and found:
            unrecorded = sorted(i for d in found for i in d.unrecorded)
            if unrecorded:
                report.events_recorded += record_events_for(TRANSACTION, unrecorded, origin="reconcile").created
            report.stats_recomputed += recompute_stats(d.user_id for d in found)
        if limit is not None and len(report.drift) >= limit:
            break
    return report


def describe_ledger(drift: LedgerDrift) -> str:
    return (
        f"wallet {drift.wallet_id} (user {drift.user_id}) {'+'.join(drift.kinds)}: "
        f"{len(drift.unrecorded)} transaction(s) without a ledger event, "
        f"stats earned/spent {drift.stats[0]}/{drift.stats[1]}, "
        f"transactions say {drift.expected[0]}/{drift.expected[1]}"
    )
