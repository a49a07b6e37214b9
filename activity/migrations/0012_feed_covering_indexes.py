"""The following feed's RECENT_FIRST scan (activity.selectors.feed_sql) reads the newest events of each shown type
across all players and keeps a followee's. Two indexes let it read index entries only, never the rows it skips:

* (event_type, timestamp desc, id desc) INCLUDE (user_id, visibility), replacing (event_type, timestamp desc): the
  same leading columns (every reader of the old one is served), the page order's tie-break (no sort per branch) and
  the columns the scan filters and joins on (an index-only scan; the ledger is append-only, so its pages are
  all-visible after autovacuum);
* the same for major-tier rows only (metadata tier 'major'): the default feed shows achievements of the major tier,
  and filtering the type's range by metadata read every minor achievement's row to skip it (~1.5 s for one page at
  100k players). Kept out of the model state (raw SQL) like 0010's expression index: its predicate must stay
  character for character the branch's condition (feed_sql._MAJOR_TIER_ONLY with the tier inlined).

Built concurrently: the ledger is large and written all the time.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("activity", "0011_tournament_placed"),
    ]

    operations = [
        AddIndexConcurrently(
            "useractivity",
            models.Index(
                fields=["event_type", "-timestamp", "-id"],
                include=["user", "visibility"],
                name="activity_type_time_cov",
            ),
        ),
        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS activity_major_tier_time_idx ON activity_useractivity "
            "(event_type, timestamp DESC, id DESC) INCLUDE (user_id, visibility) WHERE (metadata ->> 'tier') = 'major'",
            "DROP INDEX CONCURRENTLY IF EXISTS activity_major_tier_time_idx",
        ),
        RemoveIndexConcurrently("useractivity", "activity_type_time_idx"),
    ]
