"""A player's lifetime stats from the projection, through the per-user cache (stats.cache)."""

from __future__ import annotations

from activity.privacy import ViewerRelation, redact_stats
from stats import cache as stats_cache
from stats.models import UserProfileStats


def load_stats(user_id: int) -> dict:
    """The user's stats row as a dict, straight from the database (all zeros when the row does not exist yet)."""
    row = UserProfileStats.objects.filter(profile_id=user_id).first()
    return (row or UserProfileStats(profile_id=user_id)).to_dict()


def cached_stats(user_id: int) -> dict:
    """The user's full stats dict (no privacy applied): cached for stats_cache.STATS_TTL, fresh after any change."""
    return stats_cache.get_or_load(user_id, load_stats)


def lifetime_stats(relation: ViewerRelation) -> dict:
    """The subject's stats as this viewer may see them."""
    return redact_stats(relation, cached_stats(relation.subject_id))
