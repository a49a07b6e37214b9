"""Read side of the audit trail: filtered events as dicts / JSONL lines, streamed in keyset chunks.

Memory stays constant whatever the size: one chunk of rows at a time (id > last id, ORDER BY id), no server-side
cursor to hold a transaction open between a slow client's reads.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from django.db.models import Q

from audit.event_types import AuditEventType
from audit.models import UserAuditEvent

CHUNK_SIZE = 2_000
_FIELDS = (
    "id",
    "occurred_at",
    "event_type",
    "actor_kind",
    "actor_user_id",
    "actor_job",
    "subject_user_id",
    "object_model",
    "object_id",
    "changes",
    "request_id",
    "client_network",
    "prev_hash",
    "hash",
)


def iter_events(
    *,
    user_id: int | None = None,
    event_type: str | None = None,
    since: dt.datetime | None = None,
    limit: int | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[dict[str, Any]]:
    """Events in chain order; `user_id` selects the events about that user (subject) or done by them (actor)."""
    if event_type is not None and event_type not in AuditEventType.values:
        raise ValueError(f"unknown audit event type {event_type!r}")
    if limit is not None and limit < 1:
        raise ValueError("limit must be positive")
    events = UserAuditEvent.objects.order_by("id")
    if event_type is not None:
        events = events.filter(event_type=event_type)
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    last_id, sent = 0, 0
    while limit is None or sent < limit:
        size = chunk_size if limit is None else min(chunk_size, limit - sent)
        rows = list(_about(events, user_id).filter(id__gt=last_id).values(*_FIELDS)[:size])
        for row in rows:
            yield as_json(row)
        sent += len(rows)
        if len(rows) < size:
            return
        last_id = rows[-1]["id"]


def _about(events, user_id: int | None):
    if user_id is None:
        return events
    # Two index range scans (subject, id) and (actor, id) OR-ed: both are keyset-friendly.
    return events.filter(Q(subject_user_id=user_id) | Q(actor_user_id=user_id))


def as_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "occurred_at": row["occurred_at"].isoformat(),
        "event_type": row["event_type"],
        "actor": {"kind": row["actor_kind"], "user_id": row["actor_user_id"], "job": row["actor_job"] or None},
        "subject_user_id": row["subject_user_id"],
        "object": {"model": row["object_model"], "id": row["object_id"]} if row["object_model"] else None,
        "changes": row["changes"],
        "request_id": row["request_id"] or None,
        "client_network": row["client_network"] or None,
        "prev_hash": row["prev_hash"],
        "hash": row["hash"],
    }


def jsonl_lines(**filters: Any) -> Iterator[str]:
    for event in iter_events(**filters):
        yield json.dumps(event, sort_keys=True, separators=(",", ":")) + "\n"


def events_about(user_id: int) -> list[dict[str, Any]]:
    """For the user's GDPR export: every event about them or done by them (a user's own trail is small)."""
    return list(iter_events(user_id=user_id))
