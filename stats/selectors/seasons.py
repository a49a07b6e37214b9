"""A player's season-by-season table from the per-season projection (stats.UserSeasonStats, issue 15): one row per
season, the games of that season summed (played, W-L, win %, titles, finals, average placement). Aggregate
counters: public like the lifetime stats (DESIGN §7).
One query on the (profile, game, season) key."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet, Sum

from project.compiled_queries import rows_by_id
from stats.ratios import average_placement
from stats.scoped_models import UserSeasonStats


@dataclass(frozen=True, slots=True)
class SeasonRow:
    season: int
    played: int  # matches played (walkovers included, as the projection counts them)
    wins: int
    losses: int
    titles: int
    runner_up: int
    average_placement: Decimal | None  # the mean of the season's placements <= 10 (stats.ratios), None with none

    @property
    def finals(self) -> int:
        """Finals reached: won or lost."""
        return self.titles + self.runner_up

    @property
    def win_rate(self) -> float:
        return round(100 * self.wins / self.played, 2) if self.played else 0.0


def season_table(user_id: int) -> list[SeasonRow]:
    # Compiled once (project.compiled_queries): on the profile page's uncached path, composing this aggregate cost
    # three times what PostgreSQL takes to run it.
    rows = rows_by_id(_season_sums, user_id)
    return [
        SeasonRow(**row)
        for row in rows
        if row["played"] or row["titles"] or row["runner_up"] or row["average_placement"] is not None
    ]


def _season_sums(user_id: int) -> QuerySet:
    return (
        UserSeasonStats.objects.filter(profile_id=user_id)
        .values("season")
        .annotate(
            played=Sum("matches_played"),
            wins=Sum("matches_won"),
            losses=Sum("matches_lost"),
            titles=Sum("tournaments_won"),
            runner_up=Sum("tournaments_runner_up"),
            # From the summed counters, not a mean of the games' means: one definition, weighted by placements.
            average_placement=average_placement(Sum("placements_sum"), Sum("placements_counted")),
        )
        .order_by("season")
    )
