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
                # amount__isnull=False is not redundant: `NULL > 0` is NULL, and a CHECK passes on NULL.
                condition=(Q(event_type__in=sorted(COIN_EVENTS)) & Q(amount__isnull=False) & Q(amount__gt=0))
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


class BackfillRun(models.Model):
    """One operator-started backfill: which sources, how far each got, and enough state to resume after a crash.

    `progress` holds, per source label, {"total", "done", "events", "upto", "bounds", "rows_per_chunk"}: rows in scope
    (counted at start), rows processed, events created (would be created, for a dry run), the highest primary key in
    scope (rows added later are recorded live), the key-range boundaries of the lanes and the adaptive chunk size.
    `lanes_state` holds, per lane (parallel chains over disjoint key ranges), {"source", "cursor", "seq", "finished",
    "heartbeat"}: the resume cursor and the chunk sequence number. A chunk updates both in the same transaction as the
    events it appends, so a killed worker resumes from the last committed cursor.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    sources = models.JSONField(default=list, help_text="Source labels, in processing order.")
    dry_run = models.BooleanField(default=False)
    batch_size = models.PositiveIntegerField(help_text="Most source rows per chunk (fewer when rows imply many events).")
    lanes = models.PositiveSmallIntegerField(default=1, help_text="Chains of chunks running in parallel, each over its own key range.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.JSONField(default=dict, blank=True)
    lanes_state = models.JSONField(default=list, blank=True, help_text="Per lane: resume cursor and chunk sequence number.")
    current_source = models.CharField(max_length=40, blank=True, help_text="The source the last committed chunk walked.")
    chunks_done = models.PositiveIntegerField(default=0, help_text="Chunks committed, all lanes together.")
    rows_total = models.BigIntegerField(default=0)
    rows_done = models.BigIntegerField(default=0)
    events_created = models.BigIntegerField(default=0, help_text="Events inserted (for a dry run: events that would be).")
    rate = models.FloatField(default=0.0, help_text="Events per second since the start.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last committed chunk (or resume).")
    resumes = models.PositiveIntegerField(default=0, help_text="Times a stalled run was re-enqueued from its cursor.")
    last_error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cancel_requested = models.BooleanField(default=False)

    class Meta:
        ordering = ("-id",)
        constraints = [
            models.CheckConstraint(condition=Q(batch_size__gte=1), name="backfill_batch_size_positive"),
            models.CheckConstraint(condition=Q(lanes__gte=1), name="backfill_lanes_positive"),
        ]

    def __str__(self) -> str:
        kind = "dry run" if self.dry_run else "backfill"
        return f"{kind} #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class SweepWatermark(models.Model):
    """Per source: the catch-up sweep has re-derived every row whose change time is before `watermark`."""

    source = models.CharField(max_length=40, primary_key=True)
    watermark = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)
    last_found = models.PositiveIntegerField(default=0, help_text="Events the last sweep of this source inserted.")

    def __str__(self) -> str:
        return f"{self.source} swept up to {self.watermark:%Y-%m-%d %H:%M:%S}"


class ErasureLog(models.Model):
    """One GDPR erasure (activity.erasure.erase_user): proof that it was done, when, by whom and how much it touched.

    Deliberately holds no link to the tombstone that received the events (that would re-identify them) and no
    personal data: only the erased account's id (the account row stays, scrubbed and deactivated) and counts.
    """

    erased_user_id = models.BigIntegerField(unique=True, help_text="The erased account (erased once).")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+", help_text="Staff member or the player themself; empty if a job.")
    performed_at = models.DateTimeField(default=timezone.now, db_index=True)
    events_rewritten = models.PositiveIntegerField(default=0, help_text="Ledger rows re-pointed to the tombstone.")
    metadata_scrubbed = models.PositiveIntegerField(default=0, help_text="Of those, rows whose metadata was scrubbed.")
    source_rows = models.JSONField(default=dict, blank=True, help_text="Source table -> rows re-pointed or removed.")
    reason = models.CharField(max_length=200, blank=True, help_text="Request reference (ticket id); no personal data.")

    class Meta:
        ordering = ("-performed_at", "-id")

    def __str__(self) -> str:
        return f"erasure of user {self.erased_user_id} at {self.performed_at:%Y-%m-%d %H:%M:%S}"
