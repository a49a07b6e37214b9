"""Reconciliation: prove that every user's stats equal their ledger, and repair what does not.

Two passes, one service (the command, the admin button and the nightly task all call `run_reconciliation`):

1. sources -> ledger: source rows are re-derived through `record_events_for` (the one append path) - every row in a
   full run, chunked by primary-key range; in a nightly run the rows changed since the last repairing run, their
   dependents and one rolling slice (stats.nightly_sources, in lanes: stats.nightly_lanes). Events it inserts (or,
   report only, would insert) are events no signal or sweep delivered - rows written with `QuerySet.update`, raw
   SQL or `bulk_create` - counted per source and event type. A row that cannot be recorded is set aside as a poison
   row (activity.poison) and counted on the run; the pass, and pass 2, go on.
2. ledger -> stats: one set-based statement per set of users (stats.user_sets) returns only the drifted users with
   the value of every field on both sides (users with events but no stats row included) - every user, or in a
   nightly run the users with new events and the run's slice of users (stats.nightly_stats). Being one statement,
   it reads ledger and stats in one snapshot, and every writer of the projection commits its counter change in the
   transaction that changes the ledger - so live recording running meanwhile is never seen as drift, and no lock is
   taken (live recording never waits for a nightly run; a report-only run writes nothing). Repair goes through
   recompute_stats: the drifted users' rows are locked in user-id order and aggregated again under the lock, so a
   live delta committed meanwhile is counted, never overwritten.

Around them the economy pass (stats.economy_pass: its ledger side before both, its wallet side beside them) and the
ratings check (stats.ratings.check, one snapshot, beside them).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from activity.changes import claim_changes, delete_claimed
from activity.chunks import iter_id_chunks
from activity.models import UserActivity
from activity.orphans import MAX_ID as MAX_SOURCE_ID
from activity.orphans import orphaned_source_ids
from activity.poison import isolate_and_record
from activity.sources import SOURCES
from esports.profiles.models import UserProfile
from monitoring import metrics
from stats.alongside import alongside
from stats.audit_trail import audit_drift_repaired, audit_reconciliation_run
from stats.counters import COUNTER_FIELDS, EFFECTS, counter_sql, grouped_measure, quote_event_type, reads_amount
from stats.derived import refresh_derived_figures
from stats.economy_pass import check_ledger_side, format_economy_report, run_economy_pass
from stats.models import ReconciliationRun, UserProfileStats
from stats.nightly_sources import nightly_pass
from stats.nightly_stats import NEW_EVENTS, StatsCoverage, coverage_for, ledger_high_water
from stats.ratings.check import reconcile_ratings
from stats.recompute import recompute_stats
from stats.rolling_slice import IdSlice, next_slice
from stats.scoped_reconcile import ScopedDrift, scoped_drift
from stats.user_sets import USER_SETS, UserRange, UserSet, every_user, one_user

logger = logging.getLogger(__name__)

CHUNK_USERS = (
    50_000  # users per comparison statement (one snapshot each; no locks, so big chunks cost live traffic nothing)
)
SOURCE_BATCH = 1000  # source rows per record_events_for call in the sources -> ledger pass
DRIFT_ALERT_RATIO = 0.01  # drift above 1% of the users checked is an incident, not noise
SAMPLE_SIZE = 20  # drifted users kept (with their differing fields) on the run, for the operator
LAST_ACTIVITY = "last_activity_at"
FIELDS: tuple[str, ...] = (*COUNTER_FIELDS, LAST_ACTIVITY)
NO_STATS_ROW = "no_stats_row"  # pseudo-field: the user has events but no stats row at all

_STATS = UserProfileStats._meta.db_table
_PROFILES = UserProfile._meta.db_table
_LEDGER = UserActivity._meta.db_table
# Session-level advisory lock key ("RECN"): one reconciliation at a time across every process.
_RUN_LOCK_KEY = 0x5245434E


class ReconciliationError(ValueError):
    """Bad input (for example an unknown user id); nothing was started."""


class ReconciliationAlreadyRunning(RuntimeError):
    """Another reconciliation holds the run lock; this one did not start."""


@dataclass(frozen=True, slots=True)
class DriftedUser:
    user_id: int
    missing_row: bool
    # field -> (stats value, ledger value); stats value is None when the user has no stats row.
    fields: dict[str, tuple[object, object]]
    has_profile: bool = True  # False: no stats row can exist for this user (its key is the profile)

    def as_json(self) -> dict:
        return {
            "user_id": self.user_id,
            "missing_row": self.missing_row,
            "fields": {f: {"stats": _jsonable(s), "ledger": _jsonable(v)} for f, (s, v) in self.fields.items()},
        }


@dataclass
class StatsPassResult:
    users_checked: int = 0
    users_appended: int | None = None  # a rolling nightly comparison: the users of it compared for their new events
    users_drifted: int = 0
    users_fixed: int = 0
    field_drift: Counter = field(default_factory=Counter)
    sample: list[DriftedUser] = field(default_factory=list)
    unrepairable: list[int] = field(default_factory=list)


Progress = Callable[[str], None]


def run_reconciliation(
    *,
    fix: bool = False,
    user_id: int | None = None,
    skip_sources: bool = False,
    trigger: str = "command",
    progress: Progress | None = None,
    chunk_users: int = CHUNK_USERS,
    source_batch: int = SOURCE_BATCH,
    full: bool = False,
    slice_count: int | None = None,
) -> ReconciliationRun:
    """Run both passes (the sources pass only for a full run), record a ReconciliationRun and set the drift metrics.

    The sources pass is the nightly one (stats.nightly_sources: the change log's rows with their dependents, plus
    rolling slice 1 of `slice_count`, default settings.RECONCILE_SLICES) unless `full`, which re-derives every
    source row. Either way a repairing run that succeeds consumes the change log rows it claimed.

    `fix` records the missing events and sets drifted users' stats to the ledger's values; without it nothing is
    written but the run's own row. A user-scoped run checks that user's stats only (source rows cannot be scoped to
    one user cheaply) and leaves the fleet-wide drift gauges alone. Raises ReconciliationError on bad input and
    ReconciliationAlreadyRunning when another run is in progress; any other failure is stored on the run (status
    failed) and re-raised.
    """
    say = _serialised(progress) if progress else (lambda message: None)
    if chunk_users < 1 or source_batch < 1:
        raise ReconciliationError("chunk sizes must be at least 1")
    if user_id is not None and not UserProfile.objects.filter(pk=user_id).exists():
        raise ReconciliationError(f"no user with id {user_id} (no profile with that id)")
    with _exclusive_run():
        _close_interrupted_runs()
        run = ReconciliationRun.objects.create(
            started_at=timezone.now(),
            fix=fix,
            trigger=trigger,
            scope=ReconciliationRun.Scope.USER if user_id is not None else ReconciliationRun.Scope.ALL,
            scope_user_id=user_id,
            sources_checked=not skip_sources and user_id is None,
            sources_mode="full" if full else "nightly",
        )
        began = time.monotonic()
        # A nightly run takes one rolling slice for both passes (stats.rolling_slice); a run of one user, of the
        # stats only or a full one compares every user's stats.
        nightly = run.sources_checked and not full
        id_slice = next_slice(slice_count or settings.RECONCILE_SLICES) if nightly else None
        if id_slice is not None:
            run.slice_index, run.slice_count = id_slice.index, id_slice.count
        try:
            # First, so its findings are what the passes below then repair (stats.economy_pass).
            ledger_side = check_ledger_side(run, progress=say)
            if not run.sources_checked:
                say("sources -> ledger: skipped" + (" (one user)" if user_id is not None else ""))
            # The sources pass beside the economy's wallet side, the stats pass and the ratings check: the sources
            # pass is Python-bound (deriving rows), the others mostly wait on PostgreSQL (aggregating), so on two
            # cores they overlap instead of adding up. They are independent: what the sources pass records goes
            # through the append path, which moves the stats (and marks a game for a rating replay) in the same
            # transaction, exactly like live traffic, which neither the stats pass nor the ratings check reads as
            # drift; it never touches a wallet or a profile mirror.
            sources = partial(_sources_pass, run, id_slice=id_slice, batch_size=source_batch, progress=say)
            if user_id is None:  # the next nightly run compares the users of every event appended above it
                run.ledger_high_id = ledger_high_water()
            coverage = coverage_for(id_slice) if id_slice is not None else None
            with alongside(sources if run.sources_checked else None):
                run_economy_pass(run, ledger_side, progress=say)
                result = compare_ledger_to_stats(
                    fix=fix, user_id=user_id, chunk_users=chunk_users, progress=say, coverage=coverage
                )
                # Ratings: a sample of players against a fresh fold, in one snapshot that leaves out the games a
                # recording marked for a replay (stats.ratings.check), so it too runs beside the sources pass.
                if user_id is None:
                    reconcile_ratings(fix=fix, progress=say)
        except Exception as exc:
            _finish(run, began, status=ReconciliationRun.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
            logger.exception("reconciliation #%s failed", run.pk)
            raise
        run.users_checked = result.users_checked
        run.users_appended = result.users_appended
        run.users_drifted = result.users_drifted
        run.users_fixed = result.users_fixed
        run.field_drift = dict(sorted(result.field_drift.items()))
        run.drift_sample = [d.as_json() for d in result.sample]
        run.drift_rate = result.users_drifted / result.users_checked if result.users_checked else 0.0
        if result.unrepairable:
            run.error = (
                f"{len(result.unrepairable)} drifted user(s) have no profile, so no stats row can hold their "
                f"counters: {result.unrepairable[:20]}"
            )
        with transaction.atomic():  # the claimed changes are done only once the run that re-derived them succeeded
            if run.fix and run.sources_checked:
                delete_claimed(run.pk)
            _finish(run, began, status=ReconciliationRun.Status.SUCCEEDED, error=run.error)
    if run.fix and (run.users_fixed or run.missing_events_total):
        refresh_derived_figures()  # boards cached from the drifted counters must not outlive the repair
    _observe(run)
    return run


def progress_lines(
    *, user_id: int | None, skip_sources: bool, full: bool, chunk_users: int, slice_count: int | None = None
) -> int:
    """How many progress lines run_reconciliation with these arguments will say, for a progress bar's end: the
    economy's two sides, the sources pass's line per source (and per source and lane of a nightly pass in lanes) or
    its "skipped", one per set of users compared, the ratings sample. An estimate while rows change meanwhile."""
    sources = not skip_sources and user_id is None
    lines = 2 + (0 if sources else 1)
    if user_id is not None:
        return lines
    if sources:
        lanes = max(1, settings.RECONCILE_LANES) if not full else 1
        lines += len(SOURCES) * (1 + (lanes if lanes > 1 else 0))
    if sources and not full:
        user_sets = coverage_for(next_slice(slice_count or settings.RECONCILE_SLICES)).user_sets(chunk_users)
    else:
        user_sets = (("every user", users) for users in every_user(chunk_users))
    return lines + sum(1 for _ in user_sets) + 1


def _serialised(progress: Progress) -> Progress:
    """`progress` called by one pass at a time (the two passes run side by side; a progress bar is not thread-safe)."""
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            progress(line)

    return say


def _sources_pass(run: ReconciliationRun, *, id_slice: IdSlice | None, batch_size: int, progress: Progress) -> None:
    """sources -> ledger, nightly (changes, dependents, the run's slice) or full (no slice); its findings are saved on
    `run`."""
    if id_slice is None:
        if run.fix:  # every row is re-derived below: what the log holds now is covered
            run.changes_claimed = claim_changes(run.pk)
        poison: Counter = Counter()
        missing = find_missing_events(fix=run.fix, batch_size=batch_size, progress=progress, poison=poison)
    else:
        outcome = nightly_pass(run, id_slice=id_slice, batch_size=batch_size, progress=progress)
        missing, poison = outcome.missing, outcome.poison
        run.changes_claimed = outcome.changes_claimed
        run.rows_rederived = outcome.rows
    run.missing_events = {
        label: {str(t): n for t, n in sorted(types.items())} for label, types in missing.items() if types
    }
    run.missing_events_total = sum(sum(types.values()) for types in missing.values())
    run.poison_rows = dict(sorted(poison.items()))
    run.save(
        update_fields=[
            "missing_events",
            "missing_events_total",
            "poison_rows",
            "changes_claimed",
            "rows_rederived",
            "slice_index",
            "slice_count",
        ]
    )


def find_missing_events(
    *, fix: bool, batch_size: int = SOURCE_BATCH, progress: Progress | None = None, poison: Counter | None = None
) -> dict[str, Counter]:
    """sources -> ledger: re-derive every source row; returns source label -> event type -> events that were missing
    (inserted when `fix`, else only counted). A row that cannot be recorded is set aside (activity.poison: a poison
    row when `fix`, only counted in a report-only run) and counted per source in `poison`; the pass goes on."""
    say = progress or (lambda message: None)
    poison = poison if poison is not None else Counter()
    missing: dict[str, Counter] = {}
    for label, kind in SOURCES.items():
        found: Counter = Counter()
        rows = 0
        done_upto = 0
        for chunk in iter_id_chunks(kind, batch_size):
            outcome = isolate_and_record(label, chunk.ids, dry_run=not fix, origin="reconcile")
            result = outcome.result
            found.update(result.by_type() if fix else result.would_insert_by_type)
            rows += len(chunk.ids)
            if outcome.poisoned:
                poison[label] += len(outcome.poisoned)
            found.update(compensate_deleted_rows(label, done_upto, chunk.last_id, fix=fix, batch_size=batch_size))
            done_upto = chunk.last_id
        found.update(compensate_deleted_rows(label, done_upto, MAX_SOURCE_ID, fix=fix, batch_size=batch_size))
        for event_type, n in found.items():
            metrics.RECONCILE_MISSING_EVENTS.labels(source=label, event_type=event_type).inc(n)
        missing[label] = found
        verb = "recorded" if fix else "missing"
        say(
            f"sources -> ledger: {label}: {rows} row(s), {sum(found.values())} event(s) {verb}"
            + (f", {poison[label]} poison row(s) set aside" if poison[label] else "")
        )
    return missing


def compensate_deleted_rows(label: str, lo: int, hi: int, *, fix: bool, batch_size: int = SOURCE_BATCH) -> Counter:
    """Deletions no signal reported: the ledger's rows of `label` in the key range (lo, hi] whose source row is gone
    go through record_events_for, which compensates them; returns event type -> compensations (would be) appended."""
    found: Counter = Counter()
    if not SOURCES[label].recorded_types:
        return found
    for ids in orphaned_source_ids(label, lo, hi, chunk=batch_size):
        result = isolate_and_record(label, ids, dry_run=not fix, origin="reconcile").result
        found.update(result.by_type() if fix else result.would_insert_by_type)
    return found


def compare_ledger_to_stats(
    *,
    fix: bool,
    user_id: int | None = None,
    chunk_users: int = CHUNK_USERS,
    progress: Progress | None = None,
    coverage: StatsCoverage | None = None,
) -> StatsPassResult:
    """ledger -> stats: compare the users' stats with the ledger - every user, one user, or a nightly run's
    `coverage` (stats.nightly_stats) - one statement per set of users; with `fix`, recompute the drifted users
    (recompute_stats: rows locked in user-id order, aggregated again under the lock)."""
    say = progress or (lambda message: None)
    result = StatsPassResult()
    groups: Iterator[tuple[str, UserSet]]
    if user_id is not None:
        groups = iter([("one user", one_user(user_id))])
    elif coverage is not None:
        groups = coverage.user_sets(chunk_users)
        result.users_appended = None if coverage.appended_since is None else 0
    else:
        groups = (("every user", users) for users in every_user(chunk_users))
    for why, users in groups:
        checked, drifted = _compare(users)
        drifted = _with_scoped_drift(drifted, scoped_drift(users))  # per-game / per-season rows (scoped_reconcile)
        result.users_checked += checked
        if why == NEW_EVENTS:
            result.users_appended = (result.users_appended or 0) + checked
        if drifted:
            _account(drifted, result)
            if fix:
                # Users with no profile cannot have a stats row (its key is the profile): reported, not repaired.
                result.unrepairable.extend(d.user_id for d in drifted if not d.has_profile)
                with transaction.atomic():  # the repair and its audit events commit together
                    result.users_fixed += recompute_stats([d.user_id for d in drifted if d.has_profile])
                    audit_drift_repaired([d for d in drifted if d.has_profile])
        if user_id is None:
            say(
                f"ledger -> stats ({why}): {users}: {result.users_checked} checked, {result.users_drifted} drifted"
                + (f", {result.users_fixed} fixed" if fix else "")
            )
    return result


def _with_scoped_drift(drifted: list[DriftedUser], scoped: ScopedDrift) -> list[DriftedUser]:
    """The lifetime comparison's drifted users, with the per-game / per-season differences of the same range merged in
    (a user drifted only there is drifted too: recompute_stats repairs all of a user's rows)."""
    if not scoped:
        return drifted
    by_user = {d.user_id: d for d in drifted}
    for uid, fields in scoped.items():
        known = by_user.get(uid)
        if known is None:
            by_user[uid] = DriftedUser(uid, False, dict(fields))
        else:
            by_user[uid] = DriftedUser(uid, known.missing_row, {**known.fields, **fields}, known.has_profile)
    return [by_user[uid] for uid in sorted(by_user)]


def _account(drifted: list[DriftedUser], result: StatsPassResult) -> None:
    result.users_drifted += len(drifted)
    for d in drifted:
        result.field_drift.update(d.fields.keys())
        if d.missing_row:
            result.field_drift[NO_STATS_ROW] += 1
    room = SAMPLE_SIZE - len(result.sample)
    if room > 0:
        result.sample.extend(drifted[:room])


def _compare(users: UserSet) -> tuple[int, list[DriftedUser]]:
    """(users checked, drifted users) of `users`.

    The comparison is ONE statement, so it reads the ledger and the stats in one snapshot. Every writer of the
    projection commits its counter change in the transaction that changes the ledger (the incremental apply with the
    append; recompute and repair aggregate under the rows' locks), so any snapshot shows them in step: a live
    recording committed before it is on both sides, one not yet committed on neither. No lock is needed to compare,
    so a nightly run never makes live recording wait, and a report-only run writes nothing at all.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        # Its row estimates are poor (grouped CTEs) and would trigger JIT compilation: ~1 s per statement for nothing.
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(f"SELECT COUNT(*) FROM {_STATS} WHERE {users.where('profile_id')}", users.params())
        with_rows = cursor.fetchone()[0]
        cursor.execute(comparison_sql(users.kind), users.params() * 3)
        rows = cursor.fetchall()
    drifted = [_drifted_user(row) for row in rows]
    return with_rows + sum(1 for d in drifted if d.missing_row), drifted


_COUNT_FIELDS = tuple(f for f in COUNTER_FIELDS if not reads_amount(f))
_SUM_FIELDS = tuple(f for f in COUNTER_FIELDS if reads_amount(f))
# Only the rows of these types carry amounts: the other counters never need the ledger's heap, only its
# (user, event_type) index.
_AMOUNT_TYPES = sorted(t for t, effects in EFFECTS.items() if any(reads_amount(f) for f, _sign in effects))


def _pivot(field: str, measure: str) -> str:
    """SUM over pre-grouped (user, event_type) rows of `measure`, signed by stats.counters.EFFECTS (the one mapping,
    applied to a per-type count or sum instead of to each ledger row)."""
    return counter_sql(field, measure=measure)


@functools.cache
def comparison_sql(kind: str = UserRange.kind) -> str:
    """One statement per set of users (stats.user_sets, of `kind`): every user of the set with a stats row or a ledger
    event, both sides of every field, only the users where some field differs.

    Index use: counts come from an index-only scan of the ledger's (user, event_type) index, grouped per type
    first (the signed pivot then runs over ~10 rows per user, not ~50); amount sums read only the coin events'
    rows; last activity is one probe of the (user, -timestamp, -id) index per user.
    """
    counts = ", ".join(f"{_pivot(f, 'n')} AS {f}" for f in _COUNT_FIELDS)
    sums = ", ".join(f"{_pivot(f, grouped_measure(f))} AS {f}" for f in _SUM_FIELDS)
    in_amount_types = ", ".join(quote_event_type(t) for t in _AMOUNT_TYPES)
    both_sides = ", ".join(
        f"s.{f} AS s_{f}, COALESCE({'a' if reads_amount(f) else 'c'}.{f}, 0) AS l_{f}" for f in COUNTER_FIELDS
    )
    differs = " OR ".join(
        [f"s_{f} <> l_{f}" for f in COUNTER_FIELDS] + [f"s_{LAST_ACTIVITY} IS DISTINCT FROM l_{LAST_ACTIVITY}"]
    )
    where = USER_SETS[kind].where
    return f"""
WITH s AS (
    SELECT profile_id AS uid, {", ".join(FIELDS)} FROM {_STATS} WHERE {where("profile_id")}
), c AS (
    SELECT user_id AS uid, {counts} FROM (
        SELECT user_id, event_type, COUNT(*) AS n FROM {_LEDGER}
        WHERE {where("user_id")} GROUP BY user_id, event_type
    ) AS per_type GROUP BY user_id
), a AS (
    SELECT user_id AS uid, {sums} FROM (
        SELECT user_id, event_type, SUM(amount) AS amount_sum, COUNT(amount) AS amount_n FROM {_LEDGER}
        WHERE {where("user_id")} AND event_type IN ({in_amount_types}) GROUP BY user_id, event_type
    ) AS per_type GROUP BY user_id
), u AS (
    SELECT uid FROM s UNION SELECT uid FROM c
), cmp AS (
    SELECT u.uid, s.uid IS NULL AS missing_row,
           CASE WHEN s.uid IS NULL THEN EXISTS (SELECT 1 FROM {_PROFILES} p WHERE p.user_id = u.uid) ELSE TRUE END
             AS has_profile,
           {both_sides},
           s.{LAST_ACTIVITY} AS s_{LAST_ACTIVITY},
           (SELECT MAX(l.timestamp) FROM {_LEDGER} l WHERE l.user_id = u.uid) AS l_{LAST_ACTIVITY}
    FROM u LEFT JOIN s ON s.uid = u.uid LEFT JOIN c ON c.uid = u.uid LEFT JOIN a ON a.uid = u.uid
)
SELECT * FROM cmp WHERE missing_row OR {differs} ORDER BY uid
"""


def _drifted_user(row: Sequence) -> DriftedUser:
    uid, missing_row, has_profile, values = row[0], bool(row[1]), bool(row[2]), row[3:]
    fields: dict[str, tuple[object, object]] = {}
    for i, name in enumerate(FIELDS):
        stats_value, ledger_value = values[2 * i], values[2 * i + 1]
        if name != LAST_ACTIVITY:  # SUM() comes back as a Decimal
            stats_value = None if stats_value is None else int(stats_value)
            ledger_value = int(ledger_value)
        if missing_row:
            if ledger_value not in (0, None):
                fields[name] = (None, ledger_value)
        elif stats_value != ledger_value:
            fields[name] = (stats_value, ledger_value)
    return DriftedUser(uid, missing_row, fields, has_profile)


@contextmanager
def _exclusive_run() -> Iterator[None]:
    """One reconciliation at a time (a session advisory lock)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_RUN_LOCK_KEY])
        if not cursor.fetchone()[0]:
            raise ReconciliationAlreadyRunning("another reconciliation is running; try again when it has finished")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_RUN_LOCK_KEY])


