import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """The draft of a replay becomes the next fold of RatingHistory (RatingGame.fold + 1) instead of a table of its
    own, so a full replay's switch flips RatingGame.fold instead of copying the whole history under the game's lock."""

    dependencies = [
        ("stats", "0011_nightly_sources_coverage"),
    ]

    operations = [
        migrations.AddField(
            model_name="ratinggame",
            name="fold",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="ratinggame",
            name="span_fold",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="ratinghistory",
            name="fold",
            field=models.PositiveIntegerField(default=0),
        ),
        # The foreign key's own index duplicated rating_history_profile (profile, game)'s leading column, and cost
        # a full replay one index insert per history row.
        migrations.AlterField(
            model_name="ratinghistory",
            name="profile",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="profiles.userprofile",
            ),
        ),
        migrations.RemoveConstraint(
            model_name="ratinghistory",
            name="rating_history_unique",
        ),
        migrations.AddConstraint(
            model_name="ratinghistory",
            constraint=models.UniqueConstraint(fields=("match_id", "profile", "fold"), name="rating_history_unique"),
        ),
        # A replay running under the old storage keeps its draft: its rows become the next fold (every game is at
        # fold 0 here), exactly as far as its stored cursor. Rows of a profile deleted meanwhile are dropped, as the
        # old switch dropped them.
        migrations.RunSQL(
            "INSERT INTO stats_ratinghistory (profile_id, game, key_at, key_ext, key_round, key_num, match_id, at, "
            "before, after, fold) SELECT d.profile_id, d.game, d.key_at, d.key_ext, d.key_round, d.key_num, "
            "d.match_id, d.at, d.before, d.after, 1 FROM stats_ratingdrafthistory d "
            "JOIN stats_ratinggame g ON g.game = d.game AND g.status = 'running' "
            "WHERE EXISTS (SELECT 1 FROM profiles_userprofile p WHERE p.user_id = d.profile_id)",
            migrations.RunSQL.noop,
        ),
        migrations.DeleteModel(
            name="RatingDraftHistory",
        ),
    ]
