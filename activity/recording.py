"""record_events_for: load source rows by id, derive their events, append them. Used by every entry point."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from activity.append import AppendResult, append
from activity.derivation import with_deleted
from activity.models import PoisonRow
from activity.overlapped import record_unrecorded
from activity.phases import phase
from activity.projection import recording_history
from activity.sources import SourceKind, source_kind
from activity.sql_arrays import int_array
from monitoring import metrics

logger = logging.getLogger(__name__)


LIVE_ORIGINS = frozenset({"live", "sweep"})


def record_events_for(
    source_label: str, ids: Sequence[int], *, dry_run: bool = False, origin: str = "live", overlap: bool = False
) -> AppendResult:
    """Record the events implied by the current state of the given rows of one source table.

    A row that no longer exists is compensated: its derivation is empty and authoritative over every type its source
    records (SourceKind.recorded_types), so whatever the ledger still counts for it is cancelled by `*_reversed`
    events stamped with the time of this recording. Safe to call any
    number of times, concurrently, in any order: the result converges on the rows' latest state. `origin` (live,
    sweep, backfill, reconcile) labels the metrics and logs. `overlap` (a backfill with a core to spare) records rows
    the ledger holds nothing of with their derivation beside their insert (activity.overlapped).
    """
    kind = source_kind(source_label)
    ids = sorted({int(i) for i in ids})
    if not ids:
        return AppendResult()
    owns_transaction = not connection.in_atomic_block
    with transaction.atomic():
        if owns_transaction:
            skip_wal_flush_wait()
        with phase("lock source rows"):
            _lock_rows(kind, ids)
        # Loaded after the lock: a derivation that compensates must see the state no other recorder is acting on.
        with nullcontext() if origin in LIVE_ORIGINS else recording_history():
            overlapped = record_unrecorded(kind, ids) if overlap and not dry_run else None
            if overlapped is not None:
                result, missing = overlapped
            else:
                result, missing = _record_in_turn(kind, ids, dry_run=dry_run, origin=origin)
        if not dry_run:  # any successful recording of a poison row resolves it (gone rows included: nothing to do)
            with phase("resolve poison rows"):
                PoisonRow.objects.resolve(kind.label, ids)
    if missing:
        verb = "compensated" if kind.recorded_types else "skipped (deletion not compensated)"
        logger.info(
            "record_events_for %s: %d row(s) no longer exist, %s: %s", source_label, len(missing), verb, missing[:20]
        )
    if result.inserted:
        _observe(result, origin)
        logger.info(
            "%s: recorded %d event(s) for %s ids %s",
            origin,
            len(result.inserted),
            source_label,
            ids if len(ids) <= 10 else f"{ids[0]}..{ids[-1]} ({len(ids)} rows)",
        )
    return result


def _record_in_turn(
    kind: SourceKind, ids: Sequence[int], *, dry_run: bool, origin: str
) -> tuple[AppendResult, list[int]]:
    """Load, derive and append the rows (locked), one step after the other; returns the result and the ids that no
    longer exist."""
    with phase("load sources"):  # the loaders charge their pure derivation to "derive"
        derivations = kind.load(ids)
    derivations, missing = with_deleted(kind.label, ids, derivations, kind.recorded_types, timezone.now())
    if kind.dependents is not None and origin in LIVE_ORIGINS and not dry_run:
        derivations = [*derivations, *_dependent_derivations(kind, ids)]
    # The reconciliation re-derives rows whose events are nearly all recorded: ask the ledger which keys it
    # lacks before sending any (live, sweep and backfill recordings are mostly new events: no extra query).
    result = append(derivations, dry_run=dry_run, only_missing=origin == "reconcile", expect_new=origin == "backfill")
    return result, missing


def _dependent_derivations(kind: SourceKind, ids: Sequence[int]) -> list:
    """The rows of another source whose derivation reads these (a match's tournament result: its placements), loaded
    under their own row locks, taken after this source's in the one order every recorder takes them. They go to the
    same append as these rows' derivations: one transaction, and the stats rows of all their users locked once, in
    one order (two appends in one transaction could lock them in an order another recorder reverses)."""
    assert kind.dependents is not None
    label, dependent_ids = kind.dependents
    found = dependent_ids(ids)
    if not found:
        return []
    dependent = source_kind(label)
    _lock_rows(dependent, found)
    return dependent.load(found)


def _observe(result: AppendResult, origin: str) -> None:
    for event_type, n in result.by_type().items():
        metrics.EVENTS_RECORDED.labels(event_type=event_type, origin=origin).inc(n)
    if origin in LIVE_ORIGINS:
        now = timezone.now()
        for event in result.inserted:
            metrics.RECORDING_LAG.labels(origin=origin).observe(max((now - event.timestamp).total_seconds(), 0.0))


def skip_wal_flush_wait() -> None:
    """Commit this recording without waiting for its WAL flush (synchronous_commit=off for this transaction only).

    Safe because everything it writes is derived: the source rows were committed durably by the request, and the
    catch-up sweep and reconciliation re-derive whatever a crash loses. A PostgreSQL crash can lose the last few
    hundred milliseconds of recordings - their events and stats together, never one without the other - and never
    corrupts anything. It takes the per-commit fsync (about 4 ms on this machine kind) out of every task. Only when
    this call owns the transaction: a caller's enclosing transaction keeps its own durability.
    """
    if settings.ACTIVITY_ASYNC_COMMIT:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


# Rows per advisory lock: ids are folded into granules of this many consecutive keys, one lock each. One lock per row
# made a chunk of n rows take n locks, and PostgreSQL's shared lock table (max_locks_per_transaction x connections)
# ran out at about 10,000 rows in one transaction; a granule serialises a live recording only with recordings of its
# 63 neighbouring ids, briefly.
LOCK_GRANULE = 64


def _lock_rows(kind: SourceKind, ids: Sequence[int]) -> None:
    """Serialise recorders of the same row (advisory locks, taken in key order; they never block the
    requests that write the source rows)."""
    if kind.lock_space is None:
        return
    with connection.cursor() as cursor:
        # The two-key lock form takes int4 keys while ids are bigint: fold each granule into int4 range. Two granules
        # that fold onto one key only serialise each other, which is harmless; locks are still taken in key order.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, k) FROM (SELECT DISTINCT ((g / %s) %% 2147483647)::int AS k "
            "FROM unnest(%s::bigint[]) AS g ORDER BY 1) AS keys",
            [kind.lock_space, LOCK_GRANULE, int_array(ids)],
        )
        cursor.fetchall()
