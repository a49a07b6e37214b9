from django.db import migrations, models
from django.db.models import F, Q

# The caches start equal to the history, set-based (one statement per table, no per-wallet loop). A reversal counts
# on the side it cancels: a reversed earning un-earns, a reversed spend refunds (as activity's derivation counts it).
# Frozen here on purpose; esports.economy.balances holds the live copy that reconcile_economy uses.
FILL_WALLETS = """
WITH sums AS (
    SELECT wallet_id,
           COALESCE(SUM(amount) FILTER (WHERE (amount > 0) = (reverses_id IS NULL)), 0) AS earned,
           COALESCE(-SUM(amount) FILTER (WHERE (amount > 0) <> (reverses_id IS NULL)), 0) AS spent
      FROM economy_deltacrowntransaction
  GROUP BY wallet_id
)
UPDATE economy_deltacrownwallet w
   SET cached_balance = s.earned - s.spent, lifetime_earned = s.earned, lifetime_spent = s.spent
  FROM sums s
 WHERE s.wallet_id = w.id
"""
FILL_PROFILES = """
UPDATE profiles_userprofile p
   SET deltacoin_balance = w.cached_balance, lifetime_earnings = w.lifetime_earned
  FROM economy_deltacrownwallet w
 WHERE w.profile_id = p.user_id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("economy", "0003_transaction_immutable_reverses"),
        ("profiles", "0003_wallet_mirror"),
    ]

    operations = [
        migrations.AddField(
            model_name="deltacrowntransaction",
            name="idempotency_key",
            field=models.CharField(blank=True, max_length=200, null=True),
        ),
        migrations.AddField(
            model_name="deltacrownwallet",
            name="cached_balance",
            field=models.BigIntegerField(default=0, db_default=0, editable=False),
        ),
        migrations.AddField(
            model_name="deltacrownwallet",
            name="lifetime_earned",
            field=models.BigIntegerField(default=0, db_default=0, editable=False),
        ),
        migrations.AddField(
            model_name="deltacrownwallet",
            name="lifetime_spent",
            field=models.BigIntegerField(default=0, db_default=0, editable=False),
        ),
        # Reverse: nothing to undo, the columns go with the fields.
        migrations.RunSQL([FILL_WALLETS, FILL_PROFILES], migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name="deltacrowntransaction",
            constraint=models.UniqueConstraint(
                condition=Q(idempotency_key__isnull=False),
                fields=("wallet", "idempotency_key"),
                name="transaction_idempotency_key_per_wallet",
            ),
        ),
        migrations.AddConstraint(
            model_name="deltacrownwallet",
            constraint=models.CheckConstraint(
                condition=Q(cached_balance=F("lifetime_earned") - F("lifetime_spent")),
                name="wallet_balance_is_earned_minus_spent",
                violation_error_message="A wallet's balance is its lifetime earnings minus its lifetime spending.",
            ),
        ),
        migrations.AddConstraint(
            model_name="deltacrownwallet",
            constraint=models.CheckConstraint(
                condition=Q(lifetime_earned__gte=0) & Q(lifetime_spent__gte=0),
                name="wallet_lifetimes_not_negative",
                violation_error_message="Lifetime earnings and spending are never negative.",
            ),
        ),
    ]
