from decimal import Decimal

from django.db import models
from django.db.models import F, Q

from stats.counters import COUNTER_FIELDS
from stats.ratios import average_placement_field, win_ratio
from stats.ratios import decimal_text as _decimal_text
from stats.ratios import percent as _percent


class UserProfileStats(models.Model):
    """Counters derived from the ledger; re-derivable from it at any time (recompute_stats)."""

    # The profile's id is its user's id, so this row's key is the user id too.
    profile = models.OneToOneField(
        "profiles.UserProfile", on_delete=models.CASCADE, primary_key=True, related_name="stats"
    )
    tournaments_registered = models.PositiveIntegerField(default=0)
    tournaments_played = models.PositiveIntegerField(default=0)
    tournaments_completed = models.PositiveIntegerField(default=0)
    tournaments_won = models.PositiveIntegerField(default=0)
    tournaments_runner_up = models.PositiveIntegerField(default=0)
    tournaments_top4 = models.PositiveIntegerField(default=0)
    matches_played = models.PositiveIntegerField(default=0)
    matches_won = models.PositiveIntegerField(default=0)
    matches_lost = models.PositiveIntegerField(default=0)
    total_earned = models.PositiveBigIntegerField(default=0)
    total_spent = models.PositiveBigIntegerField(default=0)
    achievements_count = models.PositiveIntegerField(default=0)
    teams_created = models.PositiveIntegerField(default=0)
    teams_joined = models.PositiveIntegerField(default=0)
    current_teams_count = models.PositiveIntegerField(default=0)
    disputes_filed = models.PositiveIntegerField(default=0, db_default=0)  # private (activity.privacy)
    placements_counted = models.PositiveIntegerField(default=0, db_default=0)
    placements_sum = models.PositiveIntegerField(default=0, db_default=0)
    average_placement = average_placement_field()
    last_activity_at = models.DateTimeField(null=True, blank=True)
    stats_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "user profile stats"
        verbose_name_plural = "user profile stats"
        constraints = [
            models.CheckConstraint(condition=Q(**{f"{name}__gte": 0}), name=f"stats_{name}_non_negative")
            for name in COUNTER_FIELDS
        ]
        indexes = [
            # Leaderboards: each index is the board's whole ORDER BY (stats.selectors.leaderboards), so a top-N
            # read walks N index entries instead of sorting the table.
            models.Index(
                F("tournaments_won").desc(),
                F("tournaments_runner_up").desc(),
                "profile",
                name="stats_lb_titles_tiebreak",
            ),
            models.Index(F("matches_won").desc(), "matches_played", "profile", name="stats_lb_wins_tiebreak"),
            # The win-rate board's skyline (stats.selectors.leaderboards): the distinct match counts (a loose index
            # scan), each count's players in win-rate order.
            models.Index(
                F("matches_played").desc(),
                win_ratio().desc(),
                "profile",
                condition=Q(matches_played__gt=0),
                # What the board returns, so each count's top N is read from the index alone.
                include=["matches_won", "tournaments_won", "tournaments_runner_up", "total_earned"],
                name="stats_lb_win_rate_levels",
            ),
            models.Index(fields=["-total_earned", "profile"], name="stats_lb_total_earned"),
        ]

    def __str__(self) -> str:
        return f"stats of {self.profile_id}"

    @property
    def win_rate(self) -> Decimal:
        """Matches won per match played, in percent (2 decimals); 0 with no match played."""
        return _percent(self.matches_won, self.matches_played)

    @property
    def tournament_win_rate(self) -> Decimal:
        """Titles per tournament played (checked in), in percent; 0 with none played."""
        return _percent(self.tournaments_won, self.tournaments_played)

    @property
    def net_earnings(self) -> Decimal:
        return Decimal(self.total_earned) - Decimal(self.total_spent)

    def stored_average_placement(self) -> Decimal | None:
        """The generated average_placement as loaded; an unsaved row (a user with no stats row yet) has none, and
        asking the database for it would fail."""
        return None if self._state.adding else self.average_placement

    def to_dict(self) -> dict:
        data = {name: getattr(self, name) for name in COUNTER_FIELDS}
        data.update(
            user_id=self.profile_id,
            win_rate=str(self.win_rate),
            tournament_win_rate=str(self.tournament_win_rate),
            average_placement=_decimal_text(self.stored_average_placement()),
            net_earnings=str(self.net_earnings),
            last_activity_at=self.last_activity_at.isoformat() if self.last_activity_at else None,
            stats_updated_at=self.stats_updated_at.isoformat() if self.stats_updated_at else None,
        )
        return data


