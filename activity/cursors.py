"""Keyset pagination on (timestamp, id), newest first, behind opaque signed cursors.

A cursor is the (timestamp, id) of the last row of the previous page (a "next" cursor), or of the first row of the
page after the one wanted, marked "before" (a "previous" cursor: the page of rows just newer than it), signed with
the project's SECRET_KEY and a salt naming the list it belongs to (surface and subject). Keyset pages never skip or
repeat a row while new events arrive (they only ever land before or after the cursor, never shift it, unlike
OFFSET), and each page is one index range scan on (user, -timestamp, -id) whatever the depth. Signing means a client
cannot forge a position or reuse a cursor on another list: anything altered, truncated or foreign is rejected with
InvalidCursorError (HTTP 400).
"""

from __future__ import annotations

import binascii
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from django.core import signing
from django.db.models import Model, Q, QuerySet

from activity.selectors.errors import InvalidQueryError

MAX_PAGE_SIZE = 50
MAX_CURSOR_LENGTH = 512
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SALT = "activity.cursor.v1"
NEWEST_FIRST = ("-timestamp", "-id")

T = TypeVar("T", bound=Model)


class InvalidCursorError(InvalidQueryError):
    """A cursor we did not issue for this list: malformed, truncated, tampered with, or from another list."""

    code = "invalid_cursor"


class InvalidPageSizeError(InvalidQueryError):
    """A page size outside 1..MAX_PAGE_SIZE."""


@dataclass(frozen=True, slots=True)
class Position:
    timestamp: datetime
    id: int
    before: bool = False  # a "previous" cursor: the rows just newer than this one


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
    previous_cursor: str | None = None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


def page_size(limit: int | None, default: int) -> int:
    """The page size to use: `default` when not given, else `limit` if within 1..MAX_PAGE_SIZE."""
    if limit is None:
        return default
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidPageSizeError(f"limit must be an integer between 1 and {MAX_PAGE_SIZE}, got {limit!r}.")
    return limit


def encode_cursor(position: Position, scope: str) -> str:
    micros = _to_micros(position.timestamp)
    payload = [micros, position.id, 1] if position.before else [micros, position.id]
    return signing.dumps(payload, salt=f"{_SALT}:{scope}", compress=False)


def load_signed_ints(raw: str, salt: str, *, lengths: tuple[int, int], id_index: int) -> list[int]:
    """The integers a signed cursor carries: signature, shape, a positive row id at `id_index` and, in the longer of
    the two `lengths`, a trailing "before" flag of 1 checked; raises InvalidCursorError. Shared by every cursor kind
    (activity.ranked_cursors too), each with its own salt."""
    if not isinstance(raw, str) or len(raw) > MAX_CURSOR_LENGTH:
        raise InvalidCursorError("Invalid cursor: not a cursor issued by this list.")
    try:
        value = signing.loads(raw, salt=salt)
    except signing.BadSignature:
        raise InvalidCursorError("Invalid cursor: it was altered or belongs to another list.") from None
    except (ValueError, TypeError, UnicodeError, binascii.Error, zlib.error):
        raise InvalidCursorError("Invalid cursor: malformed.") from None
    if (
        not isinstance(value, list)
        or len(value) not in lengths
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or value[id_index] < 1
        or (len(value) == lengths[1] and value[-1] != 1)
    ):
        raise InvalidCursorError("Invalid cursor: malformed.")
    return value


def timestamp_of(micros: int) -> datetime:
    """A cursor's timestamp from its microseconds since the epoch; raises InvalidCursorError when out of range."""
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise InvalidCursorError("Invalid cursor: malformed.") from None


def decode_cursor(raw: str | None, scope: str) -> Position | None:
    """The position a cursor stands for, or None for the first page (no cursor); raises InvalidCursorError."""
    if raw is None or raw == "":
        return None
    value = load_signed_ints(raw, f"{_SALT}:{scope}", lengths=(2, 3), id_index=1)
    return Position(timestamp_of(value[0]), value[1], before=len(value) == 3)


def paginate(queryset: QuerySet, *, cursor: str | None, limit: int, scope: str) -> Page:
    """One page of `queryset` (rows with `timestamp` and `id`), newest first, after `cursor` (or, for a "previous"
    cursor, the page just before it), with the cursors of the pages on either side.

    Fetches limit + 1 rows to learn whether another page exists without a COUNT. A previous page is read oldest
    first from the cursor up (the same index backwards) and turned around.
    """
    position = decode_cursor(cursor, scope)
    if position is not None and position.before:
        newer = Q(timestamp__gt=position.timestamp) | Q(timestamp=position.timestamp, id__gt=position.id)
        rows: Sequence = list(queryset.filter(newer).order_by("timestamp", "id")[: limit + 1])
        items = list(reversed(rows[:limit]))
        return Page(
            items,
            encode_cursor(Position(items[-1].timestamp, items[-1].id), scope) if items else None,
            encode_cursor(Position(items[0].timestamp, items[0].id, before=True), scope) if len(rows) > limit else None,
        )
    qs = queryset.order_by(*NEWEST_FIRST)
    if position is not None:
        qs = qs.filter(Q(timestamp__lt=position.timestamp) | Q(timestamp=position.timestamp, id__lt=position.id))
    return newest_page(list(qs[: limit + 1]), limit, scope, after_cursor=position is not None)


def newest_page(rows: Sequence, limit: int, scope: str, *, after_cursor: bool = False) -> Page:
    """The page of `rows` read newest first, limit + 1 of them (one more than shown tells that a next page exists);
    `after_cursor` when the page is not the first (it then has a previous page)."""
    items = list(rows[:limit])
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(Position(last.timestamp, last.id), scope)
    previous_cursor = None
    if after_cursor and items:  # a page after the first: the previous page ends just before this one
        previous_cursor = encode_cursor(Position(items[0].timestamp, items[0].id, before=True), scope)
    return Page(items, next_cursor, previous_cursor)


def _to_micros(moment: datetime) -> int:
    # Exact integer arithmetic: a float timestamp would lose microseconds and break ties between neighbours.
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
