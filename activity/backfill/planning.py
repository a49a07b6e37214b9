"""Planning a run: which sources, how big a chunk, how many lanes, and each lane's key range of each source.

Pure input checks and the few catalogue reads a run needs at its start; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import connection
from django.db.models import Max, Min

from activity.sources import SOURCES, SourceKind, source_kind

# Above this many rows (planner estimate) a source's total is the estimate: an exact COUNT(*) of a huge table in the
# request that starts the run is not worth it (the total only feeds the percent and the ETA).
EXACT_COUNT_LIMIT = 5_000_000
MIN_BATCH_SIZE = 1
MAX_LANES = 8
# The first chunk of a source, before its events per row are known, takes at most this many rows.
PROBE_ROWS = 50


class BackfillError(ValueError):
    """Bad input to the backfill service; the message says what and what is allowed."""


def validate_sources(sources: Iterable[str] | None) -> list[str]:
    """The labels to backfill, in the canonical SOURCES order; all of them when none are given."""
    wanted = [s.strip() for s in (sources or []) if s and s.strip()]
    if not wanted:
        return list(SOURCES)
    unknown = sorted(set(wanted) - set(SOURCES))
    if unknown:
        raise BackfillError(f"Unknown source(s): {', '.join(unknown)}. Known sources: {', '.join(SOURCES)}.")
    return [label for label in SOURCES if label in set(wanted)]


def validate_batch_size(batch_size: int | str | None) -> int:
    if batch_size is None or batch_size == "":
        return int(settings.BACKFILL_DEFAULT_BATCH_SIZE)
    value = _whole_number("Batch size", batch_size)
    if not MIN_BATCH_SIZE <= value <= settings.BACKFILL_MAX_BATCH_SIZE:
        raise BackfillError(
            f"Batch size must be between {MIN_BATCH_SIZE} and {settings.BACKFILL_MAX_BATCH_SIZE}, got {value}."
        )
    return value


def validate_lanes(lanes: int | str | None) -> int:
    if lanes is None or lanes == "":
        return 1
    value = _whole_number("Lanes", lanes)
    if not 1 <= value <= MAX_LANES:
        raise BackfillError(f"Lanes must be between 1 and {MAX_LANES}, got {value}.")
    return value


def _whole_number(what: str, value: int | str) -> int:
    if isinstance(value, bool):
        raise BackfillError(f"{what} must be a whole number, got {value!r}.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BackfillError(f"{what} must be a whole number, got {value!r}.") from None


def plan_sources(labels: list[str], batch_size: int, lanes: int) -> dict[str, dict]:
    """The run's per-source plan (BackfillRun.progress): rows in scope, the highest key in scope, the lanes' key
    boundaries, the first chunk's size, and zeroed tallies."""
    plan = {}
    for label in labels:
        kind = source_kind(label)
        low, upto = pk_range(kind)
        plan[label] = {
            "total": row_count(kind, upto),
            "done": 0,
            "events": 0,
            "upto": upto,
            "bounds": split(low, upto, lanes),
            "rows_per_chunk": min(batch_size, PROBE_ROWS),
        }
    return plan


def pk_range(kind: SourceKind) -> tuple[int, int]:
    pk = kind.model._meta.pk.attname
    found = kind.model._default_manager.aggregate(low=Min(pk), high=Max(pk))
    return found["low"] or 0, found["high"] or 0


def split(low: int, high: int, lanes: int) -> list[int]:
    """Boundaries b0 < .. < bN: lane i walks keys in (b_i, b_i+1]. An even split of the key range (serial keys are
    dense enough that the lanes get similar shares)."""
    if not high:
        return [0] * (lanes + 1)
    start = low - 1
    width = high - start
    return [start + (width * i) // lanes for i in range(lanes)] + [high]


def row_count(kind: SourceKind, upto: int) -> int:
    if not upto:
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [kind.model._meta.db_table])
        row = cursor.fetchone()
    if row and row[0] > EXACT_COUNT_LIMIT:
        return int(row[0])
    pk = kind.model._meta.pk.attname
    return kind.model._default_manager.filter(**{f"{pk}__lte": upto}).count()


def next_size(batch_size: int, rows: int, events: int, current: int) -> int:
    """Rows for the next chunk of a source: as many as keep it within the events budget, at most the batch size."""
    if not rows:
        return current
    per_row = events / rows
    if per_row <= 0:
        return batch_size
    return max(1, min(batch_size, int(settings.BACKFILL_MAX_EVENTS_PER_CHUNK / per_row)))


def next_source(sources: list[str], label: str) -> str | None:
    position = sources.index(label)
    return sources[position + 1] if position + 1 < len(sources) else None
