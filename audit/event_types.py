"""What an audit event can describe. One list: the model's choices, the admin filter and the export read it."""

from __future__ import annotations

from django.db import models


class AuditEventType(models.TextChoices):
    PUBLIC_ID_ASSIGNED = "public_id_assigned"
    WALLET_CREDITED = "wallet_credited"
    WALLET_DEBITED = "wallet_debited"
    ECONOMY_DRIFT_REPAIRED = "economy_drift_repaired"
    STATS_RECOMPUTED = "stats_recomputed"
    STATS_DRIFT_REPAIRED = "stats_drift_repaired"
    BACKFILL_STARTED = "backfill_started"
    BACKFILL_CANCELLED = "backfill_cancelled"
    BACKFILL_FINISHED = "backfill_finished"
    RECONCILIATION_RUN = "reconciliation_run"
    GDPR_EXPORT = "gdpr_export"
    GDPR_ERASURE = "gdpr_erasure"
    PRIVACY_SETTINGS_CHANGED = "privacy_settings_changed"
    ADMIN_CHANGE = "admin_change"
    STAFF_LOGIN = "staff_login"


class ActorKind(models.TextChoices):
    STAFF = "staff"  # a staff user acting on someone's data (admin, staff API)
    USER = "user"  # the user themself (their own privacy settings, their own export)
    SYSTEM = "system"  # a beat job, a task or a management command, named in actor_job
