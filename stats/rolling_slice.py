"""The nightly reconciliation's rolling slice: a fixed partition of any id space into N slices, one per night.

One run takes one slice for both of its passes (stats.nightly_sources: source row ids; stats.nightly_stats: user
ids), the slice after the last successful nightly run's, so any N consecutive successful nightly runs cover every id
of both spaces.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from stats.models import ReconciliationRun

SLICE_BLOCK = 1024  # consecutive ids per block of a rolling slice: a slice's rows come in runs (one range scan each)


@dataclass(frozen=True, slots=True)
class IdSlice:
    """Slice `index` of `count`: the ids whose block of SLICE_BLOCK consecutive ids has number = index (mod count).
    A fixed partition of the key space, so slices 0..count-1 together hold every id, whatever ids are added."""

    index: int
    count: int

    def __contains__(self, an_id: int) -> bool:
        return (an_id // SLICE_BLOCK) % self.count == self.index

    def blocks(self, top: int) -> Iterator[tuple[int, int]]:
        """The slice's id ranges [lo, hi) up to and including id `top`."""
        for block in range(self.index, top // SLICE_BLOCK + 1, self.count):
            yield block * SLICE_BLOCK, (block + 1) * SLICE_BLOCK

    def __str__(self) -> str:
        return f"{self.index + 1}/{self.count}"


def next_slice(count: int) -> IdSlice:
    """The slice after the last successful nightly run's (slice 0 first, or when N changed since)."""
    last = (
        ReconciliationRun.objects.filter(
            status=ReconciliationRun.Status.SUCCEEDED,
            scope=ReconciliationRun.Scope.ALL,
            sources_mode="nightly",
            slice_count=count,
        )
        .order_by("-started_at", "-id")
        .values_list("slice_index", flat=True)
        .first()
    )
    return IdSlice(0 if last is None else (last + 1) % count, count)
