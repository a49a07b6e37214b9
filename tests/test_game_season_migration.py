"""Migrations activity 0009 and stats 0006: ledger rows recorded before them get their tournament's game and season,
and every user's per-game and per-season rows are filled from the ledger, so live recording continues on them."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from activity.models import UserActivity
from stats.models import UserGameStats, UserSeasonStats
from tests.factories import TournamentFactory, UserFactory

BEFORE = [("activity", "0008_backfill_lane_rows"), ("stats", "0005_reconciliation_economy")]


def migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)


@pytest.fixture
def before_game_columns(transactional_db):
    migrate(BEFORE)
    yield
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def insert_old_event(user_id: int, event_type: str, source_id: int, metadata: dict) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {UserActivity._meta.db_table} (user_id, event_type, timestamp, recorded_at, metadata, "
            "source_model, source_id, seq, visibility) "
            "VALUES (%s, %s, %s, %s, %s, 'tournaments.match', %s, 1, 'public')",
            [user_id, event_type, timezone.now(), timezone.now(), json.dumps(metadata), source_id],
        )


def test_old_events_get_game_and_season_and_the_scoped_rows_are_filled(before_game_columns):
    player = UserFactory()
    cup = TournamentFactory(game="tennis", season=1999)
    league = TournamentFactory(game="chess", season=None)
    for source_id, (t, event_type) in enumerate(
        [(cup, "match_played"), (cup, "match_won"), (league, "match_played"), (league, "match_lost")], start=1
    ):
        insert_old_event(player.pk, event_type, source_id, {"tournament_id": t.pk, "game": t.game})
    # A tournament deleted since: its events keep the game their metadata recorded, with no season.
    insert_old_event(player.pk, "match_played", 99, {"tournament_id": 10**9, "game": "dota"})
    insert_old_event(player.pk, "team_joined", 100, {"team_id": 1})  # no tournament: no game

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    scoped = sorted(
        UserActivity.objects.filter(user=player).values_list("source_id", "game", "season"), key=lambda r: r[0]
    )
    assert scoped == [
        (1, "tennis", 1999),
        (2, "tennis", 1999),
        (3, "chess", None),
        (4, "chess", None),
        (99, "dota", None),
        (100, None, None),
    ]
    games = {r.game: (r.matches_played, r.matches_won, r.matches_lost) for r in UserGameStats.objects.all()}
    assert games == {"tennis": (1, 1, 0), "chess": (1, 0, 1), "dota": (1, 0, 0)}
    seasons = {(r.game, r.season): (r.matches_played, r.matches_won) for r in UserSeasonStats.objects.all()}
    assert seasons == {("tennis", 1999): (1, 1)}
