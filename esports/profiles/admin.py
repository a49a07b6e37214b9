from django.contrib import admin, messages

from audit.admin_mixin import AuditedAdmin
from esports.profiles.models import Follow, PublicIDCounter, UserProfile
from esports.profiles.public_id_backfill import backfill_public_ids
from esports.profiles.public_ids import InvalidPublicID, canonical_public_id, looks_like_public_id


@admin.register(UserProfile)
class UserProfileAdmin(AuditedAdmin):
    list_display = ("user_id", "public_id", "display_name", "show_match_history", "show_tournament_stats", "created_at")
    list_filter = ("show_match_history", "show_tournament_stats")
    search_fields = ("=user__id", "=public_id", "user__username", "display_name")
    readonly_fields = ("public_id",)
    raw_id_fields = ("user",)
    show_full_result_count = False
    actions = ["assign_missing_public_ids"]

    def get_search_results(self, request, queryset, search_term: str):
        # A public ID is one exact, indexed match whatever its letter case; a malformed one matches nobody.
        term = search_term.strip()
        if looks_like_public_id(term):
            try:
                return queryset.filter(public_id=canonical_public_id(term)), False
            except InvalidPublicID:
                return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)

    @admin.action(description="Assign missing public IDs to the selected profiles", permissions=["change"])
    def assign_missing_public_ids(self, request, queryset) -> None:
        # The command's service, restricted to the selection: same order (creation, then id), same batches.
        report = backfill_public_ids(user_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request, f"Assigned {report.assigned} public ID(s); the other selected profiles had one.", messages.SUCCESS
        )


@admin.register(PublicIDCounter)
class PublicIDCounterAdmin(AuditedAdmin):
    """The counters are advanced only by the assignment code: the admin shows them and cannot change them."""

    list_display = ("year", "last_value")
    ordering = ("-year",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Follow)
class FollowAdmin(AuditedAdmin):
    list_display = ("follower", "followee", "created_at")
    raw_id_fields = ("follower", "followee")
    show_full_result_count = False
