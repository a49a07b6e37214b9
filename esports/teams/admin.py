from django.contrib import admin

from audit.admin_mixin import AuditedAdmin
from esports.teams.models import Team, TeamMembership


class TeamMembershipInline(admin.TabularInline):
    model = TeamMembership
    raw_id_fields = ("user",)
    extra = 0


@admin.register(Team)
class TeamAdmin(AuditedAdmin):
    list_display = ("id", "name", "game", "created_by", "created_at")
    raw_id_fields = ("created_by",)
    search_fields = ("name",)
    inlines = [TeamMembershipInline]
    show_full_result_count = False


@admin.register(TeamMembership)
class TeamMembershipAdmin(AuditedAdmin):
    list_display = ("id", "team", "user", "joined_at", "left_at")
    raw_id_fields = ("team", "user")
    show_full_result_count = False
