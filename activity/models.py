from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from activity.event_types import COIN_EVENTS, EventType, Visibility


class ImmutableLedgerError(Exception):
    """Raised on any attempt to change or remove a recorded activity."""


class UserActivityQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise ImmutableLedgerError("UserActivity rows are immutable; append a compensating event instead.")

    def delete(self):
        raise ImmutableLedgerError("UserActivity rows are immutable and cannot be deleted.")

    def _sanctioned_rewrite(self, **kwargs) -> int:
        """The one update path, reserved for GDPR erasure (which logs every use)."""
        return super().update(**kwargs)


class UserActivity(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="activities", db_index=False)
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    timestamp = models.DateTimeField(help_text="When it happened at the source.")
    recorded_at = models.DateTimeField(default=timezone.now, help_text="When the ledger learned it.")
    amount = models.PositiveBigIntegerField(null=True, blank=True, help_text="DeltaCoins, for coin events only.")
    metadata = models.JSONField(default=dict, blank=True)
    source_model = models.CharField(max_length=40)
    source_id = models.BigIntegerField()
    # The n-th event of this type for this user from this source row: 1 for almost everything; corrections that
    # flip an outcome back and forth append seq 2, 3, ... so the idempotency key stays unique and deterministic.
    seq = models.PositiveSmallIntegerField(default=1)
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PUBLIC)

    objects = UserActivityQuerySet.as_manager()

    class Meta:
        verbose_name = "user activity"
        verbose_name_plural = "user activities"
        constraints = [
            # The idempotency key. Its leading columns also serve lookups by (source_model, source_id).
            models.UniqueConstraint(fields=["source_model", "source_id", "user", "event_type", "seq"],
                                    name="activity_idempotency_key"),
            models.CheckConstraint(
                condition=(Q(event_type__in=sorted(COIN_EVENTS)) & Q(amount__gt=0))
                | (~Q(event_type__in=sorted(COIN_EVENTS)) & Q(amount__isnull=True)),
                name="activity_amount_only_on_coin_events",
                violation_error_message="Coin events carry a positive amount; other events carry none.",
            ),
            models.CheckConstraint(condition=Q(seq__gte=1), name="activity_seq_positive"),
        ]
        indexes = [
            models.Index(fields=["user", "-timestamp", "-id"], name="activity_user_time_idx"),
            models.Index(fields=["event_type", "-timestamp"], name="activity_type_time_idx"),
            models.Index(fields=["user", "event_type"], name="activity_user_type_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} for user {self.user_id} at {self.timestamp:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ImmutableLedgerError(f"UserActivity {self.pk} is immutable.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableLedgerError(f"UserActivity {self.pk} is immutable and cannot be deleted.")
