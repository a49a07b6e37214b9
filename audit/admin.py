"""The audit trail in the admin: read-only (the database refuses changes anyway), filtered by actor, subject, type
and date."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.models import UserAuditEvent


class _UserIdFilter(admin.SimpleListFilter):
    """Filter on a user id column by typing/following ?<parameter>=<id> (user ids, not names: the trail has none)."""

    column = ""
    template = "admin/audit/id_filter.html"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, f"user {value}")] if value else [("", "")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(**{self.column: int(value)})
        return queryset


class ActorFilter(_UserIdFilter):
    title = "actor user id"
    parameter_name = "actor"
    column = "actor_user_id"


class SubjectFilter(_UserIdFilter):
    title = "subject user id"
    parameter_name = "subject"
    column = "subject_user_id"


@admin.register(UserAuditEvent)
class UserAuditEventAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "occurred_at",
        "event_type",
        "actor_kind",
        "actor_user_id",
        "actor_job",
        "subject_user_id",
        "object_model",
        "object_id",
        "request_id",
    )
    list_filter = ("event_type", "actor_kind", "occurred_at", ActorFilter, SubjectFilter, "actor_job")
    date_hierarchy = "occurred_at"
    search_fields = ("=subject_user_id", "=actor_user_id", "=object_id", "=request_id")
    readonly_fields = [f.name for f in UserAuditEvent._meta.fields]
    show_full_result_count = False  # no count(*) over millions of rows per page
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: UserAuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: UserAuditEvent | None = None) -> bool:
        return False
