"""Poison rows: a source row that cannot be recorded is set aside, never allowed to stop the job that met it.

Every bulk path (catch-up sweep, both reconciliation passes, backfill, the poison retry job) records its chunks
through `isolate_and_record`. A chunk that fails with a row-level error is split in halves, inside savepoints, until
the failing rows are alone: the good rows are recorded in the same transaction, the bad ones are upserted into
PoisonRow (one statement) with their error and a retry time that backs off exponentially. Database trouble
(OperationalError, InterfaceError: a lock timeout, a lost connection) is about the moment, not a row, and propagates
so the whole job retries as before.

An event for an account with no profile (the profile was deleted in the admin, or the user was created without the
platform's receivers) is such a row: the projection's stats row is keyed by the profile, so there is nowhere to count
it. It becomes a poison row "user N has no profile" - not silently dropped - and `retry_due_poison_rows` records it
by itself once the profile is re-created. Erased users never hit this: erasure re-points their source rows to the
tombstone account, which has a profile.

A poison row is resolved (resolved_at set) by any later successful recording of its source row (record_events_for
resolves the ids it recorded), or by the retry job when the source row no longer exists.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.utils import timezone
from psycopg import sql

from activity.append import AppendResult
from activity.models import PoisonRow
from activity.recording import record_events_for
from activity.sources import source_kind
from esports.profiles.models import UserProfile
from monitoring import metrics

logger = logging.getLogger(__name__)

# Errors about the database, not a row: the job retries as a whole (the live drain uses the same split).
RETRYABLE = (OperationalError, InterfaceError)
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)
ERROR_MAX_CHARS = 2000
MISSING_PROFILE = "MissingProfile"
RETRY_BATCH = 1000  # due poison rows per retry run (oldest due first); the next run takes the rest

_TABLE = PoisonRow._meta.db_table


@dataclass
class Isolated:
    """What a chunk came to: the recordings of its good rows merged, and its poison rows (id -> error)."""

    result: AppendResult = field(default_factory=AppendResult)
    poisoned: dict[int, tuple[str, str]] = field(default_factory=dict)

    def add(self, result: AppendResult) -> None:
        self.result.derived += result.derived
        self.result.inserted.extend(result.inserted)
        self.result.would_insert += result.would_insert
        self.result.would_insert_by_type.update(result.would_insert_by_type)


def isolate_and_record(
    label: str, ids: Sequence[int], *, origin: str, dry_run: bool = False, overlap: bool = False
) -> Isolated:
    """Record the rows through record_events_for, isolating the rows that fail; returns the merged result and the
    poison rows, which (unless `dry_run`: a report-only run writes nothing) are upserted into PoisonRow. `overlap`
    goes to record_events_for.

    Runs in one transaction (a savepoint of the caller's, if any): a backfill chunk commits its good rows, its
    poison rows and its cursor together. Raises only RETRYABLE errors.
    """
    outcome = Isolated()
    ids = sorted({int(i) for i in ids})
    if not ids:
        return outcome
    # No savepoint of its own (savepoint=False): each attempt below is one already, so a clean chunk costs the
    # caller's transaction no extra round trips but the SET CONSTRAINTS.
    with transaction.atomic(savepoint=False):
        _constraints_immediate()
        _record_or_split(label, ids, origin, dry_run, overlap, outcome)
        if outcome.poisoned and not dry_run:
            mark_poison(label, outcome.poisoned, origin=origin)
    if outcome.poisoned:
        metrics.POISON_ROWS.labels(source=label, origin=origin).inc(len(outcome.poisoned))
        logger.error(
            "%s: %d %s row(s) could not be recorded and were set aside as poison rows: %s",
            origin,
            len(outcome.poisoned),
            label,
            "; ".join(f"{pk}: {err}" for pk, (_cls, err) in list(outcome.poisoned.items())[:5]),
        )
    return outcome


def _constraints_immediate() -> None:
    """Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: a row whose stats row cannot exist (no profile) would
    fail only at COMMIT, after every savepoint was released, taking the whole chunk with it. Checked at each statement
    instead, the failure lands inside the savepoint of the rows that caused it."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _record_or_split(label: str, ids: list[int], origin: str, dry_run: bool, overlap: bool, outcome: Isolated) -> None:
    """Bisection: k bad rows among n cost O(k log n) attempts, and a clean chunk (the normal case) exactly one."""
    try:
        # record_events_for runs in its own atomic block, a savepoint here (we are inside a transaction): a failure
        # rolls back exactly this attempt and leaves the transaction usable for the next.
        outcome.add(record_events_for(label, ids, dry_run=dry_run, origin=origin, overlap=overlap))
        return
    except RETRYABLE:
        raise
    except Exception as exc:  # noqa: BLE001 - a row-level failure: isolated below
        if len(ids) == 1:
            outcome.poisoned[ids[0]] = describe_failure(label, ids[0], exc)
            return
    middle = len(ids) // 2
    _record_or_split(label, ids[:middle], origin, dry_run, overlap, outcome)
    _record_or_split(label, ids[middle:], origin, dry_run, overlap, outcome)


def describe_failure(label: str, pk: int, exc: BaseException) -> tuple[str, str]:
    """(error class, message) for one row that failed. A missing profile surfaces as a foreign-key violation of the
    stats row; name the cause instead ("user N has no profile"), which is what the operator has to fix."""
    if isinstance(exc, IntegrityError):
        missing = _users_without_profile(label, pk)
        if missing:
            users = ", ".join(str(u) for u in missing)
            return MISSING_PROFILE, f"user {users} has no profile" if len(
                missing
            ) == 1 else f"users {users} have no profile"
    return type(exc).__name__[:100], f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]


