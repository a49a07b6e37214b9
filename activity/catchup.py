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
* the watermark of a source moves only after all its rows in the window were recorded, and only forward. A row that
  cannot be recorded (activity.poison) does not hold it: it is set aside as a poison row and retried on its own.
* bounded work (ACTIVITY_SWEEP_MAX_ROWS_PER_RUN rows per source per run): a bigger backlog (a bulk import, an outage)
  is swept a bounded slice a minute; a run that stops early moves the watermark to the last row it covered and stores
  that keyset position, so the next run continues there rather than restarting the window.
* a finished backfill moves the watermarks of its sources to its start (advance_watermarks): the sweep does not
  rescan, nor count as lost, what the backfill recorded. While a backfill runs, what the sweep inserts for rows the
  backfill covers is counted apart (owned_by_backfill), not as lost tasks.
* two sweeps at once: the sweep takes a session advisory lock and a second one skips. Correctness does not depend on
  the lock (recording is idempotent, correctable rows are serialised by record_events_for's row locks, watermarks only
  move forward); it only saves the duplicate work.

Writes that send no signal and leave the change field alone (QuerySet.update, bulk_create of old rows, raw SQL) are
the nightly reconciliation's job, not this sweep's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from activity.models import BackfillRun, SweepWatermark
from activity.poison import isolate_and_record
from activity.sources import SOURCES, SourceKind
from monitoring import metrics

logger = logging.getLogger(__name__)

# pg advisory lock key (two-int form) held for the duration of a sweep; see activity.backfill for 4101.
SWEEP_LOCK = (4102, 0)


@dataclass
class SourceSweep:
    scanned: int = 0  # source rows re-derived
    found: int = 0  # events inserted (their live task was lost)
    owned_by_backfill: int = 0  # events inserted for rows an active backfill covers (not lost: not yet reached)
    poisoned: int = 0  # rows set aside as poison rows (activity.poison); the watermark moves past them
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

    @property
    def poisoned(self) -> int:
        return sum(s.poisoned for s in self.sources.values())

    def as_dict(self) -> dict:
        return {
            "skipped": self.skipped,
            "scanned": self.scanned,
            "found": self.found,
            "poisoned": self.poisoned,
            "failed": self.failed,
        }


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
        raise SweepFailedError(
            f"catch-up sweep failed for {', '.join(report.failed)}: "
            + "; ".join(report.sources[label].error for label in report.failed)
        )
    return report


def sweep_source(kind: SourceKind, now: datetime) -> SourceSweep:
    """Record the rows of one source changed in its window, at most ACTIVITY_SWEEP_MAX_ROWS_PER_RUN of them, then move
    its watermark: to the window's end when the window was covered, else to where this run stopped (the next run
    continues after that row)."""
    upper = now - timedelta(seconds=settings.ACTIVITY_SWEEP_GRACE_SECONDS)
    mark = SweepWatermark.objects.filter(source=kind.label).first()
    after: tuple[datetime, int] | None = None
    if mark is not None and mark.resume_changed_at is not None and mark.resume_id is not None:
        # The last run stopped mid-window: go on after its last row, not from the window's start (a bulk import
        # stamps more rows inside one overlap margin than a run may take; restarting there would never get past it).
        after = (mark.resume_changed_at, mark.resume_id)
        lower = mark.resume_changed_at
    else:
        start = (
            mark.watermark
            if mark is not None
            else now - timedelta(seconds=settings.ACTIVITY_SWEEP_INITIAL_LOOKBACK_SECONDS)
        )
        lower = start - timedelta(seconds=settings.ACTIVITY_SWEEP_OVERLAP_SECONDS)
    budget = settings.ACTIVITY_SWEEP_MAX_ROWS_PER_RUN
    owned_upto = backfill_owned_upto(kind.label)
    result = SourceSweep(window=(lower, upper))
    stopped_at: tuple[datetime, int] | None = None
    for ids, last_key in changed_pages(kind, lower, upper, settings.ACTIVITY_SWEEP_BATCH_SIZE, after=after):
        _record_page(kind.label, ids, owned_upto, result)
        if result.scanned >= budget:
            stopped_at = last_key
            break
    if stopped_at is None:
        _advance_watermark(kind.label, upper, result.found)
    else:
        logger.info(
            "catch-up sweep of %s stopped after %d rows (per-run bound); the next run continues after %s",
            kind.label,
            result.scanned,
            stopped_at,
        )
        _advance_watermark(kind.label, stopped_at[0], result.found, resume=stopped_at)
    return result


