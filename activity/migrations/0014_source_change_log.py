"""The source tables' change log (activity.models.SourceChange), filled by triggers on every source table.

One statement-level AFTER trigger per table and operation, with a transition table: a statement writing n rows adds
n log rows in one INSERT .. SELECT (a bulk import pays one trigger call, not n). A profile update is logged only when
a column its derivation reads changes (the wallet mirror updates the profile on every transaction). TRUNCATE is not
logged: the rolling slice of the nightly reconciliation (stats.nightly_sources) finds what it removed.
"""

from django.db import migrations, models
from django.db.models.functions import Now

LOG = "activity_sourcechange"
# (source label, table, primary key column, tournament expression, team expression)
TABLES = (
    ("profiles.userprofile", "profiles_userprofile", "user_id", "NULL", "NULL"),
    ("teams.team", "teams_team", "id", "NULL", "NULL"),
    ("teams.teammembership", "teams_teammembership", "id", "NULL", "r.team_id"),
    ("tournaments.registration", "tournaments_registration", "id", "r.tournament_id", "r.team_id"),
    ("tournaments.match", "tournaments_match", "id", "r.tournament_id", "NULL"),
    ("tournaments.tournamentresult", "tournaments_tournamentresult", "id", "r.tournament_id", "NULL"),
    ("economy.deltacrowntransaction", "economy_deltacrowntransaction", "id", "NULL", "NULL"),
    ("achievements.userachievement", "achievements_userachievement", "id", "NULL", "NULL"),
    ("moderation.dispute", "moderation_dispute", "id", "NULL", "NULL"),
)
# The profile columns its derivation reads (activity.derivation.derive_profile): other updates imply no event.
PROFILE_READS = ("level", "kyc_verified_at", "created_at")


def _forward() -> str:
    statements = []
    for label, table, pk, tournament, team in TABLES:
        fn = f"activity_log_{table}"
        insert = (
            f"INSERT INTO {LOG} (source_model, source_id, tournament_id, team_id) "
            f"SELECT '{label}', r.{pk}, {tournament}, {team} FROM changed_rows r"
        )
        statements.append(
            f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {insert}; RETURN NULL; END $$;"
        )
        update_fn = fn
        if table == "profiles_userprofile":
            update_fn = f"{fn}_update"
            differs = " OR ".join(f"o.{c} IS DISTINCT FROM r.{c}" for c in PROFILE_READS)
            statements.append(
                f"CREATE FUNCTION {update_fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {insert} "
                f"JOIN old_rows o ON o.{pk} = r.{pk} WHERE {differs}; RETURN NULL; END $$;"
            )
        statements += [
            f"CREATE TRIGGER activity_log_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS changed_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {fn}();",
            f"CREATE TRIGGER activity_log_update AFTER UPDATE ON {table} "
            f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {update_fn}();",
            f"CREATE TRIGGER activity_log_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS changed_rows "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {fn}();",
        ]
    return "\n".join(statements)


def _backward() -> str:
    statements = []
    for _label, table, _pk, _tournament, _team in TABLES:
        for op in ("insert", "update", "delete"):
            statements.append(f"DROP TRIGGER IF EXISTS activity_log_{op} ON {table};")
        statements.append(f"DROP FUNCTION IF EXISTS activity_log_{table}();")
    statements.append("DROP FUNCTION IF EXISTS activity_log_profiles_userprofile_update();")
    return "\n".join(statements)


class Migration(migrations.Migration):
    dependencies = [
        ("activity", "0012_feed_covering_indexes"),
        ("profiles", "0005_search_trgm"),
        ("teams", "0001_initial"),
        ("tournaments", "0002_solo_and_team_entry_exclusive"),
        ("economy", "0005_wallet_balance_not_negative"),
        ("achievements", "0002_userachievement_updated_at"),
        ("moderation", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="SourceChange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("source_model", models.CharField(max_length=40)),
                ("source_id", models.BigIntegerField()),
                ("tournament_id", models.BigIntegerField(blank=True, null=True)),
                ("team_id", models.BigIntegerField(blank=True, null=True)),
                ("changed_at", models.DateTimeField(db_default=Now())),
                ("claimed_by", models.BigIntegerField(blank=True, null=True)),
            ],
            options={"indexes": [models.Index(fields=["claimed_by"], name="source_change_claimed_idx")]},
        ),
        migrations.RunSQL(_forward(), _backward()),
    ]
