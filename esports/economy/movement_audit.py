"""The economy's audit events, built here so each call site is one line inside its transaction."""

from __future__ import annotations

from audit.event_types import AuditEventType
from audit.services import AuditItem, actor_from_context, record_audit_event, record_audit_events
from esports.economy.balances import WalletDrift
from esports.economy.models import DeltaCrownTransaction, DeltaCrownWallet


def audit_movement(wallet: DeltaCrownWallet, txn: DeltaCrownTransaction, signed: int) -> None:
    """wallet_credited / wallet_debited for one movement; `wallet` holds the values from before it."""
    record_audit_event(
        actor=actor_from_context("service:economy", wallet.profile_id),
        event_type=AuditEventType.WALLET_CREDITED if signed > 0 else AuditEventType.WALLET_DEBITED,
        subject_user_id=wallet.profile_id,
        obj=txn,
        changes={
            "amount": signed,
            "reason": txn.reason,
            "reverses": txn.reverses_id,
            "balance": {"before": wallet.cached_balance, "after": wallet.cached_balance + signed},
        },
    )


def audit_repairs(repaired: list[WalletDrift]) -> None:
    """One economy_drift_repaired event per wallet: what the wallet and the mirror held, and what they hold now."""
    record_audit_events(
        actor=actor_from_context("command:reconcile_economy"),
        event_type=AuditEventType.ECONOMY_DRIFT_REPAIRED,
        items=[
            AuditItem(
                d.user_id,
                ("economy.deltacrownwallet", d.wallet_id),
                {
                    "kinds": d.kinds,
                    # int(): the expected sums come back from SQL as Decimal
                    "wallet": {"before": [*map(int, d.cached)], "after": [*map(int, d.expected)]},
                    "mirror": {"before": [*map(int, d.mirror)], "after": [*map(int, d.expected[:2])]},
                },
            )
            for d in repaired
            # A wallet whose transactions overdraw is reported, not repaired (main's WalletDrift.repairable): no event.
            if getattr(d, "repairable", True)
        ],
    )
