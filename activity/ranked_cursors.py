"""Keyset pagination on (timestamp, rank, id), newest first: lists whose rows share a timestamp and have a natural
order within it (the matches of one tournament day: R128 ... QF, SF, F, so a final is the latest match).

The cursor is the (timestamp, rank, id) of the last row shown, signed like activity.cursors' (same salt scheme, its
own version tag, so a two-key cursor of another list is rejected here and vice versa).
"""

from __future__ import annotations

import binascii
import zlib
from collections.abc import Sequence
from datetime import timedelta

from django.core import signing
from django.db.models import Q, QuerySet

from activity.cursors import _EPOCH, MAX_CURSOR_LENGTH, InvalidCursorError, Page, _to_micros

_SALT = "activity.cursor.ranked.v1"


def encode_ranked(timestamp, rank: int, row_id: int, scope: str) -> str:
    return signing.dumps([_to_micros(timestamp), rank, row_id], salt=f"{_SALT}:{scope}", compress=False)


def decode_ranked(raw: str | None, scope: str):
    """(timestamp, rank, id) of a cursor, or None for the first page; raises InvalidCursorError."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > MAX_CURSOR_LENGTH:
        raise InvalidCursorError("Invalid cursor: not a cursor issued by this list.")
    try:
        value = signing.loads(raw, salt=f"{_SALT}:{scope}")
    except signing.BadSignature:
        raise InvalidCursorError("Invalid cursor: it was altered or belongs to another list.") from None
    except (ValueError, TypeError, UnicodeError, binascii.Error, zlib.error):
        raise InvalidCursorError("Invalid cursor: malformed.") from None
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or value[2] < 1
    ):
        raise InvalidCursorError("Invalid cursor: malformed.")
    try:
        timestamp = _EPOCH + timedelta(microseconds=value[0])
    except OverflowError:
        raise InvalidCursorError("Invalid cursor: malformed.") from None
    return timestamp, value[1], value[2]


def paginate_ranked(queryset: QuerySet, *, rank: str, cursor: str | None, limit: int, scope: str) -> Page:
    """One page of `queryset` ordered by (-timestamp, -<rank>, -id), `rank` an integer annotation of the rows."""
    position = decode_ranked(cursor, scope)
    qs = queryset.order_by("-timestamp", f"-{rank}", "-id")
    if position is not None:
        ts, rk, row_id = position
        qs = qs.filter(
            Q(timestamp__lt=ts) | Q(timestamp=ts, **{f"{rank}__lt": rk}) | Q(timestamp=ts, id__lt=row_id, **{rank: rk})
        )
    rows: Sequence = list(qs[: limit + 1])
    items = list(rows[:limit])
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_ranked(last.timestamp, getattr(last, rank), last.id, scope)
    return Page(items, next_cursor)
