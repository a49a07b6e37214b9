"""The one append path: derived events in, exactly the missing ones inserted, the projection applied in the same
transaction.

Idempotency comes from the database: every event has a deterministic key (source row, user, type, seq) under a
unique constraint and is inserted with ON CONFLICT DO NOTHING; the RETURNING clause tells which rows really went in,
and only those move the counters.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from activity.derivation import Derivation
from activity.event_types import COIN_EVENTS, REVERSAL_OF
from activity.events import NewEvent, encode_metadata
from activity.models import UserActivity
from activity.projection import InsertedEvent, project

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


def append(derivations: Sequence[Derivation], *, dry_run: bool = False) -> AppendResult:
    """Insert what the derivations imply and is not yet recorded; apply the projection to exactly those rows.

    Derivations of correctable sources (non-empty `authority`) must have been loaded under that source row's lock
    (record_events_for does this); their compensations are planned against the ledger inside this transaction.
    Validation happens before any write, so an invalid event leaves nothing half-written.
    """
    with transaction.atomic(savepoint=False):
        planned = _plan(derivations)
        encoded = [(event, encode_metadata(event)) for event in planned]
        unique: dict[tuple, tuple[NewEvent, str]] = {}
        for event, meta in encoded:
            unique.setdefault(event.key, (event, meta))
        # A fixed insertion order: two transactions inserting overlapping keys wait for each other in the same
        # order on the unique index, so they cannot deadlock.
        rows = [unique[key] for key in sorted(unique)]
        if dry_run:
            missing = _missing_by_type(rows)
            return AppendResult(derived=len(rows), would_insert=sum(missing.values()), would_insert_by_type=missing)
        inserted = _insert(rows)
        project(inserted)
    return AppendResult(derived=len(rows), inserted=inserted)


def _plan(derivations: Sequence[Derivation]) -> list[NewEvent]:
    planned: list[NewEvent] = []
    authoritative: list[Derivation] = []
    for d in derivations:
        if d.authority:
            authoritative.append(d)
            planned.extend(e for e in d.events if e.event_type not in d.authority)
        else:
            planned.extend(d.events)
    if authoritative:
        planned.extend(_plan_corrections(authoritative))
    return planned


def _plan_corrections(derivations: Sequence[Derivation]) -> Iterable[NewEvent]:
    """For the authority types of each row: bring each user's net count (events minus compensations) to what the
    row's current state implies, appending events or compensations with the next free seq."""
    counts: dict[tuple[str, int, int, str], int] = {}
    amounts: dict[tuple[str, int, int, str], int] = {}  # coin types: the amounts summed (a compensation cancels them)
    # Rows deleted at the source derive no events: their compensations copy the metadata the ledger recorded.
    recorded_meta: dict[tuple[str, int], dict] = {}
    recorded_scope: dict[tuple[str, int], tuple[str | None, int | None]] = {}  # ... and its game / season columns
    # (label, source id) -> users with recorded events of the row: looked up per derivation (scanning `counts`
    # for each row instead made a chunk of n rows cost n^2).
    recorded: dict[tuple[str, int], set[int]] = {}
    by_label: dict[str, list[Derivation]] = {}
    for d in derivations:
        by_label.setdefault(d.source_model, []).append(d)
    for label, group in by_label.items():
        types = {t for d in group for base in d.authority for t in (base, REVERSAL_OF[base])}
        existing = (
            UserActivity.objects.filter(
                source_model=label, source_id__in=[d.source_id for d in group], event_type__in=types
            )
            .values_list("source_id", "user_id", "event_type")
            .annotate(n=Count("id"), total=Sum("amount"))
            .order_by()
        )
        for source_id, user_id, event_type, n, total in existing:
            counts[(label, source_id, user_id, event_type)] = n
            amounts[(label, source_id, user_id, event_type)] = total or 0
            recorded.setdefault((label, source_id), set()).add(user_id)
        gone = [d.source_id for d in group if not d.events]
        if gone:
            for source_id, metadata, game, season in (
                UserActivity.objects.filter(source_model=label, source_id__in=gone)
                .order_by("source_id", "id")
                .values_list("source_id", "metadata", "game", "season")
            ):
                recorded_meta.setdefault((label, source_id), {k: v for k, v in metadata.items() if k != "reverses"})
                recorded_scope.setdefault((label, source_id), (game, season))

    for d in derivations:
        wanted: dict[tuple[int, str], NewEvent] = {}
        for e in d.events:
            if e.event_type in d.authority:
                wanted.setdefault((e.user_id, e.event_type), e)
        recorded_users = recorded.get((d.source_model, d.source_id), set())
        template_meta = d.events[0].metadata if d.events else recorded_meta.get((d.source_model, d.source_id), {})
        # A compensation counts in the same game and season as the event it cancels (one source row, one tournament).
        game, season = (
            (d.events[0].game, d.events[0].season)
            if d.events
            else recorded_scope.get((d.source_model, d.source_id), (None, None))
        )
        for user_id in sorted({u for u, _ in wanted} | recorded_users):
            for base in sorted(d.authority):
                reverse = REVERSAL_OF[base]
                n_base = counts.get((d.source_model, d.source_id, user_id, base), 0)
                n_rev = counts.get((d.source_model, d.source_id, user_id, reverse), 0)
                net = n_base - n_rev
                event = wanted.get((user_id, base))
                want = 1 if event is not None else 0
                if event is not None and net < 1:  # wanted, and not counted now
                    if n_base == 0 and event.seq == 1:
                        yield event  # the first recording, as derived (the common case: skip copying it)
                        continue
                    # First recording keeps the source time; a re-award after a correction happened at correction time.
                    at = event.timestamp if n_base == 0 else (d.corrected_at or event.timestamp)
                    yield replace(event, seq=n_base + 1, timestamp=at)
                elif want < net:
                    amount = None
                    if base in COIN_EVENTS:
                        key = (d.source_model, d.source_id, user_id)
                        amount = amounts.get((*key, base), 0) - amounts.get((*key, reverse), 0)
                    yield NewEvent(
                        user_id,
                        reverse,
                        d.corrected_at or timezone.now(),
                        d.source_model,
                        d.source_id,
                        {**template_meta, "reverses": base},
                        seq=n_rev + 1,
                        amount=amount,
                        game=game,
                        season=season,
                    )


