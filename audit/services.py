"""The one write path of the audit trail: `record_audit_event`.

Call it inside the transaction of the change it describes (it joins it, or opens one): the event commits or rolls
back with the change. Writers are serialised on the chain head row (SELECT ... FOR UPDATE through an upsert), which
hands out the next id and the previous hash, so concurrent writers append one chain instead of forking it. The lock is
held to the end of the caller's transaction: record the event as the last write of a long transaction, so other
audited writes wait for a commit, not for the work.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, models, transaction
from django.http import HttpRequest
from django.utils import timezone
from psycopg import sql

from audit.chain import HASHED_COLUMNS, format_time, row_hash
from audit.context import RequestContext, context_of, current_request_context
from audit.event_types import ActorKind, AuditEventType
from audit.models import GENESIS_HASH, AuditChainHead, UserAuditEvent
from audit.redaction import redact

# "job:reconcile_stats", "command:erase_user", "task:...": what ran, never who (a system actor has no person).
BULK_CHUNK = 5_000
SYSTEM_ACTOR = re.compile(r"^(job|command|task|signal|service|migration):[a-z0-9_.:-]{1,90}$")


class AuditError(ValueError):
    """The event cannot be recorded as given; nothing was written."""


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    user_id: int | None = None
    job: str = ""

    @classmethod
    def system(cls, name: str) -> Actor:
        if not SYSTEM_ACTOR.match(name):
            raise AuditError(f"a system actor is named like 'job:reconcile_stats', not {name!r}")
        return cls(ActorKind.SYSTEM, None, name)


ActorLike = Actor | AbstractBaseUser | AnonymousUser | str
ObjectLike = models.Model | tuple[str, object] | None


def resolve_actor(actor: ActorLike, subject_user_id: int | None) -> Actor:
    if isinstance(actor, Actor):
        return actor
    if isinstance(actor, str):
        return Actor.system(actor)
    if not actor.is_authenticated or actor.pk is None:
        raise AuditError("an anonymous request cannot be an audit actor; name the job or the user")
    if getattr(actor, "is_staff", False):
        return Actor(ActorKind.STAFF, int(actor.pk))
    if subject_user_id is not None and int(actor.pk) != subject_user_id:
        raise AuditError(f"user {actor.pk} is not staff and cannot act on user {subject_user_id}'s data")
    return Actor(ActorKind.USER, int(actor.pk))


def actor_from_context(default: str, subject_user_id: int | None = None) -> Actor:
    """Who is acting, for a service that is not told: the signed-in staff user (or the user themself, on their own
    data) of the current request, else the system actor `default` (a task, a command, a job)."""
    context = current_request_context()
    if context is not None and context.user_id is not None:
        if context.user_is_staff:
            return Actor(ActorKind.STAFF, context.user_id)
        if subject_user_id is not None and context.user_id == subject_user_id:
            return Actor(ActorKind.USER, context.user_id)
    return Actor.system(default)


@dataclass(frozen=True)
class AuditItem:
    """One event of a bulk write: what differs between the events of one action over many rows."""

    subject_user_id: int | None = None
    obj: ObjectLike = None
    changes: Mapping[str, Any] | None = None


def record_audit_events(
    *,
    actor: ActorLike,
    event_type: AuditEventType | str,
    items: Sequence[AuditItem],
    request: HttpRequest | None = None,
) -> int:
    """Append one event per item (a set-based action over many rows: a bulk import, a repair of many users) in the
    caller's transaction: the head is locked once and the rows go in one statement per chunk. Returns the count."""
    rows = [_fields(actor, event_type, item.subject_user_id, item.obj, item.changes, request) for item in items]
    if not rows:
        return 0
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(_LOCK_HEAD, [GENESIS_HASH])
        last_id, last_hash = cursor.fetchone()
        now = timezone.now()
        for fields in rows:
            last_id += 1
            fields.update(id=last_id, occurred_at=now, prev_hash=last_hash)
            last_hash = fields["hash"] = row_hash(fields)
        for start in range(0, len(rows), BULK_CHUNK):
            chunk = [{**f, "occurred_at": format_time(f["occurred_at"])} for f in rows[start : start + BULK_CHUNK]]
            cursor.execute(_INSERT_MANY, [json.dumps(chunk)])
        cursor.execute(_ADVANCE, [last_id, last_hash])
    return len(rows)


