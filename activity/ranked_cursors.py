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


def encode_ranked(timestamp, rank: int, row_id: int, scope: str, *, before: bool = False) -> str:
    payload = [_to_micros(timestamp), rank, row_id] + ([1] if before else [])
    return signing.dumps(payload, salt=f"{_SALT}:{scope}", compress=False)


def decode_ranked(raw: str | None, scope: str):
    """(timestamp, rank, id, before) of a cursor, or None for the first page; raises InvalidCursorError."""
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
        or len(value) not in (3, 4)
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or value[2] < 1
        or (len(value) == 4 and value[3] != 1)
    ):
        raise InvalidCursorError("Invalid cursor: malformed.")
    try:
        timestamp = _EPOCH + timedelta(microseconds=value[0])
    except OverflowError:
        raise InvalidCursorError("Invalid cursor: malformed.") from None
    return timestamp, value[1], value[2], len(value) == 4


def paginate_ranked(queryset: QuerySet, *, rank: str, cursor: str | None, limit: int, scope: str) -> Page:
    """One page of `queryset` ordered by (-timestamp, -<rank>, -id), `rank` an integer annotation of the rows; a
    "previous" cursor gives the page just before it (read upwards, turned around), like activity.cursors.paginate."""
    position = decode_ranked(cursor, scope)

    def key(row, *, before: bool = False) -> str:
        return encode_ranked(row.timestamp, getattr(row, rank), row.id, scope, before=before)

    if position is not None and position[3]:
        ts, rk, row_id, _before = position
        newer = (
            Q(timestamp__gt=ts) | Q(timestamp=ts, **{f"{rank}__gt": rk}) | Q(timestamp=ts, id__gt=row_id, **{rank: rk})
        )
        up: Sequence = list(queryset.filter(newer).order_by("timestamp", rank, "id")[: limit + 1])
        items = list(reversed(up[:limit]))
        return Page(items, key(items[-1]) if items else None, key(items[0], before=True) if len(up) > limit else None)
    qs = queryset.order_by("-timestamp", f"-{rank}", "-id")
    if position is not None:
        ts, rk, row_id, _before = position
        qs = qs.filter(
            Q(timestamp__lt=ts) | Q(timestamp=ts, **{f"{rank}__lt": rk}) | Q(timestamp=ts, id__lt=row_id, **{rank: rk})
        )
    rows: Sequence = list(qs[: limit + 1])
    items = list(rows[:limit])
    next_cursor = key(items[-1]) if len(rows) > limit else None
    previous_cursor = key(items[0], before=True) if position is not None and items else None
    return Page(items, next_cursor, previous_cursor)
