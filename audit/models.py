"""The audit trail: one append-only row per thing done to a player's data, chained by SHA-256.

Rows reference people by id only (no foreign key: a deleted or erased user must not cascade into, or block on, an
immutable table) and carry no personal data (audit.redaction runs on every write). The primary key is the row's
position in the chain, handed out under the chain head's lock, so ids are contiguous and a missing id is a deleted
row. UPDATE, DELETE and TRUNCATE are refused by triggers (migration 0001).
"""

from __future__ import annotations

from django.db import models

from audit.event_types import ActorKind, AuditEventType

GENESIS_HASH = "0" * 64


class UserAuditEvent(models.Model):
    id = models.BigIntegerField(primary_key=True, help_text="Position in the chain (1, 2, 3, ... without gaps).")
    occurred_at = models.DateTimeField(db_index=True)
    event_type = models.CharField(max_length=40, choices=AuditEventType.choices)
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices)
    actor_user_id = models.BigIntegerField(null=True, blank=True, help_text="The staff user or the user themself.")
    actor_job = models.CharField(max_length=100, blank=True, help_text='A system actor, e.g. "job:reconcile_stats".')
    subject_user_id = models.BigIntegerField(null=True, blank=True, help_text="Whose data this is about.")
    object_model = models.CharField(max_length=100, blank=True, help_text='Model label, e.g. "profiles.userprofile".')
    object_id = models.CharField(max_length=64, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="Before/after of the changed fields, redacted.")
    request_id = models.CharField(max_length=64, blank=True)
    client_network = models.CharField(max_length=49, blank=True, help_text="Client address truncated: /24 or /48.")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ("-id",)
        indexes = [
            models.Index(fields=["subject_user_id", "id"], name="audit_subject_id"),
            models.Index(fields=["actor_user_id", "id"], name="audit_actor_id"),
            models.Index(fields=["event_type", "id"], name="audit_type_id"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.event_type} subject={self.subject_user_id}"

    def save(self, *args, **kwargs):
        # The one write path computes the chain; a bare save would either fork it or (on an existing row) be refused
        # by the trigger with a less helpful message.
        raise TypeError("audit events are written by audit.services.record_audit_event only")

    def delete(self, *args, **kwargs):
        raise TypeError("audit events cannot be deleted")


class AuditChainHead(models.Model):
    """One row (id 1): the last chained row's id and hash. Locked by every writer, so the chain cannot fork."""

    id = models.SmallIntegerField(primary_key=True, default=1)
    last_id = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="audit_chain_head_single_row")]

    def __str__(self) -> str:
        return f"audit chain head: row {self.last_id}"
