from django.contrib import admin

from audit.admin_mixin import AuditedAdmin
from esports.tournaments.models import Match, Registration, Tournament, TournamentResult


@admin.register(Tournament)
class TournamentAdmin(AuditedAdmin):
    list_display = ("id", "name", "game", "season", "status", "starts_at")
    list_filter = ("status", "game", "season")
    search_fields = ("name", "=external_id")
    show_full_result_count = False


@admin.register(Registration)
class RegistrationAdmin(AuditedAdmin):
    list_display = ("id", "tournament", "user", "team", "status", "checked_in", "created_at")
    list_filter = ("status", "checked_in")
    list_select_related = ("tournament", "user", "team")
    raw_id_fields = ("tournament", "user", "team")
    search_fields = ("=id", "=user__id", "user__username", "tournament__name")
    show_full_result_count = False


@admin.register(Match)
class MatchAdmin(AuditedAdmin):
    list_display = ("id", "tournament", "round", "state", "winner", "loser", "completed_at")
    list_filter = ("state", "round")
    list_select_related = ("tournament",)
    raw_id_fields = ("tournament", "participant1", "participant2", "winner", "loser")
    search_fields = ("=id", "tournament__name")
    show_full_result_count = False


@admin.register(TournamentResult)
class TournamentResultAdmin(AuditedAdmin):
    list_display = ("tournament", "winner", "runner_up", "third_place", "fourth_place", "created_at")
    list_select_related = ("tournament",)
    raw_id_fields = ("tournament", "winner", "runner_up", "third_place", "fourth_place")
    show_full_result_count = False
