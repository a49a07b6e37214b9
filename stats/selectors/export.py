"""GDPR export: the ledger part (activity.selectors.export) plus the player's stats, read fresh from the database."""

from __future__ import annotations

from django.utils import timezone

from activity.privacy import ViewerRelation
from activity.selectors.export import export_activity
from esports.profiles.models import UserProfile
from stats.selectors.lifetime import load_stats


def user_export(relation: ViewerRelation, profile: UserProfile) -> dict:
    """Everything the platform's activity features hold about the player; raises NotPermitted."""
    document = export_activity(relation, profile)  # checks the permission before reading anything else
    document["stats"] = load_stats(profile.pk)
    document["exported_at"] = timezone.now().isoformat()
    return document