def record_audit_event(
    *,
    actor: ActorLike,
    event_type: AuditEventType | str,
    subject_user_id: int | None = None,
    obj: ObjectLike = None,
    changes: Mapping[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> UserAuditEvent:
    """Append one event to the chain in the caller's transaction and return it."""
    fields = _fields(actor, event_type, subject_user_id, obj, changes, request)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(_LOCK_HEAD, [GENESIS_HASH])
        last_id, last_hash = cursor.fetchone()
        # The clock is read under the lock: times follow the chain order (for --since and the export).
        fields.update(id=last_id + 1, occurred_at=timezone.now(), prev_hash=last_hash)
        fields["hash"] = row_hash(fields)
        cursor.execute(_INSERT_AND_ADVANCE, [*_params(fields), fields["id"], fields["hash"]])
    event = UserAuditEvent(**fields)
    event._state.adding, event._state.db = False, connection.alias
    return event


def _fields(
    actor: ActorLike,
    event_type: AuditEventType | str,
    subject_user_id: int | None,
    obj: ObjectLike,
    changes: Mapping[str, Any] | None,
    request: HttpRequest | None,
) -> dict[str, Any]:
    try:
        event_type = AuditEventType(event_type)
    except ValueError:
        raise AuditError(f"unknown audit event type {event_type!r}") from None
    if subject_user_id is not None and (isinstance(subject_user_id, bool) or not isinstance(subject_user_id, int)):
        raise AuditError(f"subject_user_id must be a user id, not {subject_user_id!r}")
    if changes is not None and not isinstance(changes, Mapping):
        raise AuditError("changes must be a mapping of field -> value or {before, after}")
    who = resolve_actor(actor, subject_user_id)
    context: RequestContext | None = context_of(request) if request is not None else current_request_context()
    object_model, object_id = _object(obj)
    return {
        "event_type": event_type.value,
        "actor_kind": who.kind.value,
        "actor_user_id": who.user_id,
        "actor_job": who.job,
        "subject_user_id": subject_user_id,
        "object_model": object_model,
        "object_id": object_id,
        "changes": redact(dict(changes or {})),
        "request_id": context.request_id if context else "",
        "client_network": context.client_network if context else "",
    }


def _object(obj: ObjectLike) -> tuple[str, str]:
    if obj is None:
        return "", ""
    if isinstance(obj, models.Model):
        return obj._meta.label_lower, "" if obj.pk is None else str(obj.pk)
    label, pk = obj
    if not isinstance(label, str) or len(label) > 100 or len(str(pk)) > 64:
        raise AuditError(f"an object is (model label, id), not {obj!r}")
    return label, str(pk)


def _params(fields: dict[str, Any]) -> list[Any]:
    return [
        json.dumps(fields[name], sort_keys=True) if name == "changes" else fields[name]
        for name in (*HASHED_COLUMNS, "hash")
    ]


_EVENTS = UserAuditEvent._meta.db_table
_HEAD = AuditChainHead._meta.db_table
# Creates the head row if a test flush (or an operator) removed it, and locks it either way; RETURNING gives the
# values of the locked row.
_LOCK_HEAD = (
    sql.SQL(
        "INSERT INTO {head} (id, last_id, last_hash) VALUES (1, 0, %s) "
        "ON CONFLICT (id) DO UPDATE SET id = {head}.id RETURNING last_id, last_hash"
    )
    .format(head=sql.Identifier(_HEAD))
    .as_string(None)
)
_INSERT_AND_ADVANCE = (
    sql.SQL(
        "WITH inserted AS (INSERT INTO {events} ({columns}) VALUES ({values}) RETURNING id) "
        "UPDATE {head} SET last_id = %s, last_hash = %s FROM inserted WHERE {head}.id = 1"
    )
    .format(
        events=sql.Identifier(_EVENTS),
        head=sql.Identifier(_HEAD),
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in (*HASHED_COLUMNS, "hash")),
        values=sql.SQL(", ").join(
            sql.SQL("%s::jsonb") if c == "changes" else sql.Placeholder() for c in (*HASHED_COLUMNS, "hash")
        ),
    )
    .as_string(None)
)
_TYPES = {"id": "bigint", "occurred_at": "timestamptz", "actor_user_id": "bigint", "subject_user_id": "bigint"}
_ALL = (*HASHED_COLUMNS, "hash")
_INSERT_MANY = (
    sql.SQL("INSERT INTO {events} ({columns}) SELECT {columns} FROM jsonb_to_recordset(%s::jsonb) AS r({typed})")
    .format(
        events=sql.Identifier(_EVENTS),
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in _ALL),
        typed=sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL("jsonb" if c == "changes" else _TYPES.get(c, "text")))
            for c in _ALL
        ),
    )
    .as_string(None)
)
_ADVANCE = (
    sql.SQL("UPDATE {head} SET last_id = %s, last_hash = %s WHERE id = 1")
    .format(head=sql.Identifier(_HEAD))
    .as_string(None)
)
