from django.conf import settings
from django.db import models, transaction

from esports.profiles.public_ids import MAX_LENGTH as PUBLIC_ID_MAX_LENGTH
from esports.profiles.public_ids import STORED_REGEX as PUBLIC_ID_REGEX
from esports.profiles.public_ids import audit_public_ids, next_public_id


class UserProfile(models.Model):
    # The user is the primary key, so a profile id *is* a user id: the ledger (keyed by user) and the stats
    # projection (keyed by profile) join without a lookup table.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="profile"
    )
    display_name = models.CharField(max_length=150, blank=True)
    show_match_history = models.BooleanField(default=True)
    show_tournament_stats = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    # DC-YY-NNNNNN, assigned once when the profile is created (or by backfill_public_ids for older profiles) and never
    # changed; nullable only until the backfill has run. A database trigger refuses a new profile without one and
    # any change of an assigned one (migration 0002).
    public_id = models.CharField(max_length=PUBLIC_ID_MAX_LENGTH, unique=True, null=True, blank=True, editable=False)
    # Mirror of the wallet (cached_balance, lifetime_earned), written by esports.economy.services in the same
    # transaction as the wallet: the profile page reads them without a join, reconcile_economy proves them.
    # db_default too: a profile inserted by raw SQL (bulk generators, benchmarks) starts at zero, as a new one is.
    deltacoin_balance = models.BigIntegerField(default=0, db_default=0, editable=False)
    lifetime_earnings = models.BigIntegerField(default=0, db_default=0, editable=False)
    # Set by the platform. Every multiple of 5 reached is a level_up event; when the platform verified the player's
    # identity (KYC) is a private kyc_verified event. Neither is taken back in the ledger if lowered or cleared.
    level = models.PositiveSmallIntegerField(default=0, db_default=0)
    kyc_verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The backfill walks the profiles still without an ID in creation order; the index shrinks as it goes.
            models.Index(
                fields=["created_at", "user"],
                condition=models.Q(public_id__isnull=True),
                name="profile_without_public_id_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(public_id__regex=PUBLIC_ID_REGEX), name="profile_public_id_format"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or f"user {self.user_id}"

    def save(self, *args, **kwargs) -> None:
        # Every single-row creation (the sign-up receiver, the admin, tests) draws its ID in the creating transaction:
        # a rollback returns the number, so the year stays gapless. Bulk paths reserve blocks (services.py).
        if self._state.adding and self.public_id is None:
            with transaction.atomic():
                self.public_id = next_public_id(self.created_at)
                super().save(*args, **kwargs)
                audit_public_ids({self.user_id: self.public_id})
            return
        super().save(*args, **kwargs)


class PublicIDCounter(models.Model):
    """The last public ID number handed out per creation year (see esports/profiles/public_ids.py)."""

    year = models.PositiveSmallIntegerField(primary_key=True)
    last_value = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last_value}"


class Follow(models.Model):
    follower = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="following")
    followee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="followers")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["follower", "followee"], name="follow_unique_pair"),
            models.CheckConstraint(
                condition=~models.Q(follower=models.F("followee")),
                name="follow_not_self",
                violation_error_message="A user cannot follow themselves.",
            ),
        ]
        indexes = [models.Index(fields=["followee", "follower"], name="follow_followee_idx")]

    def __str__(self) -> str:
        return f"{self.follower_id} -> {self.followee_id}"