def _record_page(label: str, ids: list[int], owned_upto: int, result: SourceSweep) -> None:
    """Record one page, poison rows isolated. Rows an active backfill run will reach (key <= its upper bound) are
    recorded too (safe, idempotent), but what they insert was not lost by a live task: counted apart, no alarm."""
    owned = [i for i in ids if i <= owned_upto]
    others = [i for i in ids if i > owned_upto]
    for part, is_owned in ((owned, True), (others, False)):
        if not part:
            continue
        outcome = isolate_and_record(label, part, origin="sweep")
        result.scanned += len(part)
        result.poisoned += len(outcome.poisoned)
        if is_owned:
            result.owned_by_backfill += len(outcome.result.inserted)
            continue
        result.found += len(outcome.result.inserted)
        for event_type, n in outcome.result.by_type().items():
            metrics.SWEEP_FINDINGS.labels(event_type=event_type).inc(n)


def backfill_owned_upto(label: str) -> int:
    """The highest primary key of `label` that an active (not dry-run) backfill run covers; 0 when none does."""
    runs = BackfillRun.objects.filter(status__in=BackfillRun.ACTIVE_STATUSES, dry_run=False).values_list(
        "sources", "progress"
    )
    return max(
        (int(progress.get(label, {}).get("upto") or 0) for sources, progress in runs if label in sources), default=0
    )


def changed_pages(
    kind: SourceKind, lower: datetime, upper: datetime, batch_size: int, after: tuple[datetime, int] | None = None
) -> Iterator[tuple[list[int], tuple[datetime, int]]]:
    """(primary keys, keyset position of the last one) of rows with lower <= changed_field < upper, in
    (changed_field, pk) keyset order starting after `after`, `batch_size` at a time: one indexed range query per
    page, memory flat however many rows changed (e.g. after a long outage)."""
    changed = kind.changed_field
    pk = kind.model._meta.pk.attname
    window = kind.model._default_manager.filter(**{f"{changed}__gte": lower, f"{changed}__lt": upper})
    while True:
        page = window
        if after is not None:
            page = page.filter(Q(**{f"{changed}__gt": after[0]}) | Q(**{changed: after[0], f"{pk}__gt": after[1]}))
        rows = list(page.order_by(changed, pk).values_list(changed, pk)[:batch_size])
        if not rows:
            return
        after = rows[-1]
        yield [row_pk for _, row_pk in rows], after
        if len(rows) < batch_size:
            return


def changed_id_chunks(kind: SourceKind, lower: datetime, upper: datetime, batch_size: int) -> Iterator[list[int]]:
    """The primary keys of changed_pages, page by page."""
    for ids, _last in changed_pages(kind, lower, upper, batch_size):
        yield ids


def _advance_watermark(label: str, upper: datetime, found: int, resume: tuple[datetime, int] | None = None) -> None:
    with transaction.atomic():
        mark, created = SweepWatermark.objects.select_for_update().get_or_create(
            source=label,
            defaults={
                "watermark": upper,
                "last_found": found,
                "resume_changed_at": resume[0] if resume else None,
                "resume_id": resume[1] if resume else None,
            },
        )
        if created:
            return
        if resume is not None and mark.watermark > resume[0]:
            resume = None  # a backfill moved the watermark past where this run stopped: what lies between is covered
        mark.watermark = max(mark.watermark, upper)  # only forward, whatever a concurrent sweep or backfill did
        mark.last_found = found
        mark.resume_changed_at, mark.resume_id = resume if resume else (None, None)
        mark.save(update_fields=["watermark", "last_found", "resume_changed_at", "resume_id", "updated_at"])


def advance_watermarks(labels: Iterable[str], to: datetime) -> None:
    """Move the watermarks of these sources forward to `to` (never back): a finished backfill has recorded every row
    of them as it was when the run started, so the sweep need not rescan (or count as lost) what changed before."""
    labels = sorted(set(labels))
    with transaction.atomic():
        SweepWatermark.objects.filter(source__in=labels, watermark__lt=to).update(
            watermark=to, resume_changed_at=None, resume_id=None, updated_at=timezone.now()
        )
        SweepWatermark.objects.bulk_create(
            [SweepWatermark(source=label, watermark=to) for label in labels], ignore_conflicts=True
        )


def _try_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", list(SWEEP_LOCK))
        return bool(cursor.fetchone()[0])


def _unlock() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", list(SWEEP_LOCK))
    except Exception:  # noqa: BLE001 - a broken connection has released its session locks already
        logger.warning("could not release the sweep lock (connection lost?); it went with the connection")
