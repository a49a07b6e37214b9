"""AuditedAdmin: every add, change and delete made in the admin of a source or profile row is an audit event, with
the changed fields' before/after (redacted at write), in the admin's own transaction.

A change that touches a profile's privacy flags (show_*) is recorded as privacy_settings_changed, any other as
admin_change: one event per saved object.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models, transaction
from django.forms import BaseModelFormSet, ModelForm
from django.http import HttpRequest

from audit.event_types import AuditEventType
from audit.services import AuditItem, record_audit_event, record_audit_events

PRIVACY_FIELD_PREFIX = "show_"
# Where a source row names the user it is about, in the order tried.
SUBJECT_ATTRIBUTES = ("user_id", "profile_id", "filed_by_id", "created_by_id")


def subject_of(obj: models.Model) -> int | None:
    for attribute in SUBJECT_ATTRIBUTES:
        value = getattr(obj, attribute, None)
        if isinstance(value, int):
            return value
    return None


def _value(obj: models.Model, name: str) -> Any:
    field = obj._meta.get_field(name)
    return field.value_from_object(obj) if field.concrete and not field.many_to_many else None


def _concrete(obj: models.Model, names: list[str]) -> list[str]:
    fields = {f.name: f for f in obj._meta.concrete_fields}
    return [n for n in names if n in fields]


def _event_type(changed: list[str]) -> AuditEventType:
    if any(name.startswith(PRIVACY_FIELD_PREFIX) for name in changed):
        return AuditEventType.PRIVACY_SETTINGS_CHANGED
    return AuditEventType.ADMIN_CHANGE


class AuditedAdmin(admin.ModelAdmin):
    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        names = _concrete(obj, list(form.changed_data))
        before = type(obj)._base_manager.filter(pk=obj.pk).values(*names).first() if change and names else {}
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            diff = {n: {"before": (before or {}).get(n), "after": _value(obj, n)} for n in names}
            record_audit_event(
                actor=request.user,
                event_type=_event_type(names),
                subject_user_id=subject_of(obj),
                obj=obj,
                changes={"action": "change" if change else "add", "fields": diff},
                request=request,
            )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            item = _deleted(obj)
            super().delete_model(request, obj)
            record_audit_events(
                actor=request.user, event_type=AuditEventType.ADMIN_CHANGE, items=[item], request=request
            )

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        with transaction.atomic():
            items = [_deleted(obj) for obj in queryset]
            super().delete_queryset(request, queryset)
            record_audit_events(
                actor=request.user, event_type=AuditEventType.ADMIN_CHANGE, items=items, request=request
            )

    def save_formset(self, request: HttpRequest, form: ModelForm, formset: BaseModelFormSet, change: bool) -> None:
        with transaction.atomic():
            super().save_formset(request, form, formset, change)
            items = [_deleted(obj) for obj in formset.deleted_objects]
            items += [_saved(obj, [f.name for f in obj._meta.concrete_fields], "add") for obj in formset.new_objects]
            items += [_saved(obj, list(names), "change") for obj, names in formset.changed_objects]
            record_audit_events(
                actor=request.user, event_type=AuditEventType.ADMIN_CHANGE, items=items, request=request
            )


def _deleted(obj: models.Model) -> AuditItem:
    return AuditItem(
        subject_user_id=subject_of(obj),
        obj=(obj._meta.label_lower, obj.pk),
        changes={
            "action": "delete",
            "fields": {f.name: {"before": _value(obj, f.name), "after": None} for f in obj._meta.concrete_fields},
        },
    )


def _saved(obj: models.Model, names: list[str], action: str) -> AuditItem:
    names = _concrete(obj, names)
    return AuditItem(
        subject_user_id=subject_of(obj),
        obj=obj,
        changes={"action": action, "fields": {n: {"after": _value(obj, n)} for n in names}},
    )
