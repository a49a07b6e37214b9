from django.conf import settings
from django.db import models


class UserProfile(models.Model):
    # The user is the primary key, so a profile id *is* a user id: the ledger (keyed by user) and the stats
    # projection (keyed by profile) join without a lookup table.
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="profile")
    display_name = models.CharField(max_length=150, blank=True)
    show_match_history = models.BooleanField(default=True)
    show_tournament_stats = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    def __str__(self) -> str:
        return self.display_name or f"user {self.user_id}"


class Follow(models.Model):
    follower = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="following")
    followee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="followers")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["follower", "followee"], name="follow_unique_pair"),
            models.CheckConstraint(condition=~models.Q(follower=models.F("followee")), name="follow_not_self",
                                   violation_error_message="A user cannot follow themselves."),
        ]
        indexes = [models.Index(fields=["followee", "follower"], name="follow_followee_idx")]

    def __str__(self) -> str:
        return f"{self.follower_id} -> {self.followee_id}"
