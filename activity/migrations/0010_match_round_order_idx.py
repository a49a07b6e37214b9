"""The match lists' order (activity.selectors.match_history): a player's match_played rows by (timestamp, round rank,
id), newest first. A partial expression index, so a page is an index range scan that stops after `limit` rows,
as it was when the lists ordered by (timestamp, id) only; without it every page computes the outcome of all of a
player's matches and sorts them (a 600-match career: ~30 ms instead of ~2 ms).

The CASE must stay character for character activity.rounds.round_rank_case("activity_useractivity.metadata")'s
(tests/test_match_history.py checks the plan uses this index). Built concurrently: the ledger is large and written
all the time.
"""

from django.db import migrations

ROUND_RANK_CASE = (
    "CASE (metadata ->> 'round') WHEN 'ER' THEN 1 WHEN 'R128' THEN 2 WHEN 'R64' THEN 3 WHEN 'R32' THEN 4 "
    "WHEN 'R16' THEN 5 WHEN 'RR' THEN 6 WHEN 'QF' THEN 7 WHEN 'SF' THEN 8 WHEN 'BR' THEN 9 WHEN 'F' THEN 10 ELSE 0 END"
)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("activity", "0009_event_game_season"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS activity_match_round_order_idx ON activity_useractivity "
            f"(user_id, timestamp DESC, ({ROUND_RANK_CASE}) DESC, id DESC) "
            "WHERE event_type = 'match_played' AND source_model = 'tournaments.match' AND seq = 1",
            "DROP INDEX CONCURRENTLY IF EXISTS activity_match_round_order_idx",
        ),
    ]
