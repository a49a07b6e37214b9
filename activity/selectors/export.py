"""GDPR export, ledger part: who the player is and every one of their events (self and staff only).

stats.selectors.export adds the stats; the web layer serves the result as a JSON download.
"""

from __future__ import annotations

from collections.abc import Iterator

from activity.models import UserActivity
from activity.privacy import ViewerRelation, require, visible_events
from esports.profiles.models import UserProfile

EXPORT_FORBIDDEN = "Only the player and staff can export a player's data."
EXPORT_FORMAT_VERSION = 1
_EVENT_FIELDS = (
    "id",
    "event_type",
    "timestamp",
    "recorded_at",
    "amount",
    "metadata",
    "visibility",
    "source_model",
    "source_id",
    "seq",
)


def export_activity(relation: ViewerRelation, profile: UserProfile) -> dict:
    """The player's account, profile and every event (all visibilities), oldest first; raises NotPermitted."""
    require(relation.can_export, EXPORT_FORBIDDEN)
    user = profile.user
    return {
        "format_version": EXPORT_FORMAT_VERSION,
        "user": {
            "id": user.pk,
            "username": user.get_username(),
            "first_name": user.first_name,
            "last_name": user.last_name,
            "email": user.email,
            "date_joined": user.date_joined.isoformat(),
        },
        "profile": {
            "display_name": profile.display_name,
            "show_match_history": profile.show_match_history,
            "show_tournament_stats": profile.show_tournament_stats,
            "created_at": profile.created_at.isoformat(),
        },
        "events": list(_events(relation)),
    }


def _events(relation: ViewerRelation) -> Iterator[dict]:
    rows = (
        UserActivity.objects.filter(visible_events(relation))
        .order_by("timestamp", "id")
        .values(*_EVENT_FIELDS)
        .iterator(chunk_size=2000)
    )
    for row in rows:
        row["timestamp"] = row["timestamp"].isoformat()
        row["recorded_at"] = row["recorded_at"].isoformat()
        yield row
