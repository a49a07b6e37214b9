"""The win-rate boards' skyline reads each match count's top players (stats.selectors.leaderboards._skyline_sql):
an index per board scope on (scope, matches played desc, win rate desc, profile), including the counters the board
returns (an index-only read), serves both the loose index scan
over the distinct counts and each count's top N in board order. It replaces the (scope, win rate desc, matches played
desc, profile) indexes, which the skyline could not use (it windowed and sorted every row of the scope per request).

Also the rating board's index for a selective minimum of matches (the rating-order walk skips nearly every entry to
find the few players with that many matches: 18 ms at 100k players, twice an unindexed sort).

Built and dropped concurrently: the stats rows are written by every recording transaction.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models
from django.db.models.functions import Cast


def win_ratio():
    # stats.ratios.win_ratio() as of this migration (a migration keeps its own copy of what it builds).
    return Cast(models.F("matches_won"), models.FloatField()) / Cast(models.F("matches_played"), models.FloatField())


RETURNED = ["matches_won", "tournaments_won", "tournaments_runner_up"]


def _levels_index(*scope: str, name: str, include: list[str]) -> models.Index:
    return models.Index(
        *(models.F(column) for column in scope),
        models.F("matches_played").desc(),
        win_ratio().desc(),
        models.F("profile"),
        condition=models.Q(matches_played__gt=0),
        include=include,
        name=name,
    )


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("profiles", "0005_search_trgm"),
        ("stats", "0008_average_placement"),
    ]

    operations = [
        AddIndexConcurrently(
            "userprofilestats", _levels_index(name="stats_lb_win_rate_levels", include=[*RETURNED, "total_earned"])
        ),
        AddIndexConcurrently("usergamestats", _levels_index("game", name="game_stats_lb_wr_levels", include=RETURNED)),
        AddIndexConcurrently(
            "userseasonstats", _levels_index("game", "season", name="season_stats_lb_wr_levels", include=RETURNED)
        ),
        # The rating board behind a selective minimum matches (stats.ratings.models.PlayerRating).
        AddIndexConcurrently(
            "playerrating",
            models.Index(
                "game", "matches_rated", models.F("rating").desc(), "profile", name="rating_lb_min_matches_idx"
            ),
        ),
        RemoveIndexConcurrently("userprofilestats", "stats_lb_win_rate"),
        RemoveIndexConcurrently("usergamestats", "game_stats_lb_win_rate"),
        RemoveIndexConcurrently("userseasonstats", "season_stats_lb_win_rate"),
    ]
