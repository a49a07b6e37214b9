from django.contrib import admin

from audit.admin_mixin import AuditedAdmin
from esports.achievements.models import Achievement, UserAchievement


@admin.register(Achievement)
class AchievementAdmin(AuditedAdmin):
    list_display = ("code", "name", "tier")
    list_filter = ("tier",)
    search_fields = ("code", "name")


@admin.register(UserAchievement)
class UserAchievementAdmin(AuditedAdmin):
    list_display = ("id", "user", "achievement", "unlocked_at")
    raw_id_fields = ("user", "achievement")
    list_filter = ("achievement__tier",)
    show_full_result_count = False
