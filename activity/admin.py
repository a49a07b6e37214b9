"""Admin: the ledger strictly read-only (for superusers too); backfill runs started, watched and cancelled here."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property

from activity import backfill, poison
from activity.models import BackfillRun, ErasureLog, PoisonRow, SweepWatermark, UserActivity
from activity.sources import SOURCES

# Above this many rows an unfiltered ledger list shows the planner's estimate instead of COUNT(*) over the table.
ESTIMATE_ABOVE = 100_000


class LedgerPaginator(Paginator):
    """COUNT(*) of the whole ledger costs a scan of millions of rows on every page view; unfiltered, estimate it."""

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if query is not None and not query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [UserActivity._meta.db_table]
                )
                row = cursor.fetchone()
            if row and row[0] > ESTIMATE_ABOVE:
                return int(row[0])
        return super().count


@admin.register(UserActivity)
class UserActivityAdmin(admin.ModelAdmin):
    """Read-only for everyone: rows are appended by the recorder only (GDPR erasure is a separate, logged service)."""

    list_display = (
        "id",
        "timestamp",
        "event_type",
        "user",
        "amount",
        "source_model",
        "source_id",
        "seq",
        "visibility",
        "recorded_at",
    )
    list_filter = ("event_type", ("timestamp", admin.DateFieldListFilter), "visibility")
    list_select_related = ("user",)
    # Resolved to user ids first (get_search_results), then one indexed lookup: never a scan of the ledger.
    search_fields = ("=user__id",)
    search_help_text = "A user id or an exact username."
    show_full_result_count = False
    paginator = LedgerPaginator
    list_per_page = 50
    actions = None  # no bulk action may write to the ledger (this also removes "delete selected")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(username=term)
        if term.isascii() and term.isdigit():
            match |= Q(pk=int(term))
        user_ids = list(get_user_model().objects.filter(match).values_list("pk", flat=True)[:10])
        return queryset.filter(user_id__in=user_ids), False

    def get_ordering(self, request: HttpRequest):
        # A user or an event type narrows the list to an index on (user|event_type, -timestamp): newest first by
        # time. The whole ledger is listed newest-recorded first, which walks the primary key backwards.
        if request.GET.get("q") or request.GET.get("event_type__exact"):
            return ("-timestamp", "-id")
        return ("-id",)


class StartBackfillForm(forms.Form):
    sources = forms.MultipleChoiceField(
        choices=[(label, label) for label in SOURCES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked means all sources.",
    )
    dry_run = forms.BooleanField(
        required=False, initial=True, help_text="Write nothing; report how many events would be created."
    )
    batch_size = forms.IntegerField(
        min_value=backfill.MIN_BATCH_SIZE,
        max_value=settings.BACKFILL_MAX_BATCH_SIZE,
        initial=settings.BACKFILL_DEFAULT_BATCH_SIZE,
        help_text="Most source rows per chunk; one chunk is one short transaction.",
    )
    lanes = forms.IntegerField(
        min_value=1,
        max_value=backfill.MAX_LANES,
        initial=1,
        required=False,
        help_text="Chains of chunks in parallel, one worker process each. Keep a process free "
        "for live recording (the events queue).",
    )


@admin.register(BackfillRun)
class BackfillRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "status",
        "dry_run",
        "source_list",
        "percent",
        "events_created",
        "rate_display",
        "eta",
        "created_at",
        "finished_at",
        "created_by",
    )
    list_filter = ("status", "dry_run")
    list_select_related = ("created_by",)
    actions = ["cancel_selected"]
    change_form_template = "admin/activity/backfillrun/change_form.html"
    fields = (
        "status",
        "dry_run",
        "sources",
        "batch_size",
        "lanes",
        "rows_done",
        "rows_total",
        "events_created",
        "rate",
        "current_source",
        "chunks_done",
        "created_by",
        "created_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
        "resumes",
        "cancel_requested",
        "last_error",
    )
    readonly_fields = fields

    # A run is a record of what happened: started through the form, stopped through cancel, never edited or deleted.
    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_cancel_permission(self, request: HttpRequest, obj=None) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def get_urls(self):
        wrap = self.admin_site.admin_view  # staff only (others go to the login page), CSRF-protected
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("start/", wrap(self.start_view), name=f"{prefix}_start"),
            path("<int:run_id>/cancel/", wrap(self.cancel_view), name=f"{prefix}_cancel"),
            path("<int:run_id>/progress/", wrap(self.progress_view), name=f"{prefix}_progress"),
        ] + super().get_urls()

    # --- list columns -------------------------------------------------------------------------------------------
    @admin.display(description="sources")
    def source_list(self, run: BackfillRun) -> str:
        return "all" if len(run.sources) == len(SOURCES) else ", ".join(run.sources)

    @admin.display(description="progress")
    def percent(self, run: BackfillRun) -> str:
        return f"{backfill.percent_of(run):.1f} %"

    @admin.display(description="events/s")
    def rate_display(self, run: BackfillRun) -> str:
        return f"{run.rate:,.0f}"

    @admin.display(description="ETA")
    def eta(self, run: BackfillRun) -> str:
        return backfill.format_duration(backfill.eta_of(run))

    # --- views ----------------------------------------------------------------------------------------------------
    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:activity_backfillrun_start"))

    def start_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = StartBackfillForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                run = backfill.start_backfill(
                    form.cleaned_data["sources"],
                    dry_run=form.cleaned_data["dry_run"],
                    batch_size=form.cleaned_data["batch_size"],
                    user=request.user,
                    lanes=form.cleaned_data["lanes"],
                )
            except backfill.BackfillError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, f"{run} started: {run.rows_total} source rows.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:activity_backfillrun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Start backfill",
            "form": form,
            "max_batch_size": settings.BACKFILL_MAX_BATCH_SIZE,
        }
        return TemplateResponse(request, "admin/activity/backfillrun/start.html", context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None) -> HttpResponse:
        run = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if run is not None:
            extra_context.update(
                progress=backfill.progress_of(run),
                run=run,
                # The rate chart: the last 30 runs up to this one, oldest first.
                rate_runs=list(BackfillRun.objects.filter(pk__lte=run.pk).order_by("-pk")[:30])[::-1],
                can_cancel=run.is_active and self.has_cancel_permission(request, run),
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def cancel_view(self, request: HttpRequest, run_id: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])  # a state change is never a GET
        run = get_object_or_404(BackfillRun, pk=run_id)
        if not self.has_cancel_permission(request, run):
            raise PermissionDenied
        run = backfill.cancel_backfill(run.pk)
        self.message_user(request, f"{run}: cancel requested." if run.is_active else f"{run}.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:activity_backfillrun_change", args=[run.pk]))

    def progress_view(self, request: HttpRequest, run_id: int) -> JsonResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = get_object_or_404(BackfillRun, pk=run_id)
        return JsonResponse(backfill.progress_of(run).as_dict())

    # --- actions --------------------------------------------------------------------------------------------------
    @admin.action(description="Cancel selected runs", permissions=["cancel"])
    def cancel_selected(self, request: HttpRequest, queryset) -> None:
        cancelled = [
            backfill.cancel_backfill(pk)
            for pk in queryset.filter(status__in=BackfillRun.ACTIVE_STATUSES).values_list("pk", flat=True)
        ]
        self.message_user(request, f"Cancel requested for {len(cancelled)} run(s).", messages.WARNING)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records the system keeps about itself: shown, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(ErasureLog)
class ErasureLogAdmin(ReadOnlyAdmin):
    list_display = ("erased_user_id", "performed_at", "requested_by", "events_rewritten", "metadata_scrubbed", "reason")
    search_fields = ("=erased_user_id",)
    show_full_result_count = False


@admin.register(SweepWatermark)
class SweepWatermarkAdmin(ReadOnlyAdmin):
    list_display = ("source", "watermark", "last_found", "resume_changed_at", "resume_id", "updated_at")
    readonly_fields = ("source", "watermark", "last_found", "resume_changed_at", "resume_id", "updated_at")


class PoisonStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin):
        return (("unresolved", "Unresolved"), ("resolved", "Resolved"))

    def queryset(self, request: HttpRequest, queryset):
        if self.value() == "unresolved":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(PoisonRow)
class PoisonRowAdmin(ReadOnlyAdmin):
    """Source rows that could not be recorded (activity.poison). Fix the cause; the retry job resolves them, or
    "retry now" runs the same service for the selected rows at once."""

    list_display = (
        "source",
        "source_id",
        "error_class",
        "short_error",
        "attempts",
        "first_seen",
        "last_seen",
        "next_attempt_at",
        "resolved_at",
        "origin",
    )
    list_filter = (PoisonStateFilter, "source", "error_class")
    search_fields = ("=source_id",)
    readonly_fields = (
        "source",
        "source_id",
        "error_class",
        "error",
        "origin",
        "first_seen",
        "last_seen",
        "attempts",
        "next_attempt_at",
        "resolved_at",
    )
    actions = ("retry_now",)

    @admin.display(description="error")
    def short_error(self, row: PoisonRow) -> str:
        return row.error if len(row.error) <= 120 else row.error[:117] + "..."

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff and request.user.has_perm("activity.view_poisonrow")

    @admin.action(description="Retry now (record the selected rows again)", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset) -> None:
        report = poison.retry_now(queryset)
        level = messages.SUCCESS if not report.still_poison else messages.WARNING
        self.message_user(
            request,
            f"Retried {report.retried} row(s): {report.resolved} resolved, {report.still_poison} still failing.",
            level,
        )
