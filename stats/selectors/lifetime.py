"""A player's lifetime stats from the projection, through the per-user cache (stats.cache)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from activity.privacy import ViewerRelation, redact_stats
from esports.teams.models import Team, TeamMembership
from project.compiled_queries import rows_by_id
from stats import cache as stats_cache
from stats.models import UserProfileStats

_STATS = UserProfileStats._meta.db_table
# The player's current teams (active memberships), oldest first, as a JSON list in the stats row's own query: one
# round trip for the whole card. Cached with the stats; a team_joined / team_left recording drops the entry (the
# projector's invalidation of touched users), a team rename shows within STATS_TTL.
_CURRENT_TEAMS = RawSQL(
    "SELECT COALESCE(json_agg(json_build_object('team_id', t.id, 'team', t.name, 'joined_at', m.joined_at) "
    "ORDER BY m.joined_at, t.id), '[]'::json) "
    f"FROM {TeamMembership._meta.db_table} m JOIN {Team._meta.db_table} t ON t.id = m.team_id "
    f"WHERE m.user_id = {_STATS}.profile_id AND m.left_at IS NULL",
    [],
)


def load_stats(user_id: int) -> dict:
    """The user's stats row as a dict, with their current teams, straight from the database (all zeros when the row
    does not exist yet)."""
    found = rows_by_id(_stats_row, user_id)
    if not found:
        return {**UserProfileStats(profile_id=user_id).to_dict(), "current_teams": current_teams(user_id)}
    return {**found[0].to_dict(), "current_teams": list(found[0].current_teams)}


def _stats_row(user_id: int) -> QuerySet:
    # Compiled once (project.compiled_queries): the profile page's uncached path reads it on every request.
    return UserProfileStats.objects.filter(profile_id=user_id).annotate(current_teams=_CURRENT_TEAMS).order_by("pk")[:1]


def current_teams(user_id: int) -> list[dict]:
    """The user's active memberships: [{"team_id", "team", "joined_at" (ISO)}], oldest first."""
    rows = (
        TeamMembership.objects.filter(user_id=user_id, left_at__isnull=True)
        .order_by("joined_at", "team_id")
        .values_list("team_id", "team__name", "joined_at")
    )
    return [{"team_id": t, "team": name, "joined_at": at.isoformat()} for t, name, at in rows]


def cached_stats(user_id: int) -> dict:
    """The user's full stats dict (no privacy applied): cached for stats_cache.STATS_TTL, fresh after any change."""
    return stats_cache.get_or_load(user_id, load_stats)


def lifetime_stats(relation: ViewerRelation) -> dict:
    """The subject's stats as this viewer may see them."""
    return redact_stats(relation, cached_stats(relation.subject_id))
