"""Keyset pagination on (timestamp, rank, id), newest first: lists whose rows share a timestamp and have a natural
order within it (the matches of one tournament day: R128 ... QF, SF, F, so a final is the latest match).

The cursor is the (timestamp, rank, id) of the last row shown, signed like activity.cursors' (same salt scheme, its
own version tag, so a two-key cursor of another list is rejected here and vice versa).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core import signing
from django.db.models import Q, QuerySet

from activity.cursors import Page, _to_micros, load_signed_ints, timestamp_of

_SALT = "activity.cursor.ranked.v1"


def encode_ranked(timestamp, rank: int, row_id: int, scope: str, *, before: bool = False) -> str:
    payload = [_to_micros(timestamp), rank, row_id] + ([1] if before else [])
    return signing.dumps(payload, salt=f"{_SALT}:{scope}", compress=False)


def decode_ranked(raw: str | None, scope: str):
    """(timestamp, rank, id, before) of a cursor, or None for the first page; raises InvalidCursorError."""
    if raw is None or raw == "":
        return None
    value = load_signed_ints(raw, f"{_SALT}:{scope}", lengths=(3, 4), id_index=2)
    return timestamp_of(value[0]), value[1], value[2], len(value) == 4


def paginate_ranked(queryset: QuerySet, *, rank: str, cursor: str | None, limit: int, scope: str) -> Page:
    """One page of `queryset` ordered by (-timestamp, -<rank>, -id), `rank` an integer annotation of the rows; a
    "previous" cursor gives the page just before it (read upwards, turned around), like activity.cursors.paginate."""
    position = decode_ranked(cursor, scope)
    if position is not None and position[3]:
        ts, rk, row_id, _before = position
        newer = (
            Q(timestamp__gt=ts) | Q(timestamp=ts, **{f"{rank}__gt": rk}) | Q(timestamp=ts, id__gt=row_id, **{rank: rk})
        )
        up: Sequence = list(queryset.filter(newer).order_by("timestamp", rank, "id")[: limit + 1])
        items = list(reversed(up[:limit]))
        return Page(
            items,
            _key(items[-1], rank, scope) if items else None,
            _key(items[0], rank, scope, before=True) if len(up) > limit else None,
        )
    qs = queryset.order_by(*ranked_newest_first(rank))
    if position is not None:
        ts, rk, row_id, _before = position
        qs = qs.filter(
            Q(timestamp__lt=ts) | Q(timestamp=ts, **{f"{rank}__lt": rk}) | Q(timestamp=ts, id__lt=row_id, **{rank: rk})
        )
    return ranked_newest_page(list(qs[: limit + 1]), rank, limit, scope, after_cursor=position is not None)


def ranked_newest_first(rank: str) -> tuple[str, str, str]:
    return ("-timestamp", f"-{rank}", "-id")


def ranked_newest_page(rows: Sequence, rank: str, limit: int, scope: str, *, after_cursor: bool = False) -> Page:
    """The page of `rows` read in ranked_newest_first order, limit + 1 of them (see activity.cursors.newest_page)."""
    items = list(rows[:limit])
    next_cursor = _key(items[-1], rank, scope) if len(rows) > limit else None
    previous_cursor = _key(items[0], rank, scope, before=True) if after_cursor and items else None
    return Page(items, next_cursor, previous_cursor)


def _key(row, rank: str, scope: str, *, before: bool = False) -> str:
    return encode_ranked(row.timestamp, getattr(row, rank), row.id, scope, before=before)
