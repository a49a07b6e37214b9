"""Events carry their tournament's game and season as columns (the per-game / per-season projections' keys).

Existing tournament events get them from their tournament (metadata `tournament_id`), set-based and chunked by id
range, each chunk its own transaction (the migration is not atomic), before the partial index is built over them.
An event whose tournament is gone keeps the game its metadata recorded, with no season.
"""

from django.conf import settings
from django.db import migrations, models, transaction

CHUNK = 50_000

_FILL_SQL = """
UPDATE activity_useractivity AS a SET
    game = COALESCE(
        (SELECT NULLIF(t.game, '') FROM tournaments_tournament t WHERE t.id = (a.metadata ->> 'tournament_id')::bigint),
        NULLIF(a.metadata ->> 'game', '')
    ),
    season = (
        SELECT CASE WHEN NULLIF(t.game, '') IS NOT NULL THEN t.season END FROM tournaments_tournament t
        WHERE t.id = (a.metadata ->> 'tournament_id')::bigint
    )
WHERE a.id > %s AND a.id <= %s AND a.game IS NULL AND a.metadata ? 'tournament_id'
"""


def fill_game_and_season(apps, schema_editor) -> None:
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM activity_useractivity")
        top = cursor.fetchone()[0]
    for lo in range(0, top, CHUNK):
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(_FILL_SQL, [lo, lo + CHUNK])


class Migration(migrations.Migration):
    atomic = False  # each chunk of the fill commits on its own: no table-long transaction on a big ledger

    dependencies = [
        ("activity", "0008_backfill_lane_rows"),
        ("tournaments", "0002_solo_and_team_entry_exclusive"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The event types of wave 2 (level_up, kyc_verified) in the field's choices.
        migrations.AlterField(
            model_name="useractivity",
            name="event_type",
            field=models.CharField(
                choices=[
                    ("tournament_registered", "Tournament Registered"),
                    ("tournament_joined", "Tournament Joined"),
                    ("tournament_completed", "Tournament Completed"),
                    ("tournament_won", "Tournament Won"),
                    ("tournament_runner_up", "Tournament Runner Up"),
                    ("tournament_top4", "Tournament Top4"),
                    ("match_played", "Match Played"),
                    ("match_won", "Match Won"),
                    ("match_lost", "Match Lost"),
                    ("coins_earned", "Coins Earned"),
                    ("coins_spent", "Coins Spent"),
                    ("achievement_unlocked", "Achievement Unlocked"),
                    ("team_created", "Team Created"),
                    ("team_joined", "Team Joined"),
                    ("team_left", "Team Left"),
                    ("profile_created", "Profile Created"),
                    ("level_up", "Level Up"),
                    ("kyc_verified", "Kyc Verified"),
                    ("dispute_filed", "Dispute Filed"),
                    ("match_played_reversed", "Match Played Reversed"),
                    ("match_won_reversed", "Match Won Reversed"),
                    ("match_lost_reversed", "Match Lost Reversed"),
                    ("tournament_won_reversed", "Tournament Won Reversed"),
                    ("tournament_runner_up_reversed", "Tournament Runner Up Reversed"),
                    ("tournament_top4_reversed", "Tournament Top4 Reversed"),
                    ("tournament_registered_reversed", "Tournament Registered Reversed"),
                    ("tournament_joined_reversed", "Tournament Joined Reversed"),
                    ("tournament_completed_reversed", "Tournament Completed Reversed"),
                    ("coins_earned_reversed", "Coins Earned Reversed"),
                    ("coins_spent_reversed", "Coins Spent Reversed"),
                    ("achievement_unlocked_reversed", "Achievement Unlocked Reversed"),
                    ("team_created_reversed", "Team Created Reversed"),
                    ("team_joined_reversed", "Team Joined Reversed"),
                    ("team_left_reversed", "Team Left Reversed"),
                    ("dispute_filed_reversed", "Dispute Filed Reversed"),
                ],
                max_length=40,
            ),
        ),
        migrations.AddField(
            model_name="useractivity",
            name="game",
            field=models.CharField(blank=True, max_length=50, null=True),
        ),
        migrations.AddField(
            model_name="useractivity",
            name="season",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(fill_game_and_season, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="useractivity",
            index=models.Index(
                condition=models.Q(("game__isnull", False)),
                fields=["user", "game", "season", "event_type"],
                name="activity_user_game_season_idx",
            ),
        ),
    ]
