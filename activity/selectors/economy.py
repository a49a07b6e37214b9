"""A player's DeltaCoins: the wallet's balances and its transaction history, and the ledger's coin events; self and
staff only.

The history is read from the transactions, not the ledger's coin events: the transactions are the source of truth
the wallet's balance is cached from (in the same database transaction), so the page's balance and its rows always
add up, also in the moment before the worker records a movement; and only a transaction carries its reversal link.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import F

from activity.cursors import Page, page_size, paginate
from activity.models import UserActivity
from activity.privacy import ECONOMY_EVENTS, ViewerRelation, require, visible_events
from esports.economy.models import DeltaCrownTransaction, DeltaCrownWallet

DEFAULT_LIMIT = 10
HISTORY_LIMIT = 20
ECONOMY_PRIVATE = "Only the player and staff can see a player's DeltaCoin economy."


@dataclass(frozen=True, slots=True)
class Balances:
    balance: int
    lifetime_earned: int
    lifetime_spent: int


def coin_events(relation: ViewerRelation, *, cursor: str | None = None, limit: int | None = None) -> Page[UserActivity]:
    """One page of coin events (default 10, at most 50); raises NotPermitted for anyone but self and staff."""
    require(relation.can_see_economy, ECONOMY_PRIVATE)
    size = page_size(limit, DEFAULT_LIMIT)
    rows = UserActivity.objects.filter(visible_events(relation), event_type__in=sorted(ECONOMY_EVENTS))
    return paginate(rows, cursor=cursor, limit=size, scope=f"economy:{relation.subject_id}")


def wallet_balances(relation: ViewerRelation) -> tuple[int | None, Balances]:
    """(wallet id, its cached balances); (None, zeros) when the player has no wallet (an erased player's went to the
    tombstone). Raises NotPermitted for anyone but self and staff."""
    require(relation.can_see_economy, ECONOMY_PRIVATE)
    row = (
        DeltaCrownWallet.objects.filter(profile_id=relation.subject_id)
        .values_list("id", "cached_balance", "lifetime_earned", "lifetime_spent")
        .first()
    )
    if row is None:
        return None, Balances(0, 0, 0)
    return row[0], Balances(*row[1:])


def transaction_history(
    relation: ViewerRelation, wallet_id: int | None, *, cursor: str | None = None, limit: int | None = None
) -> Page[DeltaCrownTransaction]:
    """One page of the wallet's transactions, newest first (default 20, at most 50), each with `reverses_id` and
    `reversed_by` (the reversing transaction, if any) loaded in the same query. The cursor is signed for this
    player's history (a cursor of another list or player is a 400). Raises NotPermitted for anyone but self and
    staff."""
    require(relation.can_see_economy, ECONOMY_PRIVATE)
    size = page_size(limit, HISTORY_LIMIT)
    rows = (
        DeltaCrownTransaction.objects.filter(wallet_id=wallet_id)
        if wallet_id is not None
        else DeltaCrownTransaction.objects.none()
    )
    # paginate() pages on (timestamp, id): a transaction's time is its created_at (index (wallet, -created_at)).
    rows = rows.select_related("reversed_by").annotate(timestamp=F("created_at"))
    return paginate(rows, cursor=cursor, limit=size, scope=f"economy-transactions:{relation.subject_id}")
