from __future__ import annotations

from django.conf import settings
from django.db import connection, models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone
from psycopg import sql

from activity.event_types import COIN_EVENTS, PLACEMENT_AMOUNT_EVENTS, EventType, Visibility
from activity.sql_arrays import int_array


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


# The ledger's unique key's constraint name: activity.append tells a conflict on it from any other error.
IDEMPOTENCY_KEY = "activity_idempotency_key"


class UserActivity(models.Model):
    # The reference to the user is enforced by triggers, not a foreign-key constraint (migration 0015): checked once
    # per INSERT statement, set-based, where the constraint ran a query per inserted row - a fifth of a backfill
    # chunk's insert. Deleting a user the ledger names fails as before, in the database too.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="activities",
        db_index=False,
        db_constraint=False,
    )
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    timestamp = models.DateTimeField(help_text="When it happened at the source.")
    recorded_at = models.DateTimeField(default=timezone.now, help_text="When the ledger learned it.")
    amount = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text="DeltaCoins for coin events; a placement counted in the average placement for tournament_placed.",
    )
    metadata = models.JSONField(default=dict, blank=True)
    source_model = models.CharField(max_length=40)
    source_id = models.BigIntegerField()
    # The n-th event of this type for this user from this source row: 1 for almost everything; corrections that
    # flip an outcome back and forth append seq 2, 3, ... so the idempotency key stays unique and deterministic.
    seq = models.PositiveSmallIntegerField(default=1)
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PUBLIC)
    # The tournament's game and season, for tournament events (null for coins, teams, achievements...): columns, not
    # metadata, so the per-game / per-season projections are recomputed and reconciled by a GROUP BY over an index.
    game = models.CharField(max_length=50, null=True, blank=True)  # noqa: DJ001 - NULL: no game; the index skips it
    season = models.PositiveSmallIntegerField(null=True, blank=True)

    objects = UserActivityQuerySet.as_manager()

    class Meta:
        verbose_name = "user activity"
        verbose_name_plural = "user activities"
        constraints = [
            # The idempotency key. Its leading columns also serve lookups by (source_model, source_id).
            models.UniqueConstraint(
                fields=["source_model", "source_id", "user", "event_type", "seq"], name=IDEMPOTENCY_KEY
            ),
            models.CheckConstraint(
                # amount__isnull=False is not redundant: `NULL > 0` is NULL, and a CHECK passes on NULL.
                condition=(Q(event_type__in=sorted(COIN_EVENTS)) & Q(amount__isnull=False) & Q(amount__gt=0))
                | (Q(event_type__in=sorted(PLACEMENT_AMOUNT_EVENTS)) & (Q(amount__isnull=True) | Q(amount__gt=0)))
                | (~Q(event_type__in=sorted(COIN_EVENTS | PLACEMENT_AMOUNT_EVENTS)) & Q(amount__isnull=True)),
                name="activity_amount_only_on_coin_events",
                violation_error_message="Coin events carry a positive amount, a placement a positive one or none; "
                "other events carry none.",
            ),
            models.CheckConstraint(condition=Q(seq__gte=1), name="activity_seq_positive"),
        ]
        indexes = [
            models.Index(fields=["user", "-timestamp", "-id"], name="activity_user_time_idx"),
            # By type, newest first, covering what the following feed's RECENT_FIRST scan filters and joins on
            # (activity.selectors.feed_sql): its branches read this index only, never the rows they skip.
            models.Index(
                fields=["event_type", "-timestamp", "-id"],
                include=["user", "visibility"],
                name="activity_type_time_cov",
            ),
            models.Index(fields=["user", "event_type"], name="activity_user_type_idx"),
            # Per-game / per-season recompute and reconciliation group a user range by (user, game, season, type):
            # an index-only scan of this partial index, which holds only the tournament events.
            models.Index(
                fields=["user", "game", "season", "event_type"],
                condition=Q(game__isnull=False),
                name="activity_user_game_season_idx",
            ),
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

    `progress` holds, per source label, {"total", "done", "events", "upto", "bounds", "rows_per_chunk", "poison"}: rows
    in scope (counted at start), rows processed, events created (would be created, for a dry run), the highest primary
    key in scope (rows added later are recorded live), the key-range boundaries of the lanes, the adaptive chunk size
    and the rows set aside as poison rows (activity.poison; absent when none). Only activity.backfill.state writes it.
    Each lane (a chain of chunks over its own key range of every source) is a BackfillLane row.
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
    batch_size = models.PositiveIntegerField(
        help_text="Most source rows per chunk (fewer when rows imply many events)."
    )
    lanes = models.PositiveSmallIntegerField(
        default=1, help_text="Chains of chunks running in parallel, each over its own key range."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.JSONField(default=dict, blank=True)
    current_source = models.CharField(
        max_length=40, blank=True, help_text="The source the last committed chunk walked."
    )
    chunks_done = models.PositiveIntegerField(default=0, help_text="Chunks committed, all lanes together.")
    rows_total = models.BigIntegerField(default=0)
    rows_done = models.BigIntegerField(default=0)
    events_created = models.BigIntegerField(
        default=0, help_text="Events inserted (for a dry run: events that would be)."
    )
    rate = models.FloatField(default=0.0, help_text="Events per second since the start.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last committed chunk (or resume).")
    resumes = models.PositiveIntegerField(default=0, help_text="Times a stalled run was re-enqueued from its cursor.")
    last_error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
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


class BackfillLane(models.Model):
    """One lane of a backfill run, in the spirit of Zulip analytics' FillState: where the lane's chain of chunks is
    (source, resume cursor), how much it did, and whether it is over.

    A chunk locks its lane row (SELECT .. FOR UPDATE SKIP LOCKED) for its whole transaction and writes the new cursor
    and counts in the same transaction as the events it appends: a killed worker leaves the lane at its last committed
    chunk, and a second executor of the same lane finds the row locked and does nothing. `chunks_done` is also the
    sequence number the lane's next chunk task carries (a task with another number is a duplicate).
    """

    class Status(models.TextChoices):
        QUEUED = "queued"  # no chunk committed yet
        RUNNING = "running"
        DONE = "done"  # walked its key range of every source
        FAILED = "failed"  # its chunk raised; the run failed with it
        STOPPED = "stopped"  # the run ended (cancelled, or another lane failed) before this lane was done

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    run = models.ForeignKey(BackfillRun, on_delete=models.CASCADE, related_name="lane_rows")
    lane = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    source = models.CharField(max_length=40, help_text="The source the lane walks now (or walked last).")
    cursor = models.BigIntegerField(default=0, help_text="Last committed primary key of `source` in this lane.")
    chunks_done = models.PositiveIntegerField(default=0, help_text="Chunks committed; the next chunk task's number.")
    rows_done = models.BigIntegerField(default=0, help_text="Source rows scanned, all sources together.")
    events_created = models.BigIntegerField(
        default=0, help_text="Events inserted (for a dry run: events that would be)."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(
        default=timezone.now, help_text="Last committed chunk or resume (the stale check)."
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ("run_id", "lane")
        constraints = [models.UniqueConstraint(fields=["run", "lane"], name="backfill_lane_unique")]

    def __str__(self) -> str:
        return f"lane {self.lane} of backfill #{self.run_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class SweepWatermark(models.Model):
    """Per source: the catch-up sweep has re-derived every row whose change time is before `watermark`."""

    source = models.CharField(max_length=40, primary_key=True)
    watermark = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)
    last_found = models.PositiveIntegerField(default=0, help_text="Events the last sweep of this source inserted.")
    # A sweep that hit its per-run row budget stops mid-window at this keyset position (change time, primary key);
    # the next sweep continues after it instead of rescanning the window from its start. Null: no window half done.
    resume_changed_at = models.DateTimeField(null=True, blank=True)
    resume_id = models.BigIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.source} swept up to {self.watermark:%Y-%m-%d %H:%M:%S}"


class PoisonRowQuerySet(models.QuerySet):
    def unresolved(self) -> PoisonRowQuerySet:
        return self.filter(resolved_at__isnull=True)

    def resolve(self, source: str, ids, *, at=None) -> int:
        """Mark the unresolved poison rows of these source rows resolved (they were just recorded, or are gone).

        Raw SQL with one array parameter: every recording calls this with its whole chunk, and `source_id__in`
        compiled and adapted one parameter per id (a tenth of a 10,000-row backfill chunk's client time)."""
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SQL(
                    "UPDATE {t} SET resolved_at = %s WHERE source = %s AND source_id = ANY(%s::bigint[]) "
                    "AND resolved_at IS NULL"
                ).format(t=sql.Identifier(self.model._meta.db_table)),
                [at or timezone.now(), source, int_array(ids)],
            )
            return cursor.rowcount


class PoisonRow(models.Model):
    """A source row that could not be recorded (activity.poison): kept out of the job that met it, retried with
    backoff by the poison retry job, resolved when a recording of it succeeds or the row is gone."""

    source = models.CharField(max_length=40, help_text="Source label, e.g. teams.teammembership.")
    source_id = models.BigIntegerField()
    error_class = models.CharField(max_length=100)
    error = models.TextField(help_text="The last error (truncated).")
    origin = models.CharField(
        max_length=20, help_text="The job that last failed on it: sweep, reconcile, backfill, retry."
    )
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=1)
    next_attempt_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    objects = PoisonRowQuerySet.as_manager()

    class Meta:
        ordering = ("-last_seen", "-id")
        constraints = [models.UniqueConstraint(fields=["source", "source_id"], name="poison_row_source_key")]
        indexes = [
            # The retry job's scan and every recording's resolve probe touch unresolved rows only: keep that index tiny.
            models.Index(fields=["next_attempt_at"], condition=Q(resolved_at__isnull=True), name="poison_row_due_idx"),
            models.Index(
                fields=["source", "source_id"], condition=Q(resolved_at__isnull=True), name="poison_row_open_idx"
            ),
        ]

    def __str__(self) -> str:
        state = "resolved" if self.resolved_at else f"{self.attempts} attempt(s)"
        return f"poison {self.source}:{self.source_id} ({state})"


