"""Walking a source table by primary-key range: fixed-size chunks, streamed, resumable from a cursor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from activity.sources import SourceKind


@dataclass(frozen=True, slots=True)
class IdChunk:
    first_id: int
    last_id: int
    ids: list[int]


def iter_id_chunks(kind: SourceKind, batch_size: int, after_id: int = 0) -> Iterator[IdChunk]:
    """Yield the source's primary keys greater than `after_id` in ascending chunks of at most `batch_size`.

    One index-range query per chunk (`pk > last ORDER BY pk LIMIT n`): memory stays flat however large the table,
    and `last_id` of a finished chunk is a resume cursor.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    pk = kind.model._meta.pk.attname
    cursor = after_id
    while True:
        ids = list(
            kind.model._default_manager.filter(**{f"{pk}__gt": cursor})
            .order_by(pk)
            .values_list(pk, flat=True)[:batch_size]
        )
        if not ids:
            return
        yield IdChunk(ids[0], ids[-1], ids)
        cursor = ids[-1]
