"""The search's trigram indexes without GIN's pending list (fastupdate off).

With fastupdate on, new and changed names wait in an unsorted pending list (up to gin_pending_list_limit, 4 MB)
until a vacuum merges them, and every search scans that list whole: at 100k players, after a rewrite of the names,
165 pending pages made a full-name search take 7 ms in its infix branch and 11 ms in its fuzzy one. Names change
rarely and are searched often: each write updates the index itself instead. Turning the option off does not merge
what is already pending, so the migration does that too.
"""

from django.db import migrations

INDEXES = ("profile_name_trgm_idx", "user_username_trgm_idx")


class Migration(migrations.Migration):
    dependencies = [("profiles", "0005_search_trgm")]

    operations = [
        migrations.RunSQL(
            [f"ALTER INDEX {name} SET (fastupdate = off)" for name in INDEXES]
            + [f"SELECT gin_clean_pending_list('{name}'::regclass)" for name in INDEXES],
            [f"ALTER INDEX {name} RESET (fastupdate)" for name in INDEXES],
        )
    ]
