"""Disputes of a match's outcome (the platform's moderation; esports.moderation.services is the one write path)."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Dispute(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        UPHELD = "upheld"  # the outcome was flipped
        REJECTED = "rejected"  # the outcome stands

    match = models.ForeignKey("tournaments.Match", on_delete=models.PROTECT, related_name="disputes")
    filed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="disputes_filed")
    reason = models.TextField(max_length=2000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    # The match's state when the dispute was filed (completed or forfeit): what upholding or rejecting restores.
    match_state_before = models.CharField(max_length=20)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            # One open dispute per match: the match is `disputed` until it is resolved.
            models.UniqueConstraint(fields=["match"], condition=Q(status="open"), name="dispute_one_open_per_match"),
            models.CheckConstraint(
                condition=(Q(status="open") & Q(resolved_at__isnull=True))
                | (~Q(status="open") & Q(resolved_at__isnull=False)),
                name="dispute_resolved_at_iff_resolved",
            ),
        ]

    def __str__(self) -> str:
        return f"dispute #{self.pk} of match {self.match_id} ({self.status})"
