"""GET /api/audit/events: the staff-only JSONL export of the audit trail (the same stream as `audit_export`)."""

from __future__ import annotations

from argparse import ArgumentTypeError

from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET

from audit.cli import moment, positive_int
from audit.event_types import AuditEventType
from audit.export import jsonl_lines


@require_GET
def audit_events_export(request: HttpRequest) -> HttpResponseBase:
    user = request.user
    if not (user.is_authenticated and user.is_staff):
        return JsonResponse({"detail": "staff only"}, status=403)
    try:
        filters = {
            "user_id": _optional(request, "user_id", positive_int),
            "event_type": _optional(request, "event_type", _event_type),
            "since": _optional(request, "since", moment),
            "limit": _optional(request, "limit", positive_int),
        }
    except ArgumentTypeError as exc:
        return JsonResponse({"detail": str(exc)}, status=400)
    lines = jsonl_lines(**filters)
    response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
    response["Content-Disposition"] = 'attachment; filename="audit-events.jsonl"'
    response["Cache-Control"] = "no-store"
    return response


def _optional(request: HttpRequest, name: str, parse):
    raw = request.GET.get(name)
    if raw in (None, ""):
        return None
    try:
        return parse(raw)
    except ArgumentTypeError as exc:
        raise ArgumentTypeError(f"{name}: {exc}") from None


def _event_type(value: str) -> str:
    if value not in AuditEventType.values:
        raise ArgumentTypeError(f"unknown event type {value!r}")
    return value
