"""Public player IDs `DC-YY-NNNNNN`: the one format, the one parser, and gapless reservation from the year's counter.

`YY` is the two-digit year the profile was created (UTC), `NNNNNN` that year's counter, zero-padded to six digits; a
year past 999,999 profiles grows a seventh digit (never a leading zero then, so every number has one spelling).

Numbers come from `PublicIDCounter(year, last_value)`, advanced by `reserve_block` in one statement that holds the
year's row lock until the caller's transaction ends: concurrent creators queue on that row instead of colliding, and a
transaction that rolls back takes its increment with it, so a year's IDs are exactly 1..last_value, no gaps.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import NamedTuple

from django.apps import apps
from django.db import connection

from audit.event_types import AuditEventType
from audit.services import AuditItem, actor_from_context, record_audit_events

PREFIX = "DC"
MAX_LENGTH = 16  # "DC-YY-" and up to ten digits: far beyond any year's sign-ups
# The stored spelling (upper case), also a CHECK constraint on the column.
STORED_REGEX = r"^DC-([0-9]{2})-([0-9]{6}|[1-9][0-9]{6,9})$"
_PATTERN = re.compile(STORED_REGEX, re.IGNORECASE)


class InvalidPublicID(ValueError):
    """Text that is not a public player ID."""


class PublicID(NamedTuple):
    year: int  # two-digit year, 0-99
    number: int

    def __str__(self) -> str:
        return format_public_id(self.year, self.number)


def format_public_id(year: int, number: int) -> str:
    """`DC-YY-NNNNNN` for a (full or two-digit) year and that year's counter value."""
    if number < 1:
        raise ValueError(f"public ID numbers start at 1, got {number}")
    return f"{PREFIX}-{year % 100:02d}-{number:06d}"


def parse_public_id(text: object) -> PublicID:
    """The year and number of `text` (any letter case); raises InvalidPublicID naming the expected format."""
    match = _PATTERN.fullmatch(text) if isinstance(text, str) else None  # fullmatch: "$" would allow a final \n
    if match is None or int(match.group(2)) == 0:
        shown = repr(text[:40]) if isinstance(text, str) else type(text).__name__
        raise InvalidPublicID(f"Not a public player ID: {shown} (expected DC-YY-NNNNNN, e.g. DC-26-000042).")
    return PublicID(int(match.group(1)), int(match.group(2)))


def canonical_public_id(text: object) -> str:
    """The stored spelling of `text` (upper case); raises InvalidPublicID."""
    return str(parse_public_id(text))


def looks_like_public_id(text: str) -> bool:
    """True when `text` is meant as a public ID (starts with the prefix), well-formed or not."""
    return text[:3].upper() == f"{PREFIX}-"


def creation_year(created_at: datetime | None) -> int:
    """The year a profile created at `created_at` (now when unknown) counts in: its UTC calendar year."""
    return (created_at or datetime.now(UTC)).astimezone(UTC).year


def reserve_block(year: int, count: int) -> range:
    """Reserve the next `count` numbers of `year`; returns them. Call inside the transaction that uses them.

    One upsert: it creates the year's row on first use and otherwise is `UPDATE ... SET last_value = last_value + n
    RETURNING last_value`, atomic on its row. The row stays locked until commit or rollback.
    """
    if count < 1:
        return range(0)
    if not connection.in_atomic_block:
        raise RuntimeError("reserve_block must run inside the transaction that assigns the numbers")
    # Through the app registry: the profile model imports this module, so importing the models here would be a cycle.
    counter = apps.get_model("profiles", "PublicIDCounter")
    table = connection.ops.quote_name(counter._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (year, last_value) VALUES (%s, %s) ON CONFLICT (year) DO UPDATE "
            f"SET last_value = {table}.last_value + EXCLUDED.last_value RETURNING last_value",
            [year, count],
        )
        last = cursor.fetchone()[0]
    return range(last - count + 1, last + 1)


def next_public_id(created_at: datetime | None = None) -> str:
    """One fresh public ID for a profile created at `created_at` (now by default), inside the caller's transaction."""
    year = creation_year(created_at)
    return format_public_id(year, reserve_block(year, 1)[0])


def audit_public_ids(assigned: dict[int, str]) -> None:
    """One public_id_assigned audit event per user, in the assigning transaction (set-based for bulk paths)."""
    record_audit_events(
        actor=actor_from_context("service:public_ids"),
        event_type=AuditEventType.PUBLIC_ID_ASSIGNED,
        items=[
            AuditItem(uid, ("profiles.userprofile", uid), {"public_id": {"before": None, "after": public_id}})
            for uid, public_id in assigned.items()
        ],
    )
