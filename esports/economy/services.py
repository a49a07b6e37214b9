"""The one way money moves: credit, debit and reverse a DeltaCoin transaction.

Each call is one database transaction (or joins the caller's): the wallet row is locked, the transaction row is
inserted, and the wallet's cached balance and lifetimes and the profile's mirror of them are updated, so nothing can
observe one without the others. The lock serialises every movement of one wallet, which is what makes the balance
check of `debit` and the idempotency-key lookup race-free; the database's unique constraint on (wallet,
idempotency_key) and the balance = earned - spent check stay behind them as the last word.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, QuerySet

from esports.economy.models import DeltaCrownTransaction, DeltaCrownWallet
from esports.economy.movement_audit import audit_movement
from esports.profiles.models import UserProfile

# One movement above this is a bug or an abuse, not a payout: refused before anything is written.
MAX_AMOUNT = 100_000_000
REASON_MAX_LENGTH = DeltaCrownTransaction._meta.get_field("reason").max_length or 200
KEY_MAX_LENGTH = DeltaCrownTransaction._meta.get_field("idempotency_key").max_length or 200


class EconomyError(Exception):
    """A money movement was refused; nothing was written."""


class InvalidAmount(EconomyError, ValueError):
    pass


class InvalidMovement(EconomyError, ValueError):
    """A reason or idempotency key that cannot be stored as given."""


class AccountUnavailable(EconomyError):
    """The user is deleted, deactivated (erased accounts are) or has no wallet."""


class InsufficientFunds(EconomyError):
    def __init__(self, user_id: int, balance: int, amount: int) -> None:
        super().__init__(f"user {user_id} has {balance} DeltaCoins, cannot pay {amount}")
        self.user_id, self.balance, self.amount = user_id, balance, amount


class IdempotencyConflict(EconomyError):
    """The key was already used on this wallet for a different movement: a caller bug, never silently merged."""


class NotReversible(EconomyError):
    pass


def credit(
    user: AbstractBaseUser | int, amount: int, reason: str, idempotency_key: str | None = None
) -> DeltaCrownTransaction:
    """Add `amount` (> 0) DeltaCoins to the user's wallet; a retry with the same key returns the first transaction."""
    _check_amount(amount)
    return _move(_user_id(user), amount, reason, idempotency_key)


def debit(
    user: AbstractBaseUser | int, amount: int, reason: str, idempotency_key: str | None = None
) -> DeltaCrownTransaction:
    """Take `amount` (> 0) DeltaCoins from the user's wallet; raises InsufficientFunds rather than go below 0."""
    _check_amount(amount)
    return _move(_user_id(user), -amount, reason, idempotency_key)


def reverse(txn: DeltaCrownTransaction | int, reason: str | None = None) -> DeltaCrownTransaction:
    """Cancel a transaction with a new one of the opposite amount linked by `reverses` (once; never a reversal).

    A correction, so it is allowed on a deactivated account; reversing an earning that was already spent raises
    InsufficientFunds (the balance never goes below 0).
    """
    txn_id = txn if isinstance(txn, int) else txn.pk
    if reason is not None:
        _check_text(reason, None)
    with transaction.atomic():
        original = DeltaCrownTransaction.objects.filter(pk=txn_id).first()
        if original is None:
            raise NotReversible(f"transaction {txn_id} does not exist")
        # By wallet id: the wallet may have changed hands (erasure moves it to a tombstone) since it was loaded.
        wallet = _lock_wallet(
            DeltaCrownWallet.objects.filter(pk=original.wallet_id), f"wallet {original.wallet_id}", require_active=False
        )
        if original.reverses_id is not None:
            raise NotReversible(f"transaction {txn_id} is itself a reversal and cannot be reversed")
        already = DeltaCrownTransaction.objects.filter(reverses_id=txn_id).values_list("pk", flat=True).first()
        if already is not None:
            raise NotReversible(f"transaction {txn_id} was already reversed by transaction {already}")
        reason = reason or f"reversal of #{txn_id}: {original.reason}"[:REASON_MAX_LENGTH]
        return _apply(wallet, -original.amount, reason, None, original)


