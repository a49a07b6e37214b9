from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Team(models.Model):
    name = models.CharField(max_length=100)
    game = models.CharField(max_length=50, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="teams_created")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    def __str__(self) -> str:
        return self.name


class TeamMembership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships")
    joined_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "user"], condition=Q(left_at__isnull=True), name="membership_one_active"
            ),
            models.CheckConstraint(
                condition=Q(left_at__isnull=True) | Q(left_at__gte=F("joined_at")),
                name="membership_left_after_joined",
                violation_error_message="A member cannot leave before joining.",
            ),
        ]
        indexes = [
            models.Index(fields=["team", "joined_at"], name="membership_team_joined_idx"),
            models.Index(fields=["user"], name="membership_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.team_id}"
