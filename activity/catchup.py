"""Catch-up sweep: re-derive the source rows changed since a stored watermark, so a lost task costs minutes, not events.

Every minute (beat, queue `events`) each source's rows whose change time (SourceKind.changed_field) lies in
[watermark - overlap, now - grace) are recorded again through record_events_for(origin="sweep"). Re-recording a row
whose live task did run adds nothing (the ledger's unique key); whatever the sweep does insert is an event whose task
was lost, counted in SWEEP_FINDINGS.

* overlap (ACTIVITY_SWEEP_OVERLAP_SECONDS, 2 min): a row's change time is stamped before its transaction commits; a
  long transaction can commit after a sweep has moved past that time. Windows overlap by this margin so such a row is
  still seen by the next sweep. The same margin absorbs clock skew between the machines that stamp rows.
* grace (ACTIVITY_SWEEP_GRACE_SECONDS): rows younger than this are left to their live task (normally done in well
  under a second), so findings are lost tasks rather than tasks still in flight. A lost event is recorded within
  grace + beat interval + sweep time, about a minute and a half.
* the watermark of a source moves only after all its rows in the window were recorded, and only forward.
* two sweeps at once: the sweep takes a session advisory lock and a second one skips. Correctness does not depend on
  the lock (recording is idempotent, correctable rows are serialised by record_events_for's row locks, watermarks only
  move forward); it only saves the duplicate work.

Writes that send no signal and leave the change field alone (QuerySet.update, bulk_create of old rows, raw SQL) are
the nightly reconciliation's job, not this sweep's.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from activity.models import SweepWatermark
from activity.recording import record_events_for
from activity.sources import SOURCES, SourceKind
from monitoring import metrics

logger = logging.getLogger(__name__)

# pg advisory lock key (two-int form) held for the duration of a sweep; see activity.backfill for 4101.
SWEEP_LOCK = (4102, 0)


@dataclass
class SourceSweep:
    scanned: int = 0  # source rows re-derived
    found: int = 0  # events inserted (their live task was lost)
    window: tuple[datetime, datetime] | None = None
    error: str = ""


@dataclass
class SweepReport:
    skipped: bool = False  # another sweep held the lock
    sources: dict[str, SourceSweep] = field(default_factory=dict)

    @property
    def found(self) -> int:
        return sum(s.found for s in self.sources.values())

    @property
    def scanned(self) -> int:
        return sum(s.scanned for s in self.sources.values())

    @property
    def failed(self) -> list[str]:
        return [label for label, s in self.sources.items() if s.error]

    def as_dict(self) -> dict:
        return {"skipped": self.skipped, "scanned": self.scanned, "found": self.found, "failed": self.failed}


class SweepFailedError(RuntimeError):
    """Some sources could not be swept; their watermarks did not move and the next sweep retries them."""


def sweep(now: datetime | None = None) -> SweepReport:
    """Sweep every source once. Returns what was scanned and found; raises SweepFailedError (after sweeping the other
    sources) if any source failed."""
    report = SweepReport()
    if not _try_lock():
        logger.info("catch-up sweep skipped: another sweep is running")
        report.skipped = True
        return report
    try:
        now = now or timezone.now()
        for label, kind in SOURCES.items():
            try:
                report.sources[label] = sweep_source(kind, now)
            except Exception as exc:  # noqa: BLE001 - one bad source must not starve the others
                logger.exception("catch-up sweep of %s failed; its watermark stays", label)
                report.sources[label] = SourceSweep(error=f"{type(exc).__name__}: {exc}")
    finally:
        _unlock()
    if report.found:
        logger.warning("catch-up sweep recorded %d event(s) whose live task was lost", report.found)
    if report.failed:
        raise SweepFailedError(f"catch-up sweep failed for {', '.join(report.failed)}: "
                               + "; ".join(report.sources[label].error for label in report.failed))
    return report


def sweep_source(kind: SourceKind, now: datetime) -> SourceSweep:
    """Record the rows of one source changed in its window, then move its watermark to the window's end."""
    upper = now - timedelta(seconds=settings.ACTIVITY_SWEEP_GRACE_SECONDS)
    mark = SweepWatermark.objects.filter(source=kind.label).values_list("watermark", flat=True).first()
    start = mark if mark is not None else now - timedelta(seconds=settings.ACTIVITY_SWEEP_INITIAL_LOOKBACK_SECONDS)
    lower = start - timedelta(seconds=settings.ACTIVITY_SWEEP_OVERLAP_SECONDS)
    result = SourceSweep(window=(lower, upper))
    for ids in changed_id_chunks(kind, lower, upper, settings.ACTIVITY_SWEEP_BATCH_SIZE):
        recorded = record_events_for(kind.label, ids, origin="sweep")
        result.scanned += len(ids)
        result.found += len(recorded.inserted)
        for event_type, n in recorded.by_type().items():
            metrics.SWEEP_FINDINGS.labels(event_type=event_type).inc(n)
    _advance_watermark(kind.label, upper, result.found)
    return result


def changed_id_chunks(kind: SourceKind, lower: datetime, upper: datetime, batch_size: int) -> Iterator[list[int]]:
    """Primary keys of rows with lower <= changed_field < upper, in (changed_field, pk) keyset order, `batch_size` at
    a time: one indexed range query per chunk, memory flat however many rows changed (e.g. after a long outage)."""
    changed = kind.changed_field
    pk = kind.model._meta.pk.attname
    window = kind.model.objects.filter(**{f"{changed}__gte": lower, f"{changed}__lt": upper})
    after: tuple[datetime, int] | None = None
    while True:
        page = window
        if after is not None:
            page = page.filter(Q(**{f"{changed}__gt": after[0]}) | Q(**{changed: after[0], f"{pk}__gt": after[1]}))
        rows = list(page.order_by(changed, pk).values_list(changed, pk)[:batch_size])
        if not rows:
            return
        yield [row_pk for _, row_pk in rows]
        if len(rows) < batch_size:
            return
        after = rows[-1]


def _advance_watermark(label: str, upper: datetime, found: int) -> None:
    with transaction.atomic():
        mark, created = SweepWatermark.objects.select_for_update().get_or_create(
            source=label, defaults={"watermark": upper, "last_found": found})
        if not created and upper > mark.watermark:  # only forward, whatever a concurrent sweep did
            mark.watermark, mark.last_found = upper, found
            mark.save(update_fields=["watermark", "last_found", "updated_at"])


def _try_lock() -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite: one process, writers serialised; the sweep is idempotent anyway
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", list(SWEEP_LOCK))
        return bool(cursor.fetchone()[0])


def _unlock() -> None:
    if connection.vendor != "postgresql":
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", list(SWEEP_LOCK))
    except Exception:  # noqa: BLE001 - a broken connection has released its session locks already
        logger.warning("could not release the sweep lock (connection lost?); it went with the connection")
