"""How a DeltaCoin transaction reads on the economy page and in the API (one shape for both).

A reversal counts on the side it cancels (as the wallet's lifetimes and the ledger count it): reversing an earning
un-earns it, reversing a spend refunds it.
"""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist

from esports.economy.models import DeltaCrownTransaction


def transaction_row(txn: DeltaCrownTransaction) -> dict:
    """id, created_at, amount (signed), reason, side (earned / spent), title, reverses and reversed_by (ids or None).

    `reversed_by` must have been loaded with select_related (activity.selectors.economy does): no query here.
    """
    try:
        reversed_by: int | None = txn.reversed_by.pk
    except ObjectDoesNotExist:
        reversed_by = None
    coins = abs(txn.amount)
    if txn.reverses_id is None:
        side = "earned" if txn.amount > 0 else "spent"
        title = f"Earned {coins} DeltaCoins" if txn.amount > 0 else f"Spent {coins} DeltaCoins"
    else:
        side = "spent" if txn.amount > 0 else "earned"
        title = f"Refund of {coins} DeltaCoins" if txn.amount > 0 else f"Earning of {coins} DeltaCoins reversed"
    return {
        "id": txn.pk,
        "created_at": txn.created_at,
        "amount": txn.amount,
        "reason": txn.reason,
        "side": side,
        "title": title,
        "reverses": txn.reverses_id,
        "reversed_by": reversed_by,
    }