def _close_interrupted_runs() -> None:
    """Called holding the run lock: a run still marked running lost its process (the lock dies with the session)."""
    ReconciliationRun.objects.filter(status=ReconciliationRun.Status.RUNNING).update(
        status=ReconciliationRun.Status.FAILED,
        finished_at=timezone.now(),
        error="interrupted: its process ended before it finished",
    )


def _finish(run: ReconciliationRun, began: float, *, status: str, error: str) -> None:
    run.status = status
    run.error = error
    run.finished_at = timezone.now()
    run.duration_seconds = round(time.monotonic() - began, 3)
    with transaction.atomic():
        run.save()
        audit_reconciliation_run(run)


def _observe(run: ReconciliationRun) -> None:
    alert = run.drift_rate > DRIFT_ALERT_RATIO
    if alert:
        logger.error(
            "reconciliation #%s: %d of %d user(s) drifted (%.2f%%, above the %.0f%% alert threshold); fields: %s",
            run.pk,
            run.users_drifted,
            run.users_checked,
            100 * run.drift_rate,
            100 * DRIFT_ALERT_RATIO,
            run.field_drift,
        )
    elif run.users_drifted:
        logger.warning(
            "reconciliation #%s: %d of %d user(s) drifted; fields: %s",
            run.pk,
            run.users_drifted,
            run.users_checked,
            run.field_drift,
        )
    if run.missing_events_total:
        logger.warning(
            "reconciliation #%s: %d event(s) missing from the ledger: %s",
            run.pk,
            run.missing_events_total,
            run.missing_events,
        )
    metrics.RECONCILE_DURATION.set(run.duration_seconds)
    if run.scope != ReconciliationRun.Scope.ALL:
        return  # a sample of one says nothing about the fleet: the drift gauges describe full runs only
    metrics.USERS_DRIFTED.set(run.users_drifted)
    metrics.DRIFT_RATIO.set(run.drift_rate)
    metrics.DRIFT_ALERT.set(1 if alert else 0)
    metrics.RECONCILE_LAST_SUCCESS.set(time.time())


