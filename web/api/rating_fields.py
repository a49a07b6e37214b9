"""What the stats and match endpoints show of the ratings: the serializer of a player's rating in one game, and the
rating change attached to match-history rows. Separate from web/api/ratings.py, which imports the views."""

from __future__ import annotations

from collections.abc import Sequence

from rest_framework import serializers

from stats.ratings.selectors import rating_changes


class RatingSerializer(serializers.Serializer):
    game = serializers.CharField()
    rating = serializers.FloatField(help_text="Elo (start 1500, K 32), from the ledger's completed matches.")
    peak = serializers.FloatField(help_text="Highest rating held, the start included.")
    peak_at = serializers.DateTimeField(allow_null=True, help_text="When the peak was first reached.")
    matches_rated = serializers.IntegerField()


def attach_rating_changes(profile_id: int, events: Sequence) -> None:
    """Set `.rating_change` on match-history rows (ledger events of tournaments.match): one query for the page."""
    changes = rating_changes(profile_id, [e.source_id for e in events])
    for event in events:
        event.rating_change = changes.get(event.source_id)
