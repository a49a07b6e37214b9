"""Per-game and per-season stats rows, filled from the ledger for every user with tournament events.

The fill must happen here, not later: once these tables exist, the incremental apply adds deltas to them, and a
compensation of an event recorded before this migration would otherwise start a row below zero. It goes through the
projection's own recompute (stats.scoped_recompute: the one mapping), chunked by user id, each chunk its own
transaction holding the chunk's lifetime rows locked as every writer does.
"""

import django.db.models.deletion
import django.db.models.expressions
import django.db.models.functions.comparison
from django.db import migrations, models, transaction

CHUNK = 5000


def _schema_has_every_counter(connection) -> bool:
    from stats.counters import COUNTER_FIELDS

    with connection.cursor() as cursor:
        cursor.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'stats_userprofilestats'")
        columns = {row[0] for row in cursor.fetchall()}
    return set(COUNTER_FIELDS) <= columns


def fill_from_ledger(apps, schema_editor) -> None:
    from stats.rows import lock_stats_rows
    from stats.scoped_recompute import recompute_scoped

    connection = schema_editor.connection
    if not _schema_has_every_counter(connection):
        # The code is newer than this schema (counters added by a later migration, e.g. stats 0008): the recompute
        # would write columns that do not exist yet. That later migration runs this fill once they do.
        return
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT user_id FROM profiles_userprofile WHERE user_id > %s ORDER BY user_id LIMIT %s", [last, CHUNK]
            )
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return
        with transaction.atomic(using=connection.alias):
            lock_stats_rows(ids)
            recompute_scoped(ids)
        last = ids[-1]


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0003_wallet_mirror"),
        ("stats", "0005_reconciliation_economy"),
        ("activity", "0009_event_game_season"),
    ]
    atomic = False  # the fill commits chunk by chunk

    operations = [
        migrations.CreateModel(
            name="UserGameStats",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("game", models.CharField(max_length=50)),
                ("tournaments_registered", models.PositiveIntegerField(default=0)),
                ("tournaments_played", models.PositiveIntegerField(default=0)),
                ("tournaments_completed", models.PositiveIntegerField(default=0)),
                ("tournaments_won", models.PositiveIntegerField(default=0)),
                ("tournaments_runner_up", models.PositiveIntegerField(default=0)),
                ("tournaments_top4", models.PositiveIntegerField(default=0)),
                ("matches_played", models.PositiveIntegerField(default=0)),
                ("matches_won", models.PositiveIntegerField(default=0)),
                ("matches_lost", models.PositiveIntegerField(default=0)),
                ("total_earned", models.PositiveBigIntegerField(default=0)),
                ("total_spent", models.PositiveBigIntegerField(default=0)),
                ("achievements_count", models.PositiveIntegerField(default=0)),
                ("teams_created", models.PositiveIntegerField(default=0)),
                ("teams_joined", models.PositiveIntegerField(default=0)),
                ("current_teams_count", models.PositiveIntegerField(default=0)),
                ("stats_updated_at", models.DateTimeField(blank=True, null=True)),
                (
                    "profile",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="profiles.userprofile"
                    ),
                ),
            ],
            options={
                "verbose_name": "user game stats",
                "verbose_name_plural": "user game stats",
                "indexes": [
                    models.Index(
                        models.F("game"),
                        models.OrderBy(models.F("tournaments_won"), descending=True),
                        models.OrderBy(models.F("tournaments_runner_up"), descending=True),
                        models.F("profile"),
                        name="game_stats_lb_titles",
                    ),
                    models.Index(
                        models.F("game"),
                        models.OrderBy(models.F("matches_won"), descending=True),
                        models.F("matches_played"),
                        models.F("profile"),
                        name="game_stats_lb_wins",
                    ),
                    models.Index(
                        models.F("game"),
                        models.OrderBy(
                            django.db.models.expressions.CombinedExpression(
                                django.db.models.functions.comparison.Cast("matches_won", models.FloatField()),
                                "/",
                                django.db.models.functions.comparison.Cast("matches_played", models.FloatField()),
                            ),
                            descending=True,
                        ),
                        models.OrderBy(models.F("matches_played"), descending=True),
                        models.F("profile"),
                        condition=models.Q(("matches_played__gt", 0)),
                        name="game_stats_lb_win_rate",
                    ),
                ],
                "constraints": [
                    models.UniqueConstraint(fields=("profile", "game"), name="game_stats_key"),
                    models.CheckConstraint(
                        condition=models.Q(("tournaments_registered__gte", 0)),
                        name="game_stats_tournaments_registered_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("tournaments_played__gte", 0)),
                        name="game_stats_tournaments_played_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("tournaments_completed__gte", 0)),
                        name="game_stats_tournaments_completed_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("tournaments_won__gte", 0)), name="game_stats_tournaments_won_non_negative"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("tournaments_runner_up__gte", 0)),
                        name="game_stats_tournaments_runner_up_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("tournaments_top4__gte", 0)),
                        name="game_stats_tournaments_top4_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("matches_played__gte", 0)), name="game_stats_matches_played_non_negative"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("matches_won__gte", 0)), name="game_stats_matches_won_non_negative"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("matches_lost__gte", 0)), name="game_stats_matches_lost_non_negative"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("total_earned__gte", 0)), name="game_stats_total_earned_non_negative"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("total_spent__gte", 0)), name="game_stats_total_spent_non_negative"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("achievements_count__gte", 0)),
                        name="game_stats_achievements_count_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("teams_created__gte", 0)), name="game_stats_teams_created_non_negative"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("teams_joined__gte", 0)), name="game_stats_teams_joined_non_negative"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("current_teams_count__gte", 0)),
                        name="game_stats_current_teams_count_non_negative",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="UserSeasonStats",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("game", models.CharField(max_length=50)),
                ("tournaments_registered", models.PositiveIntegerField(default=0)),
                ("tournaments_played", models.PositiveIntegerField(default=0)),
                ("tournaments_completed", models.PositiveIntegerField(default=0)),
                ("tournaments_won", models.PositiveIntegerField(default=0)),
                ("tournaments_runner_up", models.PositiveIntegerField(default=0)),
                ("tournaments_top4", models.PositiveIntegerField(default=0)),
                ("matches_played", models.PositiveIntegerField(default=0)),
                ("matches_won", models.PositiveIntegerField(default=0)),
                ("matches_lost", models.PositiveIntegerField(default=0)),
                ("total_earned", models.PositiveBigIntegerField(default=0)),
                ("total_spent", models.PositiveBigIntegerField(default=0)),
                ("achievements_count", models.PositiveIntegerField(default=0)),
                ("teams_created", models.PositiveIntegerField(default=0)),
                ("teams_joined", models.PositiveIntegerField(default=0)),
                ("current_teams_count", models.PositiveIntegerField(default=0)),
                ("stats_updated_at", models.DateTimeField(blank=True, null=True)),
                ("season", models.PositiveSmallIntegerField()),
                (
                    "profile",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="profiles.userprofile"
                    ),
                ),
            ],
            options={
                "verbose_name": "user season stats",
                "verbose_name_plural": "user season stats",
                "indexes": [
                    models.Index(
                        models.F("game"),
                        models.F("season"),
                        models.OrderBy(models.F("tournaments_won"), descending=True),
                        models.OrderBy(models.F("tournaments_runner_up"), descending=True),
                        models.F("profile"),
                        name="season_stats_lb_titles",
                    ),
                    models.Index(
                        models.F("game"),
                        models.F("season"),
                        models.OrderBy(models.F("matches_won"), descending=True),
                        models.F("matches_played"),
                        models.F("profile"),
                        name="season_stats_lb_wins",
                    ),
                    models.Index(
                        models.F("game"),
                        models.F("season"),
                        models.OrderBy(
                            django.db.models.expressions.CombinedExpression(
                                django.db.models.functions.comparison.Cast("matches_won", models.FloatField()),
                                "/",
                                django.db.models.functions.comparison.Cast("matches_played", models.FloatField()),
                            ),
                            descending=True,
                        ),
                        models.OrderBy(models.F("matches_played"), descending=True),
                        models.F("profile"),
                        condition=models.Q(("matches_played__gt", 0)),
                        name="season_stats_lb_win_rate",
                    ),
                ],
                "constraints": [
                    models.UniqueConstraint(fields=("profile", "game", "season"), name="season_stats_key"),
                    models.CheckConstraint(
                        condition=models.Q(("tournaments_registered__gte", 0)),
                        name="season_stats_tournaments_registered_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("tournaments_played__gte", 0)),
                        name="season_stats_tournaments_played_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("tournaments_completed__gte", 0)),
                        name="season_stats_tournaments_completed_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("tournaments_won__gte", 0)),
                        name="season_stats_tournaments_won_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("tournaments_runner_up__gte", 0)),
                        name="season_stats_tournaments_runner_up_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("tournaments_top4__gte", 0)),
                        name="season_stats_tournaments_top4_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("matches_played__gte", 0)), name="season_stats_matches_played_non_negative"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("matches_won__gte", 0)), name="season_stats_matches_won_non_negative"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("matches_lost__gte", 0)), name="season_stats_matches_lost_non_negative"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("total_earned__gte", 0)), name="season_stats_total_earned_non_negative"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("total_spent__gte", 0)), name="season_stats_total_spent_non_negative"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("achievements_count__gte", 0)),
                        name="season_stats_achievements_count_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("teams_created__gte", 0)), name="season_stats_teams_created_non_negative"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("teams_joined__gte", 0)), name="season_stats_teams_joined_non_negative"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("current_teams_count__gte", 0)),
                        name="season_stats_current_teams_count_non_negative",
                    ),
                ],
            },
        ),
        # disputes_filed (issue 15 item 3), on every stats row
        migrations.AddField(
            model_name="usergamestats",
            name="disputes_filed",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="userprofilestats",
            name="disputes_filed",
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="userseasonstats",
            name="disputes_filed",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddConstraint(
            model_name="usergamestats",
            constraint=models.CheckConstraint(
                condition=models.Q(("disputes_filed__gte", 0)), name="game_stats_disputes_filed_non_negative"
            ),
        ),
        migrations.AddConstraint(
            model_name="userprofilestats",
            constraint=models.CheckConstraint(
                condition=models.Q(("disputes_filed__gte", 0)), name="stats_disputes_filed_non_negative"
            ),
        ),
        migrations.AddConstraint(
            model_name="userseasonstats",
            constraint=models.CheckConstraint(
                condition=models.Q(("disputes_filed__gte", 0)), name="season_stats_disputes_filed_non_negative"
            ),
        ),
        migrations.RunPython(fill_from_ledger, migrations.RunPython.noop, elidable=True),
    ]
