"""The nightly sources -> ledger pass: what changed, with what depends on it, plus one rolling slice of everything.

Re-deriving every source row each night costs time linear in the whole history (97 s at 1.4M events, ~6 minutes at
5M). The nightly run re-derives instead:

1. the rows the change log names (activity.changes): every source row inserted, updated or deleted since the last
   successful repairing run, written by any path - the log is filled by database triggers, so QuerySet.update,
   bulk_create, raw SQL and cascade deletes are in it; a deleted row is compensated by record_events_for;
2. their dependents: rows whose derivation reads a changed row (a tournament's result when any of its
   registrations or matches changed, a registration's matches, a team's registrations when a membership changed);
3. the run's rolling slice of every source table (stats.rolling_slice: blocks of ids, slice = block mod N), and the
   ledger's rows of that slice whose source row is gone: so whatever the log cannot show (a write from before the
   log existed, a TRUNCATE, a ledger row removed by hand) is still found within N nights.

The work is dealt to RECONCILE_LANES processes (stats.nightly_lanes): deriving rows is Python, one core each.

Guarantee: any write to a source row is re-derived by the next successful nightly repairing run; every source row is
re-derived by at least one of any N consecutive successful nightly runs (N = settings.RECONCILE_SLICES). The change
log rows a run claimed are deleted only when that run, repairing, succeeded; a failed or report-only run leaves them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from psycopg import sql

from activity.changes import ChangedRows, changed_rows, claim_changes, dependents
from activity.models import UserActivity
from activity.sources import SOURCES, SourceKind
from monitoring import metrics
from stats.models import ReconciliationRun
from stats.nightly_lanes import deal, run_lanes
from stats.rolling_slice import IdSlice

Progress = Callable[[str], None]


@dataclass
class NightlyOutcome:
    missing: dict[str, Counter] = field(default_factory=dict)  # label -> event type -> events missing
    poison: Counter = field(default_factory=Counter)  # label -> rows set aside
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # label -> {changed, dependents, slice}
    changes_claimed: int = 0


def take_changes(run: ReconciliationRun) -> ChangedRows:
    """A repairing run claims the log rows it sees (deleted when it succeeds); a report-only one reads them all."""
    if not run.fix:
        return changed_rows(None)
    claim_changes(run.pk)
    return changed_rows(run.pk)


def nightly_pass(
    run: ReconciliationRun,
    *,
    id_slice: IdSlice,
    batch_size: int,
    progress: Progress | None = None,
    lanes: int | None = None,
) -> NightlyOutcome:
    """Re-derive the changed rows, their dependents and the run's rolling slice of every source, in `lanes` lanes
    (default settings.RECONCILE_LANES; stats.nightly_lanes). Every chunk goes through isolate_and_record: a row that
    cannot be recorded is set aside as a poison row and the pass goes on."""
    say = progress or (lambda message: None)
    changes = take_changes(run)
    depending = dependents(changes)
    work = {
        label: (changes.ids.get(label, set()), depending.get(label, set()), list(id_slice.blocks(_top_id(kind))))
        for label, kind in SOURCES.items()
    }
    dealt = deal(id_slice, work, lanes=max(1, lanes or settings.RECONCILE_LANES), fix=run.fix, batch_size=batch_size)
    done = run_lanes(dealt, say)
    outcome = NightlyOutcome(changes_claimed=changes.log_rows if run.fix else 0, poison=done.poison)
    for label, (changed, extra, _blocks) in work.items():
        found = done.missing.get(label, Counter())
        for event_type, n in found.items():
            metrics.RECONCILE_MISSING_EVENTS.labels(source=label, event_type=event_type).inc(n)
        outcome.missing[label] = found
        outcome.rows[label] = {"changed": len(changed), "dependents": len(extra), "slice": done.in_slice[label]}
        verb = "recorded" if run.fix else "missing"
        say(
            f"sources -> ledger (nightly, slice {id_slice}): {label}: {len(changed)} changed, {len(extra)} "
            f"dependent, {done.in_slice[label]} in the slice; {sum(found.values())} event(s) {verb}"
            + (f", {outcome.poison[label]} poison row(s) set aside" if outcome.poison[label] else "")
        )
    return outcome


def _top_id(kind: SourceKind) -> int:
    """The highest id of the source table or of the ledger's rows of it (a deleted top row is still in a block)."""
    table = sql.Identifier(kind.model._meta.db_table)
    pk = sql.Identifier(str(kind.model._meta.pk.column))
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "SELECT GREATEST((SELECT MAX({pk}) FROM {table}), "
                "(SELECT MAX(source_id) FROM {ledger} WHERE source_model = %s))"
            ).format(pk=pk, table=table, ledger=sql.Identifier(UserActivity._meta.db_table)),
            [kind.label],
        )
        return cursor.fetchone()[0] or 0