def _missing_by_type(rows: Sequence[tuple[NewEvent, str]]) -> Counter:
    """Dry run: event type -> how many of `rows` are not in the ledger yet (reconciliation reports them per type)."""
    by_label: dict[str, set[tuple]] = {}
    for event, _meta in rows:
        by_label.setdefault(event.source_model, set()).add(event.key)
    found: set[tuple] = set()
    for label, keys in by_label.items():
        source_ids = sorted({k[1] for k in keys})
        for start in range(0, len(source_ids), 5000):
            existing = UserActivity.objects.filter(
                source_model=label, source_id__in=source_ids[start : start + 5000]
            ).values_list("source_model", "source_id", "user_id", "event_type", "seq")
            found.update(key for key in existing.iterator(chunk_size=5000) if key in keys)
    return Counter(event.event_type for event, _meta in rows if event.key not in found)


def _insert(rows: Sequence[tuple[NewEvent, str]]) -> list[InsertedEvent]:
    if not rows:
        return []
    now = timezone.now()
    by_key = {event.key: event for event, _ in rows}
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_SQL,
            [
                now,
                [e.user_id for e, _ in rows],
                [e.event_type for e, _ in rows],
                [e.timestamp for e, _ in rows],
                [e.amount for e, _ in rows],
                "[" + ",".join(m for _, m in rows) + "]",
                [e.source_model for e, _ in rows],
                [e.source_id for e, _ in rows],
                [e.seq for e, _ in rows],
                [e.resolved_visibility() for e, _ in rows],
                [e.game for e, _ in rows],
                [e.season for e, _ in rows],
            ],
        )
        returned = cursor.fetchall()
    inserted = []
    for row_id, *key in returned:
        e = by_key[tuple(key)]
        inserted.append(InsertedEvent(row_id, e.user_id, e.event_type, e.amount, e.timestamp, e.game, e.season))
    inserted.sort(key=lambda e: e.id)
    return inserted


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
