"""Player search (esports.profiles.search): pg_trgm, and the four indexes the search's four branches use.

Lowercased expressions, because the search compares lowercased text: a btree with text_pattern_ops per name for
prefixes of any length (a trigram index cannot serve a one- or two-character prefix), and a GIN trigram index per
name for partial and misspelled names (`<%`, word similarity). The username index is on auth_user, the table that
holds usernames; it is created here because search is this app's feature. Kept out of the model state (raw SQL):
Django cannot describe an index on another app's table.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEXES = {
    "profile_name_prefix_idx": "profiles_userprofile USING btree (lower(display_name) text_pattern_ops)",
    "profile_name_trgm_idx": "profiles_userprofile USING gin (lower(display_name) gin_trgm_ops)",
    "user_username_prefix_idx": "auth_user USING btree (lower(username) text_pattern_ops)",
    "user_username_trgm_idx": "auth_user USING gin (lower(username) gin_trgm_ops)",
}


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0004_level_kyc"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        TrigramExtension(),
        *(
            migrations.RunSQL(f"CREATE INDEX IF NOT EXISTS {name} ON {target}", f"DROP INDEX IF EXISTS {name}")
            for name, target in INDEXES.items()
        ),
    ]