def _move(user_id: int, signed: int, reason: str, key: str | None) -> DeltaCrownTransaction:
    _check_text(reason, key)
    with transaction.atomic():
        wallet = _lock_wallet(
            DeltaCrownWallet.objects.filter(profile_id=user_id), f"user {user_id}", require_active=True
        )
        if key is not None:
            # Under the wallet lock: a concurrent retry with this key waits above and then finds this row here.
            first = DeltaCrownTransaction.objects.filter(wallet=wallet, idempotency_key=key).first()
            if first is not None:
                if first.amount != signed:
                    raise IdempotencyConflict(
                        f"key {key!r} already moved {first.amount:+d} on user {user_id}'s wallet, not {signed:+d}"
                    )
                return first
        return _apply(wallet, signed, reason, key, None)


def _apply(
    wallet: DeltaCrownWallet,
    signed: int,
    reason: str,
    key: str | None,
    reverses: DeltaCrownTransaction | None,
) -> DeltaCrownTransaction:
    """Insert the row and move the caches; the caller holds the wallet lock inside its atomic block."""
    if signed < 0 and wallet.cached_balance < -signed:
        raise InsufficientFunds(wallet.profile_id, wallet.cached_balance, -signed)
    # A reversal counts on the side it cancels (un-earning, refund), as the ledger's derivation does.
    earning_side = (signed > 0) == (reverses is None)
    earned, spent = (signed, 0) if earning_side else (0, -signed)
    txn = DeltaCrownTransaction.objects.create(
        wallet=wallet, amount=signed, reason=reason, idempotency_key=key, reverses=reverses
    )
    DeltaCrownWallet.objects.filter(pk=wallet.pk).update(
        cached_balance=F("cached_balance") + signed,
        lifetime_earned=F("lifetime_earned") + earned,
        lifetime_spent=F("lifetime_spent") + spent,
    )
    # Absolute values from the locked wallet: the mirror is the wallet's, whatever it held before.
    UserProfile.objects.filter(pk=wallet.profile_id).update(
        deltacoin_balance=wallet.cached_balance + signed, lifetime_earnings=wallet.lifetime_earned + earned
    )
    audit_movement(wallet, txn, signed)  # last: the audit chain's lock is then held only until the commit
    return txn


def _lock_wallet(wallets: QuerySet[DeltaCrownWallet], what: str, *, require_active: bool) -> DeltaCrownWallet:
    """Lock and return the one wallet `wallets` selects (its user loaded, to check the account); `what` names it in
    the error when there is none."""
    wallet = wallets.select_for_update(of=("self",)).select_related("profile__user").first()
    if wallet is None:
        raise AccountUnavailable(f"{what} does not exist or has no wallet")
    if require_active and not wallet.profile.user.is_active:
        raise AccountUnavailable(f"user {wallet.profile_id} is deactivated; no money moves on their wallet")
    return wallet


def _user_id(user: AbstractBaseUser | int) -> int:
    if isinstance(user, bool) or not isinstance(user, int | AbstractBaseUser):
        raise AccountUnavailable(f"not a user: {user!r}")
    if isinstance(user, int):
        return user
    if user.pk is None:
        raise AccountUnavailable("the user is not saved (or was deleted)")
    return int(user.pk)


def _check_amount(amount: int) -> None:
    # bool is an int and a float can hide a fraction: only a true int is money.
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount(f"an amount is a whole number of DeltaCoins, not {amount!r}")
    if amount <= 0:
        raise InvalidAmount(f"an amount is positive (credit adds, debit takes away), not {amount}")
    if amount > MAX_AMOUNT:
        raise InvalidAmount(f"{amount} DeltaCoins exceeds the {MAX_AMOUNT} limit of one movement")


def _check_text(reason: str, key: str | None) -> None:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidMovement("a money movement needs a reason")
    if len(reason) > REASON_MAX_LENGTH:
        raise InvalidMovement(f"a reason is at most {REASON_MAX_LENGTH} characters")
    if key is not None and (not isinstance(key, str) or not key or len(key) > KEY_MAX_LENGTH):
        raise InvalidMovement(f"an idempotency key is a non-empty string of at most {KEY_MAX_LENGTH} characters")
