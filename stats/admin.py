"""Admin of the projection: stats read-only (with a "recompute" action), reconciliation runs watched and started here.

Nothing in these pages edits a counter: the ledger is the only source of the stats. "Recompute" marks the selected
users stale (one statement, whatever the selection) and queues the recompute job at once, so the request never does
the work itself and the periodic job picks the marks up anyway if the broker is down.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from activity.admin import ReadOnlyAdmin
from stats.counters import COUNTER_FIELDS
from stats.jobs import EnqueueFailed, start_recompute_stale, start_reconciliation
from stats.models import ReconciliationRun, StaleStats, UserProfileStats
from stats.reconcile import ReconciliationAlreadyRunning
from stats.stale import mark_stale


@admin.register(UserProfileStats)
class UserProfileStatsAdmin(ReadOnlyAdmin):
    list_display = (
        "profile_id",
        "profile",
        "matches_played",
        "matches_won",
        "tournaments_won",
        "total_earned",
        "total_spent",
        "last_activity_at",
        "stats_updated_at",
    )
    list_select_related = ("profile",)
    ordering = ("profile_id",)
    search_fields = ("=profile__display_name",)
    search_help_text = "A user id or an exact display name."
    fields = ("profile", *COUNTER_FIELDS, "last_activity_at", "stats_updated_at")
    actions = ("recompute",)
    show_full_result_count = False

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        term = search_term.strip()
        if term.isascii() and term.isdigit():  # a user id: the primary key, one index lookup
            return queryset.filter(profile_id=int(term)), False
        return super().get_search_results(request, queryset, term)

    def has_recompute_permission(self, request: HttpRequest) -> bool:
        # The model-level "change" permission (the pages themselves stay read-only for everyone).
        return request.user.has_perm("stats.change_userprofilestats")

    @admin.action(description="Recompute the selected users' stats from the ledger", permissions=["recompute"])
    def recompute(self, request: HttpRequest, queryset) -> None:
        user_ids = list(queryset.values_list("profile_id", flat=True))
        marked = mark_stale(user_ids, reason=f"admin: {request.user.get_username()}")
        try:
            detail = start_recompute_stale()
        except EnqueueFailed as exc:
            self.message_user(
                request,
                f"{marked} user(s) marked stale; {exc}. The periodic recompute job (every "
                f"5 minutes) will pick them up.",
                messages.WARNING,
            )
            return
        self.message_user(request, f"{marked} user(s) marked stale. {detail}", messages.SUCCESS)


CHART_RUNS = 30


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "started_at",
        "status",
        "mode",
        "scope_display",
        "trigger",
        "users_checked",
        "users_drifted",
        "users_fixed",
        "missing_events_total",
        "drift_percent",
        "economy_wallets_drifted",
        "duration_seconds",
    )
    list_filter = ("status", "fix", "trigger", "scope")
    date_hierarchy = "started_at"
    fields = (
        "status",
        "started_at",
        "finished_at",
        "duration_seconds",
        "fix",
        "scope",
        "scope_user_id",
        "trigger",
        "sources_checked",
        "sources_mode",
        "slice_index",
        "slice_count",
        "changes_claimed",
        "users_checked",
        "users_appended",
        "ledger_high_id",
        "users_drifted",
        "users_fixed",
        "drift_percent",
        "missing_events_total",
        "missing_events_pretty",
        "poison_rows",
        "field_drift_pretty",
        "drift_sample_pretty",
        "economy_checked",
        "economy_wallets_checked",
        "economy_wallets_drifted",
        "economy_wallets_repaired",
        "economy_drift_pretty",
        "economy_unrepairable",
        "economy_sample_pretty",
        "error",
    )
    readonly_fields = fields

    @admin.display(description="mode", ordering="fix")
    def mode(self, run: ReconciliationRun) -> str:
        return "repair" if run.fix else "report only"

    @admin.display(description="scope", ordering="scope")
    def scope_display(self, run: ReconciliationRun) -> str:
        return f"user {run.scope_user_id}" if run.scope == ReconciliationRun.Scope.USER else "all users"

    @admin.display(description="drift", ordering="drift_rate")
    def drift_percent(self, run: ReconciliationRun) -> str:
        return f"{100 * run.drift_rate:.3f}%"

    @admin.display(description="missing events")
    def missing_events_pretty(self, run: ReconciliationRun) -> str:
        return _pre(run.missing_events)

    @admin.display(description="field drift (users per field)")
    def field_drift_pretty(self, run: ReconciliationRun) -> str:
        return _pre(run.field_drift)

    @admin.display(description="drifted users (sample)")
    def drift_sample_pretty(self, run: ReconciliationRun) -> str:
        return _pre(run.drift_sample)

    @admin.display(description="economy drift (wallets per kind)")
    def economy_drift_pretty(self, run: ReconciliationRun) -> str:
        return _pre(run.economy_drift)

    @admin.display(description="drifted wallets (sample)")
    def economy_sample_pretty(self, run: ReconciliationRun) -> str:
        return _pre(run.economy_sample)

    def has_run_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("stats.run_reconciliation")

    def get_urls(self):
        run_now = self.admin_site.admin_view(self.run_now_view)  # staff only, CSRF protected, never cached
        return [path("run/", run_now, name="stats_reconciliationrun_run"), *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        extra = {
            "can_run_reconciliation": self.has_run_permission(request),
            "run_reconciliation_url": reverse("admin:stats_reconciliationrun_run"),
            # The chart of the last CHART_RUNS runs, oldest first (one indexed query on started_at).
            "chart_runs": list(ReconciliationRun.objects.order_by("-started_at", "-id")[:CHART_RUNS])[::-1],
        }
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    @method_decorator(require_POST)
    def run_now_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_run_permission(request):
            raise PermissionDenied
        fix = request.POST.get("fix") == "1"
        try:
            detail = start_reconciliation(fix=fix, trigger="admin")
        except (EnqueueFailed, ReconciliationAlreadyRunning) as exc:
            self.message_user(request, f"Reconciliation not started: {exc}.", messages.ERROR)
        else:
            self.message_user(request, detail, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:stats_reconciliationrun_changelist"))


@admin.register(StaleStats)
class StaleStatsAdmin(ReadOnlyAdmin):
    list_display = ("profile_id", "marked_at", "reason")
    ordering = ("marked_at",)
    fields = ("profile", "marked_at", "reason")


def _pre(value: object) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))