def format_report(run: ReconciliationRun) -> str:
    """The human-readable report the command prints (the admin shows the same fields)."""
    scope = f"user {run.scope_user_id}" if run.scope == ReconciliationRun.Scope.USER else "all users"
    lines = [
        f"Reconciliation #{run.pk}: {run.status}, {'repair' if run.fix else 'report only'}, {scope}, "
        f"{run.duration_seconds:.2f} s",
    ]
    if run.sources_checked:
        verb = "recorded" if run.fix else "missing (not recorded: report only)"
        lines.append(f"  sources -> ledger ({_coverage(run)}): {run.missing_events_total} event(s) {verb}")
        for label, types in run.missing_events.items():
            lines.append(f"    {label}: " + ", ".join(f"{t}={n}" for t, n in types.items()))
        for label, n in run.poison_rows.items():
            lines.append(f"    {label}: {n} poison row(s) could not be recorded (see Poison rows in the admin)")
    else:
        lines.append("  sources -> ledger: skipped")
    lines.append(
        f"  ledger -> stats ({_stats_coverage(run)}): {run.users_checked} user(s) checked, {run.users_drifted} drifted "
        f"({100 * run.drift_rate:.3f}%)" + (f", {run.users_fixed} fixed" if run.fix else "")
    )
    for name, n in run.field_drift.items():
        lines.append(f"    {name}: {n} user(s)")
    for d in run.drift_sample[:10]:
        diffs = ", ".join(f"{f} {v['stats']} != {v['ledger']}" for f, v in d["fields"].items())
        lines.append(f"    user {d['user_id']}{' (no stats row)' if d['missing_row'] else ''}: {diffs}")
    lines += format_economy_report(run)
    if run.drift_rate > DRIFT_ALERT_RATIO:
        lines.append(f"  ALERT: drift above {100 * DRIFT_ALERT_RATIO:.0f}% of the users checked")
    if run.error:
        lines.append(f"  error: {run.error}")
    return "\n".join(lines)


def _coverage(run: ReconciliationRun) -> str:
    if run.sources_mode != "nightly" or run.slice_count is None or run.slice_index is None:
        return "full: every source row"
    rows = run.rows_rederived.values()
    return (
        f"nightly: {sum(r['changed'] for r in rows)} changed row(s) ({run.changes_claimed} log entries), "
        f"{sum(r['dependents'] for r in rows)} dependent(s), {sum(r['slice'] for r in rows)} in rolling slice "
        f"{run.slice_index + 1}/{run.slice_count}"
    )


def _stats_coverage(run: ReconciliationRun) -> str:
    if run.scope == ReconciliationRun.Scope.USER:
        return "one user"
    if run.users_appended is None or run.slice_index is None:
        return "every user"
    rolling = f"{run.slice_index + 1}/{run.slice_count}"
    return f"nightly: {run.users_appended} with new events, the others in rolling slice {rolling}"


def _jsonable(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value