def _users_without_profile(label: str, pk: int) -> list[int]:
    try:
        with transaction.atomic():
            users = {e.user_id for d in source_kind(label).load([pk]) for e in d.events}
    except RETRYABLE:
        raise
    except Exception:  # noqa: BLE001 - the derivation itself fails: the original error describes it
        return []
    have = set(UserProfile.objects.filter(pk__in=users).values_list("pk", flat=True))
    return sorted(users - have)


def mark_poison(label: str, failures: dict[int, tuple[str, str]], *, origin: str, now: datetime | None = None) -> None:
    """Upsert the failures, one statement: a new row starts at 1 attempt, a known one counts one more attempt and
    waits twice as long before the next (BACKOFF_BASE * 2^(attempts-1), at most BACKOFF_CAP); a resolved one that fails
    again starts over."""
    now = now or timezone.now()
    ids = sorted(failures)
    classes = [failures[i][0] for i in ids]
    errors = [failures[i][1][:ERROR_MAX_CHARS] for i in ids]
    query = sql.SQL(_UPSERT).format(table=sql.Identifier(_TABLE)).as_string(connection.connection)
    with connection.cursor() as cursor:
        cursor.execute(
            query,
            {
                "source": label,
                "origin": origin,
                "now": now,
                "ids": ids,
                "classes": classes,
                "errors": errors,
                "base": BACKOFF_BASE.total_seconds(),
                "cap": BACKOFF_CAP.total_seconds(),
            },
        )


_UPSERT = """
INSERT INTO {table} AS p (source, source_id, error_class, error, origin, first_seen, last_seen, attempts,
                          next_attempt_at, resolved_at)
SELECT %(source)s, x.id, x.cls, x.err, %(origin)s, %(now)s, %(now)s, 1,
       %(now)s + make_interval(secs => %(base)s), NULL
FROM unnest(%(ids)s::bigint[], %(classes)s::text[], %(errors)s::text[]) AS x(id, cls, err)
ON CONFLICT (source, source_id) DO UPDATE SET
    attempts = CASE WHEN p.resolved_at IS NULL THEN p.attempts + 1 ELSE 1 END,
    first_seen = CASE WHEN p.resolved_at IS NULL THEN p.first_seen ELSE EXCLUDED.first_seen END,
    next_attempt_at = EXCLUDED.last_seen + make_interval(secs => CASE WHEN p.resolved_at IS NULL
        THEN LEAST(%(cap)s, %(base)s * power(2, LEAST(p.attempts, 30))) ELSE %(base)s END),
    last_seen = EXCLUDED.last_seen, error = EXCLUDED.error, error_class = EXCLUDED.error_class,
    origin = EXCLUDED.origin, resolved_at = NULL
"""


# --- the retry job ----------------------------------------------------------------------------------------------


@dataclass
class RetryReport:
    retried: int = 0
    resolved: int = 0  # recorded now, or their source row is gone
    still_poison: int = 0
    unresolved: int = 0  # after this run, all sources

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def retry_due_poison_rows(now: datetime | None = None, limit: int = RETRY_BATCH) -> RetryReport:
    """Record again the poison rows whose retry time has come (oldest due first, at most `limit`): each that now
    records - or whose source row was deleted meanwhile - is resolved (by record_events_for), the others back off
    further. Sets the unresolved gauge."""
    now = now or timezone.now()
    due = list(
        PoisonRow.objects.unresolved()
        .filter(next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("source", "source_id")[:limit]
    )
    return _retry(due)


def retry_now(rows: Iterable[PoisonRow]) -> RetryReport:
    """The admin's "retry now": the chosen unresolved rows, whatever their retry time."""
    return _retry([(r.source, r.source_id) for r in rows if r.resolved_at is None])


def _retry(keys: Sequence[tuple[str, int]]) -> RetryReport:
    report = RetryReport()
    by_source: dict[str, list[int]] = {}
    for label, pk in keys:
        by_source.setdefault(label, []).append(pk)
    for label, ids in sorted(by_source.items()):
        outcome = isolate_and_record(label, ids, origin="retry")
        report.retried += len(ids)
        report.still_poison += len(outcome.poisoned)
    report.resolved = report.retried - report.still_poison
    report.unresolved = PoisonRow.objects.unresolved().count()
    metrics.POISON_UNRESOLVED.set(report.unresolved)
    if report.retried:
        logger.info(
            "poison retry: %d retried, %d resolved, %d still failing, %d unresolved in all",
            report.retried,
            report.resolved,
            report.still_poison,
            report.unresolved,
        )
    return report
