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
