"""The one append path: derived events in, exactly the missing ones inserted, the projection applied in the same
transaction.

Idempotency comes from the database: every event has a deterministic key (source row, user, type, seq) under a
unique constraint and is inserted with ON CONFLICT DO NOTHING; the RETURNING clause tells which rows really went in,
and only those move the counters.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.db.models.fields.json import KeyTransform
from django.utils import timezone
from psycopg.errors import UniqueViolation

from activity.derivation import Derivation
from activity.event_types import COIN_EVENTS, REVERSAL_OF, VALUED_EVENTS, default_visibility
from activity.events import NewEvent, encode_metadata, validate
from activity.models import IDEMPOTENCY_KEY, UserActivity
from activity.phases import phase
from activity.projection import InsertedEvent, project
from activity.sql_arrays import int_array, text_array, timestamp_array

logger = logging.getLogger(__name__)

_TABLE = UserActivity._meta.db_table
_COLUMNS = (
    "user_id",
    "event_type",
    "timestamp",
    "recorded_at",
    "amount",
    "metadata",
    "source_model",
    "source_id",
    "seq",
    "visibility",
    "game",
    "season",
)


@dataclass
class AppendResult:
    derived: int = 0  # events the derivations asked for (after compensation planning)
    inserted: list[InsertedEvent] = field(default_factory=list)
    would_insert: int = 0  # dry run: events that are not in the ledger yet
    would_insert_by_type: Counter = field(default_factory=Counter)  # dry run: the same, per event type

    @property
    def created(self) -> int:
        return len(self.inserted) if self.inserted else self.would_insert

    def by_type(self) -> Counter:
        return Counter(e.event_type for e in self.inserted)


def append(
    derivations: Sequence[Derivation], *, dry_run: bool = False, only_missing: bool = False, expect_new: bool = False
) -> AppendResult:
    """Insert what the derivations imply and is not yet recorded; apply the projection to exactly those rows.

    `expect_new` is for a caller whose events are nearly all new (a backfill): they go in with a plain INSERT first
    (see insert), the same rows and the same result as without it.

    `only_missing` asks the ledger first which keys it lacks (one anti-join on the idempotency index) and sends only
    those to the INSERT: for a caller whose events are nearly all recorded already (the reconciliation), so the
    common case ships no event columns at all. ON CONFLICT still settles a key recorded concurrently in between.

    Derivations of correctable sources (non-empty `authority`) must have been loaded under that source row's lock
    (record_events_for does this); their compensations are planned against the ledger inside this transaction.
    Validation happens before any write, so an invalid event leaves nothing half-written.
    """
    with transaction.atomic(savepoint=False):
        with phase("plan corrections"):
            planned = plan(derivations)
        if dry_run or only_missing:
            # Only the absent events can be written, so only they are encoded (validated): re-checking the metadata
            # of every recorded event was a third of the reconciliation's time in append.
            unique = {event.key: event for event in reversed(planned)}  # reversed: the first of equal keys wins
            with phase("anti-join"):
                absent = _absent([unique[key] for key in sorted(unique)])
            derived = len(unique)
            with phase("validate + encode"):
                rows = {event.key: (event, meta) for event, meta in _encoded(absent)}
        else:
            with phase("validate + encode"):
                rows = rows_in_key_order(planned)
            derived = len(rows)
        if dry_run:
            missing = Counter(event.event_type for event, _meta in rows.values())
            return AppendResult(derived=derived, would_insert=len(rows), would_insert_by_type=missing)
        with phase("insert"):
            inserted = insert(rows, insert_parameters(rows), expect_new=expect_new)
        project(inserted)
    return AppendResult(derived=derived, inserted=inserted)


Rows = dict[tuple, tuple[NewEvent, str]]  # idempotency key -> the event and its metadata JSON, in insertion order


def rows_in_key_order(planned: Sequence[NewEvent]) -> Rows:
    """The planned events validated and encoded, one per key (the first of equal keys), in key order: two
    transactions inserting overlapping keys wait for each other in the same order on the unique index, so they
    cannot deadlock. No database access."""
    by_key: Rows = {}
    for event, meta in _encoded(planned):
        by_key.setdefault(event.key, (event, meta))
    return {key: by_key[key] for key in sorted(by_key)}


def _encoded(events: Sequence[NewEvent]) -> list[tuple[NewEvent, str]]:
    """Each event validated, with its metadata as JSON. The events of one source row usually share one metadata
    object (a match's four events): it is serialised once, the events still validated one by one. (Keyed by the
    object's id while `events` holds every object alive, so an id cannot be reused within the call.)"""
    by_object: dict[int, str] = {}
    out = []
    for event in events:
        meta = by_object.get(id(event.metadata))
        if meta is None:
            meta = by_object[id(event.metadata)] = encode_metadata(event)
        else:
            validate(event)
        out.append((event, meta))
    return out


def plan(derivations: Sequence[Derivation], recorded: Recorded | None = None) -> list[NewEvent]:
    """The events to append: every derived event, with the authority types planned against what the ledger records
    for the rows (`recorded`: read here when not given)."""
    planned: list[NewEvent] = []
    authoritative: list[Derivation] = []
    for d in derivations:
        if d.authority:
            authoritative.append(d)
            planned.extend(e for e in d.events if e.event_type not in d.authority)
        else:
            planned.extend(d.events)
    if authoritative:
        state = _recorded_state(authoritative) if recorded is None else recorded
        planned.extend(_plan_corrections(authoritative, state))
    return planned


_Values = dict[tuple[str, int, int, str], dict[object, tuple[int, int | None]]]


@dataclass(frozen=True)
class Recorded:
    """What the ledger records of some source rows' authority types, keyed (label, source id, user, type)."""

    counts: dict[tuple[str, int, int, str], int] = field(default_factory=dict)
    amounts: dict[tuple[str, int, int, str], int] = field(default_factory=dict)  # coin types: the amounts summed
    # (label, source id) -> users with recorded events of the row: looked up per derivation (scanning `counts`
    # for each row instead made a chunk of n rows cost n^2).
    users: dict[tuple[str, int], set[int]] = field(default_factory=dict)
    valued: _Values = field(default_factory=dict)  # valued types (VALUED_EVENTS): net count per value, and its amount
    # Rows deleted at the source derive no events: their compensations copy the metadata the ledger recorded...
    meta: dict[tuple[str, int], dict] = field(default_factory=dict)
    scope: dict[tuple[str, int], tuple[str | None, int | None]] = field(default_factory=dict)  # ... and game / season


# Rows of which the ledger holds no event at all (a backfill's, nearly always): nothing to correct.
NOTHING_RECORDED = Recorded()


def _recorded_state(derivations: Sequence[Derivation]) -> Recorded:
    state = Recorded()
    by_label: dict[str, list[Derivation]] = {}
    for d in derivations:
        by_label.setdefault(d.source_model, []).append(d)
    for label, group in by_label.items():
        types = {t for d in group for base in d.authority for t in (base, REVERSAL_OF[base])}
        with connection.cursor() as cursor:
            # Arrays as single parameters: `source_id__in` compiled and adapted one parameter per source row.
            cursor.execute(_RECORDED_SQL, [label, int_array([d.source_id for d in group]), text_array(sorted(types))])
            existing = cursor.fetchall()
        for source_id, user_id, event_type, n, total in existing:
            state.counts[(label, source_id, user_id, event_type)] = n
            state.amounts[(label, source_id, user_id, event_type)] = total or 0
            state.users.setdefault((label, source_id), set()).add(user_id)
        # Valued types' recorded values, for the rows that have any recorded (none in a backfill: no query).
        with_recorded = [d.source_id for d in group if (label, d.source_id) in state.users]
        for base in sorted({t for d in group for t in d.authority if t in VALUED_EVENTS} if with_recorded else ()):
            _count_values(label, with_recorded, base, state.valued)
        gone = [d.source_id for d in group if not d.events]
        if gone:
            for source_id, metadata, game, season in (
                UserActivity.objects.filter(source_model=label, source_id__in=gone)
                .order_by("source_id", "id")
                .values_list("source_id", "metadata", "game", "season")
            ):
                state.meta.setdefault((label, source_id), {k: v for k, v in metadata.items() if k != "reverses"})
                state.scope.setdefault((label, source_id), (game, season))
    return state


def _plan_corrections(derivations: Sequence[Derivation], recorded: Recorded) -> Iterable[NewEvent]:
    """For the authority types of each row: bring each user's net count (events minus compensations) to what the
    row's current state implies, appending events or compensations with the next free seq. No database access."""
    counts, amounts, valued = recorded.counts, recorded.amounts, recorded.valued
    for d in derivations:
        wanted: dict[tuple[int, str], NewEvent] = {}
        for e in d.events:
            if e.event_type in d.authority:
                wanted.setdefault((e.user_id, e.event_type), e)
        recorded_users = recorded.users.get((d.source_model, d.source_id), set())
        if not recorded_users:
            # Nothing of this row's authority types is in the ledger (every row of a backfill): the wanted events
            # are its first recording, at seq 1, exactly as the loop below would plan them (n_base = net = 0).
            yield from (e if e.seq == 1 else e._replace(seq=1) for e in wanted.values())
            continue
        template_meta = d.events[0].metadata if d.events else recorded.meta.get((d.source_model, d.source_id), {})
        # A compensation counts in the same game and season as the event it cancels (one source row, one tournament).
        game, season = (
            (d.events[0].game, d.events[0].season)
            if d.events
            else recorded.scope.get((d.source_model, d.source_id), (None, None))
        )
        for user_id in sorted({u for u, _ in wanted} | recorded_users):
            for base in sorted(d.authority):
                reverse = REVERSAL_OF[base]
                n_base = counts.get((d.source_model, d.source_id, user_id, base), 0)
                n_rev = counts.get((d.source_model, d.source_id, user_id, reverse), 0)
                if base in VALUED_EVENTS:
                    values = valued.get((d.source_model, d.source_id, user_id, base), {})
                    wanted_event = wanted.get((user_id, base))
                    yield from _correct_value(
                        d, user_id, base, wanted_event, values, (n_base, n_rev), template_meta, (game, season)
                    )
                    continue
                net = n_base - n_rev
                event = wanted.get((user_id, base))
                want = 1 if event is not None else 0
                if event is not None and net < 1:  # wanted, and not counted now
                    yield _award(d, event, n_base)
                elif want < net:
                    amount = None
                    if base in COIN_EVENTS:
                        key = (d.source_model, d.source_id, user_id)
                        amount = amounts.get((*key, base), 0) - amounts.get((*key, reverse), 0)
                    yield _compensation(d, user_id, base, template_meta, n_rev + 1, amount, (game, season))


def _award(d: Derivation, event: NewEvent, n_base: int) -> NewEvent:
    """A wanted event the ledger does not count now. The first recording is the event as derived (the common case:
    no copy) and keeps the source time; a re-award after a correction happened at correction time, next seq."""
    if n_base == 0 and event.seq == 1:
        return event
    at = event.timestamp if n_base == 0 else (d.corrected_at or event.timestamp)
    return event._replace(seq=n_base + 1, timestamp=at)


def _compensation(
    d: Derivation,
    user_id: int,
    base: str,
    meta: Mapping[str, Any],
    seq: int,
    amount: int | None,
    scope: tuple[str | None, int | None],
) -> NewEvent:
    """The `_reversed` event cancelling one `base` event of this row, at correction time, in the cancelled event's
    game and season."""
    return NewEvent(
        user_id,
        REVERSAL_OF[base],
        d.corrected_at or timezone.now(),
        d.source_model,
        d.source_id,
        {**meta, "reverses": base},
        seq=seq,
        amount=amount,
        game=scope[0],
        season=scope[1],
    )


# The rows' events are fetched by (source_model, source_id) alone and only then filtered by type: with the types in
# the index condition too, PostgreSQL (before 17) descends the idempotency index once per (source id, type) pair - a
# backfill chunk of 5,000 matches made 30,000 descents, 70-190 ms per chunk on an empty ledger range, against 11 ms
# for 5,000 descents. MATERIALIZED keeps the planner from folding the type filter back into the index scan.
_RECORDED_SQL = f"""
WITH rows AS MATERIALIZED (
    SELECT source_id, user_id, event_type, amount FROM {_TABLE}
    WHERE source_model = %s AND source_id = ANY(%s::bigint[])
)
SELECT source_id, user_id, event_type, COUNT(*), SUM(amount)::bigint FROM rows
WHERE event_type = ANY(%s::varchar[])
GROUP BY source_id, user_id, event_type
"""


def _count_values(label: str, source_ids: list[int], base: str, into: _Values) -> None:
    """Per (row, user) of a valued type: value -> (events minus compensations carrying it, their amount)."""
    reverse = REVERSAL_OF[base]
    rows = (
        UserActivity.objects.filter(source_model=label, source_id__in=source_ids, event_type__in=(base, reverse))
        .annotate(value=KeyTransform(VALUED_EVENTS[base], "metadata"))
        .values_list("source_id", "user_id", "event_type", "value", "amount")
        .annotate(n=Count("id"))
        .order_by()
    )
    for source_id, user_id, event_type, value, amount, n in rows:
        by_value = into.setdefault((label, source_id, user_id, base), {})
        net, _amount = by_value.get(value, (0, None))
        by_value[value] = (net + (n if event_type == base else -n), amount)


def _correct_value(
    d: Derivation,
    user_id: int,
    base: str,
    event: NewEvent | None,
    values: dict[object, tuple[int, int | None]],
    seqs: tuple[int, int],
    template_meta: Mapping[str, Any],
    scope: tuple[str | None, int | None],
) -> Iterable[NewEvent]:
    """A valued type's correction: every recorded value the row no longer implies is compensated (carrying that
    value and its amount), the implied value recorded when it is not counted now. Seqs run on across values: the
    idempotency key has no value in it."""
    key = VALUED_EVENTS[base]
    want = event.metadata[key] if event is not None else None
    n_base, n_rev = seqs
    for value, (net, amount) in sorted(values.items(), key=lambda item: str(item[0])):
        for _ in range(net - (1 if value == want else 0)):
            n_rev += 1
            yield _compensation(d, user_id, base, {**template_meta, key: value}, n_rev, amount, scope)
    if event is not None and values.get(want, (0, None))[0] < 1:
        yield _award(d, event, n_base)


def _absent(events: Sequence[NewEvent]) -> list[NewEvent]:
    """The events whose key is not in the ledger yet, in their order: the keys go to the server as one JSON document
    and an anti-join on the idempotency index answers with the positions of the absent ones (usually none). Nothing
    of the ledger's rows comes back: no keys to parse into Python, no model instances, no IN (...) list to compile.
    (One JSON string, not five arrays: the driver quotes a string in one pass but an array element by element.)"""
    if not events:
        return []
    keys = json.dumps([event.key for event in events], separators=(",", ":"))
    with connection.cursor() as cursor:
        cursor.execute(_ABSENT_SQL, [keys])
        return [events[position - 1] for (position,) in cursor.fetchall()]


_ABSENT_SQL = f"""
SELECT x.n
FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS x(k, n)
WHERE NOT EXISTS (
    SELECT 1 FROM {_TABLE} l
    WHERE l.source_model = x.k ->> 0 AND l.source_id = (x.k ->> 1)::bigint AND l.user_id = (x.k ->> 2)::bigint
      AND l.event_type = x.k ->> 3 AND l.seq = (x.k ->> 4)::int
)
ORDER BY x.n
"""


def insert_parameters(rows: Rows) -> list:
    """The insert statement's parameters for the rows: the events transposed into one array per column. No database
    access."""
    if not rows:
        return []
    # The events transposed into their columns in one C-level pass (NewEvent is a named tuple).
    user_id, event_type, timestamp, source_model, source_id, _meta, amount, seq, visibility, game, season = zip(
        *(e for e, _ in rows.values()), strict=True
    )
    return [
        timezone.now(),
        int_array(user_id),
        text_array(event_type),
        timestamp_array(timestamp),
        int_array(amount),
        "[" + ",".join(m for _, m in rows.values()) + "]",
        text_array(source_model),
        int_array(source_id),
        int_array(seq),
        text_array([v or default_visibility(t) for v, t in zip(visibility, event_type, strict=True)]),
        text_array(game),
        int_array(season),
    ]


def insert(rows: Rows, params: list, *, expect_new: bool = False) -> list[InsertedEvent]:
    """Insert the rows (with their insert_parameters); returns the ones that were not in the ledger yet, in id
    order.

    With `expect_new`, a plain INSERT under a savepoint first: ON CONFLICT makes PostgreSQL check the unique index
    before inserting each row (a speculative insertion), a fifth of the server time of a backfill chunk's insert.
    When a key is there after all (a second backfill, a live recording of the same row in between), the statement
    fails on it, the savepoint is rolled back and the rows go again with ON CONFLICT DO NOTHING. Any other error is
    the caller's, as without it."""
    if not rows:
        return []
    returned = _returned_if_all_new(params) if expect_new else None
    if returned is None:
        returned = _returned(_INSERT_SQL, params)
    inserted = []
    for row_id, *key in returned:
        uid, etype, ts, _sm, sid, _m, amt, _seq, _v, g, sn = rows[tuple(key)][0]
        inserted.append(InsertedEvent(row_id, uid, etype, amt, ts, g, sn, sid))
    inserted.sort(key=lambda e: e.id)
    return inserted


def _returned(statement: str, params: list) -> list[tuple]:
    """The RETURNING rows of one insert statement."""
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


def _returned_if_all_new(params: list) -> list[tuple] | None:
    """The plain INSERT's RETURNING rows; None when it met a key already in the ledger (its savepoint rolled back:
    nothing of it stays)."""
    try:
        with transaction.atomic():
            return _returned(_PLAIN_INSERT_SQL, params)
    except IntegrityError as exc:
        cause = exc.__cause__
        if not isinstance(cause, UniqueViolation) or cause.diag.constraint_name != IDEMPOTENCY_KEY:
            raise
        return None


# Metadata travels as one JSON array (each element already validated, compact JSON), zipped with the other columns
# by ROWS FROM: a text[] of JSON documents made the driver escape every quote of every document, which cost more
# client CPU than the whole rest of the insert.
_INSERT_SQL = f"""
INSERT INTO {_TABLE} ({", ".join(_COLUMNS)})
SELECT u, t, ts, %s::timestamptz, a, m, sm, sid, sq, v, g, sn
FROM ROWS FROM (unnest(%s::bigint[]), unnest(%s::varchar[]), unnest(%s::timestamptz[]), unnest(%s::bigint[]),
                jsonb_array_elements(%s::jsonb), unnest(%s::varchar[]), unnest(%s::bigint[]), unnest(%s::int[]),
                unnest(%s::varchar[]), unnest(%s::varchar[]), unnest(%s::smallint[]))
     AS x(u, t, ts, a, m, sm, sid, sq, v, g, sn)
ON CONFLICT DO NOTHING
RETURNING id, source_model, source_id, user_id, event_type, seq
"""
_PLAIN_INSERT_SQL = _INSERT_SQL.replace("ON CONFLICT DO NOTHING\n", "")
assert _PLAIN_INSERT_SQL != _INSERT_SQL
