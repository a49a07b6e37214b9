"""Helpers of the audit tests: writing a few events, and tampering with the table as a superuser would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

from audit.event_types import AuditEventType
from audit.models import UserAuditEvent
from audit.services import record_audit_event

TABLE = UserAuditEvent._meta.db_table


def write_events(n: int, *, subject_user_id: int | None = 7) -> list[UserAuditEvent]:
    return [
        record_audit_event(
            actor="job:test",
            event_type=AuditEventType.STATS_RECOMPUTED,
            subject_user_id=subject_user_id,
            obj=("stats.userprofilestats", i),
            changes={"matches_played": {"before": i, "after": i + 1}},
        )
        for i in range(n)
    ]


@contextmanager
def triggers_disabled() -> Iterator[None]:
    """What a superuser can do (and the chain exists to reveal): turn the immutability trigger off for a while."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER audit_event_immutable")
        try:
            yield
        finally:
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER audit_event_immutable")


def tamper(statement: str, params: list | None = None) -> None:
    with triggers_disabled(), connection.cursor() as cursor:
        cursor.execute(statement, params or [])


def events_in_table() -> list[UserAuditEvent]:
    return list(UserAuditEvent.objects.order_by("id"))
