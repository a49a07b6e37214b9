from django.db import models
from django.db.models import Q


class DeltaCrownWallet(models.Model):
    profile = models.OneToOneField("profiles.UserProfile", on_delete=models.CASCADE, related_name="wallet")
    created_at = models.DateTimeField(auto_now_add=True)
    # Caches of the wallet's transactions, written only by esports.economy.services in the same database transaction
    # as the transaction row (reconcile_economy proves and repairs them). A reversal un-earns or refunds: it moves the
    # lifetime of the side it cancels, so lifetime_earned - lifetime_spent is always the balance.
    cached_balance = models.BigIntegerField(default=0, db_default=0, editable=False)
    lifetime_earned = models.BigIntegerField(default=0, db_default=0, editable=False)
    lifetime_spent = models.BigIntegerField(default=0, db_default=0, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(cached_balance=models.F("lifetime_earned") - models.F("lifetime_spent")),
                name="wallet_balance_is_earned_minus_spent",
                violation_error_message="A wallet's balance is its lifetime earnings minus its lifetime spending.",
            ),
            # The last word behind debit's InsufficientFunds: no writer (a raw UPDATE, a bulk refresh over a history
            # that overdraws) can leave a wallet below zero.
            models.CheckConstraint(
                condition=Q(cached_balance__gte=0),
                name="wallet_balance_not_negative",
                violation_error_message="A wallet's balance never goes below 0 (debit refuses an overdraft).",
            ),
            models.CheckConstraint(
                condition=Q(lifetime_earned__gte=0) & Q(lifetime_spent__gte=0),
                name="wallet_lifetimes_not_negative",
                violation_error_message="Lifetime earnings and spending are never negative.",
            ),
        ]

    def __str__(self) -> str:
        return f"wallet of {self.profile_id}"


class ImmutableTransactionError(Exception):
    """Money is append-only: a transaction's wallet, amount and time never change and it is never deleted; a
    correction is a new transaction that `reverses` it."""


class DeltaCrownTransactionQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ImmutableTransactionError(
            "DeltaCrownTransaction rows are immutable; append a reversing transaction instead."
        )

    def delete(self):
        raise ImmutableTransactionError(
            "DeltaCrownTransaction rows cannot be deleted; append a reversing transaction instead."
        )


class DeltaCrownTransaction(models.Model):
    # PROTECT: deleting a wallet (or the profile it belongs to) must not take its money history with it; the
    # database trigger refuses the delete anyway, this makes the ORM say so before trying.
    wallet = models.ForeignKey(DeltaCrownWallet, on_delete=models.PROTECT, related_name="transactions")
    amount = models.BigIntegerField(help_text="DeltaCoins; positive earns, negative spends, never zero.")
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Set by a caller that may retry (a prize payout keyed by its result): unique per wallet, so a retry finds the
    # first transaction instead of paying twice.
    # NULL, not "": the uniqueness is partial (only keyed movements), and "" would be one shared key.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    reverses = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reversed_by",
        help_text="The transaction this one cancels (same wallet, opposite amount; once).",
    )

    objects = DeltaCrownTransactionQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~Q(amount=0),
                name="transaction_amount_not_zero",
                violation_error_message="A transaction amount is never 0.",
            ),
            models.UniqueConstraint(
                fields=["wallet", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="transaction_idempotency_key_per_wallet",
            ),
        ]
        indexes = [models.Index(fields=["wallet", "-created_at"], name="transaction_wallet_idx")]

    def __str__(self) -> str:
        return f"{self.amount:+d} ({self.reason})"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ImmutableTransactionError(
                f"DeltaCrownTransaction {self.pk} is immutable; append a reversing transaction instead."
            )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableTransactionError(
            f"DeltaCrownTransaction {self.pk} cannot be deleted; append a reversing transaction instead."
        )
