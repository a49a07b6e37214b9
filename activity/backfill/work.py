"""What one chunk found and did: handed from the chunk executor (chunks.py) to the state writer (state.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from activity.chunks import IdChunk


@dataclass
class ChunkWork:
    """What one chunk found and did, before it is committed to the lane and the run."""

    label: str  # the source the chunk walked (or, when the lane is exhausted, the last one it looked at)
    chunk: IdChunk | None
    size: int  # the row limit the chunk was taken with
    high: int  # the lane's upper key bound in `label`
    began: datetime = field(default_factory=timezone.now)
    created: int = 0
    derived: int = 0
    poisoned: int = 0
    by_type: dict[str, int] = field(default_factory=dict)

    @property
    def exhausted(self) -> bool:
        """The lane has no more rows of `label` after this chunk."""
        chunk = self.chunk
        return chunk is None or len(chunk.ids) < self.size or chunk.last_id >= self.high
