"""Economy summary: the wallet's balance and lifetimes and one page of its transaction history; self and staff only."""

from __future__ import annotations

from dataclasses import dataclass

from activity.cursors import Page
from activity.privacy import ViewerRelation, require
from activity.selectors.economy import ECONOMY_PRIVATE, Balances, transaction_history, wallet_balances
from esports.economy.models import DeltaCrownTransaction


@dataclass(frozen=True, slots=True)
class EconomySummary:
    balances: Balances
    history: Page[DeltaCrownTransaction]


def economy_summary(relation: ViewerRelation, *, cursor: str | None = None, limit: int | None = None) -> EconomySummary:
    """Raises NotPermitted for anyone but self and staff (checked before anything is read), InvalidCursorError or
    InvalidPageSizeError on a bad cursor or limit (HTTP 400)."""
    require(relation.can_see_economy, ECONOMY_PRIVATE)
    wallet_id, balances = wallet_balances(relation)
    history = transaction_history(relation, wallet_id, cursor=cursor, limit=limit)
    return EconomySummary(balances=balances, history=history)