class ErasureLog(models.Model):
    """One GDPR erasure (activity.erasure.erase_user): proof that it was done, when, by whom and how much it touched.

    Deliberately holds no link to the tombstone that received the events (that would re-identify them) and no
    personal data: only the erased account's id (the account row stays, scrubbed and deactivated) and counts.
    """

    erased_user_id = models.BigIntegerField(unique=True, help_text="The erased account (erased once).")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Staff member or the player themself; empty if a job.",
    )
    performed_at = models.DateTimeField(default=timezone.now, db_index=True)
    events_rewritten = models.PositiveIntegerField(default=0, help_text="Ledger rows re-pointed to the tombstone.")
    metadata_scrubbed = models.PositiveIntegerField(default=0, help_text="Of those, rows whose metadata was scrubbed.")
    source_rows = models.JSONField(default=dict, blank=True, help_text="Source table -> rows re-pointed or removed.")
    reason = models.CharField(max_length=200, blank=True, help_text="Request reference (ticket id); no personal data.")

    class Meta:
        ordering = ("-performed_at", "-id")

    def __str__(self) -> str:
        return f"erasure of user {self.erased_user_id} at {self.performed_at:%Y-%m-%d %H:%M:%S}"


class SourceChange(models.Model):
    """One source row written (inserted, updated or deleted) since the nightly reconciliation last consumed it.

    Written only by database triggers on the source tables (migration 0014), never by application code: so a write
    that sends no signal (QuerySet.update, bulk_create, raw SQL, COPY, a cascade delete) is logged all the same, in
    the writer's own transaction. The nightly reconciliation (stats.nightly_sources) claims the rows it sees,
    re-derives them with their dependents, and deletes them once its run succeeded. `tournament_id` / `team_id` are
    the row's scope (copied from the row, so a deleted row still names the result or the registrations it bore on).
    """

    source_model = models.CharField(max_length=40)
    source_id = models.BigIntegerField()
    tournament_id = models.BigIntegerField(null=True, blank=True)
    team_id = models.BigIntegerField(null=True, blank=True)
    changed_at = models.DateTimeField(db_default=Now())
    # The reconciliation run that took the row (no foreign key: activity does not import stats); null: not yet taken.
    claimed_by = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["claimed_by"], name="source_change_claimed_idx")]

    def __str__(self) -> str:
        return f"{self.source_model}:{self.source_id} changed at {self.changed_at:%Y-%m-%d %H:%M:%S}"
