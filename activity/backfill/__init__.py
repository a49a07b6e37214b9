"""Backfill: record the events of all existing source rows, chunk after chunk, through the one recording path.

A run walks each chosen source table by primary-key range (activity.chunks.iter_id_chunks) up to the highest key
present when it started (later rows are recorded live). Each chunk is one task and one transaction: the events go
through record_events_for (derive, INSERT .. ON CONFLICT DO NOTHING, stats projection) and the lane's cursor and
counts (a BackfillLane row, locked for the chunk) and the run's totals are written in that same transaction, so a
worker killed mid-chunk leaves the lane exactly at its last committed chunk. The next chunk is enqueued only after
the commit, so live work on other queues interleaves.

Chunks are bounded twice: by the operator's batch size (source rows) and by an events budget
(BACKFILL_MAX_EVENTS_PER_CHUNK): a source whose rows imply many events (a tournament result: one event per entrant)
gets proportionally fewer rows per chunk, learnt from the chunk before. Worker memory and the time a chunk holds its
stats-row locks stay flat whatever the table.

A run has one or more lanes: chains of chunks over disjoint key ranges of every source, executing in parallel on as
many worker processes (the default, one lane, keeps one process for live recording on a two-process worker).

Modules: `planning` (input checks, key ranges), `chunks` (one chunk's work), `state` (the only writer of the run's
and lanes' rows), `scheduling` (publishing through dispatch), `service` (start / cancel / resume), `progress`
(reading it back). The names below are the public API.
"""

from __future__ import annotations

from activity.backfill.chunks import ChunkOutcome, run_backfill_chunk
from activity.backfill.planning import (
    MAX_LANES,
    MIN_BATCH_SIZE,
    PROBE_ROWS,
    BackfillError,
    validate_batch_size,
    validate_lanes,
    validate_sources,
)
from activity.backfill.progress import (
    LaneProgress,
    Progress,
    SourceProgress,
    eta_of,
    format_duration,
    percent_of,
    progress_of,
)
from activity.backfill.service import cancel_backfill, drive_inline, resume_stale_backfills, start_backfill
from activity.sources import SOURCES

__all__ = [
    "MAX_LANES",
    "MIN_BATCH_SIZE",
    "PROBE_ROWS",
    "SOURCES",
    "BackfillError",
    "ChunkOutcome",
    "LaneProgress",
    "Progress",
    "SourceProgress",
    "cancel_backfill",
    "drive_inline",
    "eta_of",
    "format_duration",
    "percent_of",
    "progress_of",
    "resume_stale_backfills",
    "run_backfill_chunk",
    "start_backfill",
    "validate_batch_size",
    "validate_lanes",
    "validate_sources",
]
