"""GDPR export: the ledger part (activity.selectors.export) plus the player's stats, read fresh from the database."""

from __future__ import annotations

from django.utils import timezone

from activity.privacy import ViewerRelation
from activity.selectors.export import export_activity
from audit.event_types import AuditEventType
from audit.export import events_about
from audit.services import actor_from_context, record_audit_event
from esports.profiles.models import UserProfile
from stats.selectors.lifetime import load_stats


def user_export(relation: ViewerRelation, profile: UserProfile) -> dict:
    """Everything the platform's activity features hold about the player; raises NotPermitted."""
    document = export_activity(relation, profile)  # checks the permission before reading anything else
    document["stats"] = load_stats(profile.pk)
    # The export is itself an audited act (by the player or a staff user: the request says who), and the player's
    # copy includes the audit trail about them, this export included.
    record_audit_event(
        actor=actor_from_context("service:gdpr_export", profile.pk),
        event_type=AuditEventType.GDPR_EXPORT,
        subject_user_id=profile.pk,
    )
    document["audit_events"] = events_about(profile.pk)
    document["exported_at"] = timezone.now().isoformat()
    return document
