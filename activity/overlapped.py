"""A backfill chunk recorded with its derivation beside its insert: one lane keeps both cores busy.

Recording a chunk strictly in turn left one of the machine's two cores idle about half of the time: while PostgreSQL
inserted the worker waited, and while the worker derived, validated and encoded the server waited. Here the chunk is
cut into a few parts. The worker's thread reads each part's rows (every query) and inserts them; a helper thread
derives, plans, validates and encodes the next part meanwhile - pure Python that never touches the database, run
while the worker's thread waits on the socket with the GIL released. The rules are the ones every path uses
(activity.sources' fetchers, activity.append's planning, encoding and insert); only when each runs changes.

Only for rows the ledger holds nothing of (a backfill's, nearly always; one descent of the idempotency index over the
chunk's key range tells): their corrections need no ledger state, so planning is pure. A chunk with any recorded
event goes the sequential way (activity.recording), as does everything but a backfill. Everything happens in the
caller's transaction, under the rows' locks, on its one connection: the parts' events and the chunk's counters
commit together, the counters projected once for the whole chunk (locking stats rows in one order, as one append
does). The GIL still serialises the two threads' Python: what overlaps is the Python of one with PostgreSQL's work
for the other.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from datetime import datetime
from typing import NamedTuple

from django.db import connection
from django.utils import timezone

from activity.append import NOTHING_RECORDED, AppendResult, Rows, insert, insert_parameters, plan, rows_in_key_order
from activity.derivation import with_deleted
from activity.models import UserActivity
from activity.phases import PhaseTimes, charge_beside, collecting, is_collecting, phase
from activity.projection import project
from activity.sources import Deferred, SourceKind

# A chunk is cut into at most this many parts (so a chunk's statement count stays bounded whatever its size) of at
# least MIN_PART_ROWS rows each (a part's statements cost about a millisecond whatever its size). Measured on the
# whole ATP history, 1 lane: see the README's backfill figures.
PARTS = 6
MIN_PART_ROWS = 200


def overlap_pays_off(lanes: int) -> bool:
    """Whether a backfill of this many lanes gains from the helper thread: only with a core to spare. With a lane per
    core (2 lanes here) the lanes' processes and their PostgreSQL backends keep every core busy already, and the
    helper's thread switches and the parts' extra statements made 2 lanes about 3 % slower (README)."""
    return lanes < _usable_cpus()


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Prepared(NamedTuple):
    """One part, ready for its insert statement."""

    rows: Rows
    params: list
    missing: list[int]  # ids of the part no longer in the source table (compensated: nothing recorded, no events)
    phases: PhaseTimes | None


def record_unrecorded(kind: SourceKind, ids: Sequence[int]) -> tuple[AppendResult, list[int]] | None:
    """Record rows (sorted ids, already locked) of which the ledger holds no event, each part's derivation beside
    the previous part's insert; returns the result and the ids that no longer exist. None, with nothing done, when
    the ledger holds any event of these rows: the caller records them the sequential way."""
    with phase("check the ledger"):
        if _any_recorded(kind.label, ids):
            return None
    now, profiled = timezone.now(), is_collecting()
    helper = _helper()
    pending: deque[Future[Prepared]] = deque()
    derived, inserted, missing = 0, [], []

    def insert_next() -> None:
        nonlocal derived
        with phase("wait for derivation"):
            prepared = pending.popleft().result()  # a derivation's error is raised here, as the sequential way would
        if prepared.phases is not None:
            charge_beside(prepared.phases)
        with phase("insert"):
            inserted.extend(insert(prepared.rows, prepared.params, expect_new=True))
        derived += len(prepared.rows)
        missing.extend(prepared.missing)

    try:
        for part in _parts(ids):
            with phase("load sources"):
                derive = kind.fetch(part)
            pending.append(helper.submit(_prepare, kind, part, derive, now, profiled))
            if len(pending) > 1:  # one part prepared ahead: the one submitted now is derived during this insert
                insert_next()
        while pending:
            insert_next()
    finally:
        for future in pending:  # an error left them: nothing of theirs is wanted
            future.cancel()
    inserted.sort(key=lambda e: e.id)
    project(inserted)
    return AppendResult(derived=derived, inserted=inserted), missing


def _parts(ids: Sequence[int]) -> list[Sequence[int]]:
    size = max(MIN_PART_ROWS, -(-len(ids) // PARTS))
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _prepare(
    kind: SourceKind,
    part: Sequence[int],
    derive: Deferred,
    now: datetime,
    profiled: bool,
) -> Prepared:
    """In the helper thread: derive, plan (nothing recorded), validate, encode and transpose one part."""
    with collecting() if profiled else nullcontext() as times:
        with phase("derive"):
            derivations, missing = with_deleted(kind.label, part, derive(), kind.recorded_types, now)
        with phase("plan corrections"):
            planned = plan(derivations, NOTHING_RECORDED)
        with phase("validate + encode"):
            rows = rows_in_key_order(planned)
            params = insert_parameters(rows)
    return Prepared(rows, params, missing, times)


def _any_recorded(label: str, ids: Sequence[int]) -> bool:
    """Whether the ledger holds any event of a source row in the ids' key range: one descent of the idempotency
    index (a probe per id cost a microsecond and a half per event). A backfill chunk is a key range; an event of a
    row in the range but not in `ids` (a deleted row's) only sends the chunk the sequential way."""
    with connection.cursor() as cursor:
        cursor.execute(_ANY_RECORDED_SQL, [label, ids[0], ids[-1]])
        return cursor.fetchone() is not None


_ANY_RECORDED_SQL = (
    f"SELECT 1 FROM {UserActivity._meta.db_table} WHERE source_model = %s AND source_id BETWEEN %s AND %s LIMIT 1"
)


class DatabaseAccessInHelper(RuntimeError):
    """The helper thread queried the database: its work must be pure (it has no part in the chunk's transaction)."""


def _guard_helper_thread() -> None:
    """The helper thread's own database wrapper (Django keeps one per thread) refuses to connect: a query there
    would run outside the chunk's transaction and its locks, and would not see the chunk's own writes."""

    def refuse() -> None:
        raise DatabaseAccessInHelper("the derivation helper thread must not query the database")

    connection.ensure_connection = refuse  # type: ignore[method-assign]


_executor: tuple[int, ThreadPoolExecutor] | None = None
_executor_lock = threading.Lock()


def _helper() -> ThreadPoolExecutor:
    """This process's helper thread (made on first use: a forked worker child gets its own)."""
    global _executor
    with _executor_lock:
        if _executor is None or _executor[0] != os.getpid():
            pool = ThreadPoolExecutor(1, thread_name_prefix="derivation", initializer=_guard_helper_thread)
            _executor = (os.getpid(), pool)
        return _executor[1]
