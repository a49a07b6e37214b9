from django.contrib import admin

from esports.profiles.models import Follow, UserProfile


@admin.register(UserProfile)
class UserProfileAdmin(admin.ModelAdmin):
    list_display = ("user_id", "display_name", "show_match_history", "show_tournament_stats", "created_at")
    list_filter = ("show_match_history", "show_tournament_stats")
    search_fields = ("=user__id", "user__username", "display_name")
    raw_id_fields = ("user",)
    show_full_result_count = False


@admin.register(Follow)
class FollowAdmin(admin.ModelAdmin):
    list_display = ("follower", "followee", "created_at")
    raw_id_fields = ("follower", "followee")
    show_full_result_count = False
