from django.db import models
from django.db.models import Q


class DeltaCrownWallet(models.Model):
    profile = models.OneToOneField("profiles.UserProfile", on_delete=models.CASCADE, related_name="wallet")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"wallet of {self.profile_id}"


class DeltaCrownTransaction(models.Model):
    wallet = models.ForeignKey(DeltaCrownWallet, on_delete=models.CASCADE, related_name="transactions")
    amount = models.BigIntegerField(help_text="DeltaCoins; positive earns, negative spends, never zero.")
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="transaction_amount_not_zero",
                                   violation_error_message="A transaction amount is never 0."),
        ]
        indexes = [models.Index(fields=["wallet", "-created_at"], name="transaction_wallet_idx")]

    def __str__(self) -> str:
        return f"{self.amount:+d} ({self.reason})"