class ReconciliationRun(models.Model):
    """One reconciliation: sources -> ledger (missing events) and ledger -> stats (drift), with what it repaired.

    Written by stats.reconcile.run_reconciliation whichever entry point started it (command, admin, nightly task).
    """

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Scope(models.TextChoices):
        ALL = "all", "all users"
        USER = "user", "one user"

    started_at = models.DateTimeField(db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    fix = models.BooleanField(
        default=False, help_text="Repair what was found (record missing events, reset drifted stats)."
    )
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.ALL)
    scope_user_id = models.BigIntegerField(null=True, blank=True, help_text="The one user checked (scope 'user').")
    sources_checked = models.BooleanField(default=True, help_text="Whether the sources -> ledger pass ran.")
    trigger = models.CharField(max_length=20, default="command", help_text="command, admin or beat.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING, db_index=True)
    users_checked = models.PositiveIntegerField(default=0)
    users_drifted = models.PositiveIntegerField(default=0)
    users_fixed = models.PositiveIntegerField(default=0)
    missing_events_total = models.PositiveIntegerField(default=0)
    missing_events = models.JSONField(
        default=dict, blank=True, help_text="source label -> event type -> events missing from the ledger."
    )
    poison_rows = models.JSONField(
        default=dict,
        blank=True,
        help_text="source label -> rows that could not be recorded "
        "(set aside as poison rows; the run went on without them).",
    )
    field_drift = models.JSONField(
        default=dict, blank=True, help_text="stats field -> users whose value differed from the ledger."
    )
    drift_sample = models.JSONField(
        default=list, blank=True, help_text="The first drifted users with their differing fields."
    )
    duration_seconds = models.FloatField(default=0.0)
    drift_rate = models.FloatField(default=0.0, help_text="users_drifted / users_checked.")
    error = models.TextField(blank=True)
    # The economy pass (stats.economy_pass): wallets against their transactions.
    economy_checked = models.BooleanField(default=False, help_text="Whether the DeltaCoin economy pass ran.")
    economy_wallets_checked = models.PositiveIntegerField(default=0)
    economy_wallets_drifted = models.PositiveIntegerField(
        default=0, help_text="Wallets differing from their transactions in any of the four kinds."
    )
    economy_wallets_repaired = models.PositiveIntegerField(
        default=0,
        help_text="Wallets whose caches and profile mirror this run set to their transactions. Ledger and stats "
        "gaps are repaired by the run's other passes (missing events, users fixed).",
    )
    economy_drift = models.JSONField(
        default=dict,
        blank=True,
        help_text="kind -> drifted wallets: wallet (caches vs transactions), mirror (profile vs transactions), "
        "ledger (transactions without a coin event), stats (total earned/spent vs transactions).",
    )
    economy_sample = models.JSONField(
        default=list, blank=True, help_text="The first drifted wallets with both sides of what differed."
    )
    economy_unrepairable = models.JSONField(
        default=list,
        blank=True,
        help_text="Wallets whose transactions overdraw (raw SQL only): left as they are, a person must correct them.",
    )

    # The sources -> ledger pass's coverage (stats.nightly_sources): "full" re-derives every source row; "nightly"
    # re-derives the rows the change log names (with their dependents) and one rolling slice of every table.
    sources_mode = models.CharField(
        max_length=10, default="full", help_text="full: every source row; nightly: changed rows + one rolling slice."
    )
    slice_index = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Nightly: the slice re-derived and compared (blocks of ids with block % slice_count == it).",
    )
    slice_count = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Nightly: N, the slices of the rolling passes (all rows and users every N nights).",
    )
    changes_claimed = models.PositiveIntegerField(
        default=0, help_text="Nightly: change-log rows this run took (deleted when a repairing run succeeds)."
    )
    rows_rederived = models.JSONField(
        default=dict,
        blank=True,
        help_text="source label -> {changed, dependents, slice}: rows re-derived and why.",
    )
    # The ledger -> stats pass's coverage (stats.nightly_stats): a nightly run compares the users of the events
    # appended above the last repairing run's watermark, and the users of its rolling slice.
    ledger_high_id = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="The highest ledger id when this run began comparing (all users' runs): the next nightly run "
        "compares the users of every event above it.",
    )
    users_appended = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Nightly: users compared for their events appended since the last repairing run; the others "
        "were the rolling slice's. Empty: every user was compared.",
    )

    class Meta:
        ordering = ("-started_at", "-id")
        permissions = [("run_reconciliation", "Can start a reconciliation run")]

    def __str__(self) -> str:
        return f"reconciliation #{self.pk} ({self.status}, {'repair' if self.fix else 'report only'})"


class StaleStats(models.Model):
    """A user whose stats must be recomputed from the ledger (after backfill, erasure, an admin request...).

    One row per user: marking again only moves `marked_at`, which tells the recompute job that the mark it read has
    been renewed and must survive its clean-up.
    """

    profile = models.OneToOneField("profiles.UserProfile", on_delete=models.CASCADE, primary_key=True, related_name="+")
    marked_at = models.DateTimeField(db_index=True)
    reason = models.CharField(max_length=100, blank=True)

    class Meta:
        verbose_name = "stale stats mark"
        verbose_name_plural = "stale stats marks"

    def __str__(self) -> str:
        return f"stats of {self.profile_id} stale since {self.marked_at:%Y-%m-%d %H:%M:%S} ({self.reason})"


# Per-game and per-season rows: their own module (stats.scoped_models), registered with the app from here.
# The rating projection lives in its own package; its models are registered with the stats app from here.
from stats.ratings.models import (  # noqa: E402, F401
    PlayerRating,
    RatingDraftRating,
    RatingGame,
    RatingHistory,
    RatingReplayMark,
)
from stats.scoped_models import UserGameStats, UserSeasonStats  # noqa: E402, F401
