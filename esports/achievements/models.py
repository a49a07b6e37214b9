from django.conf import settings
from django.db import models


class Achievement(models.Model):
    class Tier(models.TextChoices):
        MINOR = "minor"
        MAJOR = "major"

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    tier = models.CharField(max_length=10, choices=Tier.choices, default=Tier.MINOR)

    def __str__(self) -> str:
        return self.name


class UserAchievement(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="achievements")
    achievement = models.ForeignKey(Achievement, on_delete=models.PROTECT, related_name="unlocks")
    unlocked_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)  # the catch-up sweep's change field

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "achievement"], name="user_achievement_unique")]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.achievement_id}"
