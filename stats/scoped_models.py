"""The lifetime counters per game (UserGameStats) and per (game, season) (UserSeasonStats).

Same counters, same mapping (stats.counters), same writers as UserProfileStats: the incremental apply in the
recording transaction (stats.scoped_apply), the recompute (stats.scoped_recompute) and the reconciliation's
ledger -> stats pass (stats.scoped_reconcile). A row exists for every (user, game[, season]) the ledger has an event
of; only tournament events carry a game (coins, teams and achievements count in the lifetime row only), and only
events of a tournament with a season count per season.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q

from stats.counters import COUNTER_FIELDS
from stats.ratios import average_placement_field, win_ratio
from stats.ratios import decimal_text as _decimal_text
from stats.ratios import percent as _percent


class ScopedCounters(models.Model):
    """The lifetime counters (stats.counters.COUNTER_FIELDS), for one scope of a user's events."""

    profile = models.ForeignKey("profiles.UserProfile", on_delete=models.CASCADE, related_name="+")
    game = models.CharField(max_length=50)
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
    disputes_filed = models.PositiveIntegerField(default=0)
    placements_counted = models.PositiveIntegerField(default=0, db_default=0)
    placements_sum = models.PositiveIntegerField(default=0, db_default=0)
    average_placement = average_placement_field()
    stats_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def win_rate(self) -> Decimal:
        return _percent(self.matches_won, self.matches_played)

    @property
    def tournament_win_rate(self) -> Decimal:
        return _percent(self.tournaments_won, self.tournaments_played)

    def stored_average_placement(self) -> Decimal | None:
        """The generated average_placement as loaded; an unsaved row (a user with no stats row yet) has none, and
        asking the database for it would fail."""
        return None if self._state.adding else self.average_placement

    def to_dict(self) -> dict:
        data = {name: getattr(self, name) for name in COUNTER_FIELDS}
        data.update(
            game=self.game,
            win_rate=str(self.win_rate),
            tournament_win_rate=str(self.tournament_win_rate),
            average_placement=_decimal_text(self.stored_average_placement()),
        )
        return data


def _non_negative(prefix: str) -> list[models.CheckConstraint]:
    return [
        models.CheckConstraint(condition=Q(**{f"{name}__gte": 0}), name=f"{prefix}_{name}_non_negative")
        for name in COUNTER_FIELDS
    ]


def _board_indexes(prefix: str, scope: tuple[str, ...]) -> list[models.Index]:
    """Each index is a per-game (per-season) board's whole ORDER BY behind its scope columns
    (stats.selectors.leaderboards): a top-N read walks N entries of one game's (season's) slice."""
    return [
        models.Index(
            *scope, F("tournaments_won").desc(), F("tournaments_runner_up").desc(), "profile", name=f"{prefix}_titles"
        ),
        models.Index(*scope, F("matches_won").desc(), "matches_played", "profile", name=f"{prefix}_wins"),
        # The win-rate board's skyline: the distinct match counts (a loose index scan), each count's players in
        # win-rate order.
        models.Index(
            *scope,
            F("matches_played").desc(),
            win_ratio().desc(),
            "profile",
            condition=Q(matches_played__gt=0),
            # What the board returns, so each count's top N is read from the index alone.
            include=["matches_won", "tournaments_won", "tournaments_runner_up"],
            name=f"{prefix}_wr_levels",
        ),
    ]


class UserGameStats(ScopedCounters):
    class Meta:
        verbose_name = "user game stats"
        verbose_name_plural = "user game stats"
        constraints = [
            models.UniqueConstraint(fields=["profile", "game"], name="game_stats_key"),
            *_non_negative("game_stats"),
        ]
        indexes = _board_indexes("game_stats_lb", ("game",))

    def __str__(self) -> str:
        return f"{self.game} stats of {self.profile_id}"


class UserSeasonStats(ScopedCounters):
    season = models.PositiveSmallIntegerField()

    class Meta:
        verbose_name = "user season stats"
        verbose_name_plural = "user season stats"
        constraints = [
            models.UniqueConstraint(fields=["profile", "game", "season"], name="season_stats_key"),
            *_non_negative("season_stats"),
        ]
        indexes = _board_indexes("season_stats_lb", ("game", "season"))

    def __str__(self) -> str:
        return f"{self.game} {self.season} stats of {self.profile_id}"

    def to_dict(self) -> dict:
        return {**super().to_dict(), "season": self.season}


_COLUMNS = {f.name for f in ScopedCounters._meta.local_fields} - {
    "profile",
    "game",
    "stats_updated_at",
    "average_placement",
}
assert set(COUNTER_FIELDS) == _COLUMNS, "the scoped rows hold exactly the lifetime counters"
