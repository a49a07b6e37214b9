"""Multi-row INSERT that writes the values it is given, for imports and generators.

`QuerySet.bulk_create` runs every field's `pre_save(add=True)` (Django 5.2, `SQLInsertCompiler.pre_save_val`), so
`auto_now_add` / `auto_now` columns get the current time on every row whatever the instance says. Imported history and
synthetic platforms need the rows' own times (the ledger takes its event timestamps from them), so this writes the
caller's values as they are: the caller names every column it fills, timestamps included.

Conflicts can be ignored (`ON CONFLICT DO NOTHING`, any unique constraint: natural keys make a re-run add nothing)
and `RETURNING` reports exactly the rows inserted, so callers can tell "created" from "already present".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections, models

# Column types whose Django get_db_prep_save is the identity on PostgreSQL for the plain Python values callers pass
# (int, str, bool, aware datetime): their values go to the driver untouched, which halves the client-side cost.
_PLAIN_TYPES = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveBigIntegerField",
        "PositiveSmallIntegerField",
        "CharField",
        "TextField",
        "SlugField",
        "BooleanField",
        "DateTimeField",
    }
)


def insert_rows(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
    returning: Sequence[str] = ("id",),
    batch_size: int = 5000,
) -> list[tuple]:
    """Insert `rows` (tuples in `columns` order; columns are field attnames such as "tournament_id").

    Returns one tuple of the `returning` columns per row actually inserted. Without `ignore_conflicts` the tuples come
    back in the order of `rows` (as `bulk_create` relies on), so ids can be matched to inputs.
    Datetimes must be timezone-aware.
    """
    if not columns:
        raise ValueError("insert_rows needs at least one column")
    conn = connections[DEFAULT_DB_ALIAS]  # the wrapper itself: the `connection` proxy costs a lookup per value
    opts = model._meta
    fields = [_concrete_field(model, name) for name in columns]
    qn = conn.ops.quote_name
    head = f"INSERT INTO {qn(opts.db_table)} ({', '.join(qn(_column_name(f)) for f in fields)}) "
    tail = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    if returning:
        tail += " RETURNING " + ", ".join(qn(_column_name(_concrete_field(model, name))) for name in returning)
    preps = [_preparer(field) for field in fields]

    def prepared(row: Sequence[Any]) -> list[Any]:
        if len(row) != len(preps):
            raise ValueError(f"row has {len(row)} values for {len(preps)} columns: {row!r}")
        return [value if prep is None else prep(value, conn) for prep, value in zip(preps, row)]

    # One array parameter per column, unnested (what bulk_create does on PostgreSQL since Django 5.2): the statement
    # text is short and the same for every batch. %b sends the arrays in binary (about 3x cheaper to build than text
    # arrays). Base types only (varchar, not varchar(n)): a cast to varchar(n) would truncate silently instead of
    # failing.
    casts = ", ".join(f"%b::{_column_type(f, conn)}[]" for f in fields)
    sql = f"{head}SELECT * FROM UNNEST({casts}){tail}"

    inserted: list[tuple] = []
    with _cursor(conn) as cursor:
        for batch in _batches(rows, batch_size):
            cursor.execute(sql, [list(column) for column in zip(*map(prepared, batch))])
            if returning:
                inserted.extend(tuple(r) for r in cursor.fetchall())
    return inserted


def _batches(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _concrete_field(model: type[models.Model], name: str) -> models.Field:
    """A column of the table (a reverse relation or a many-to-many has no column to insert into)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.column:
        raise ValueError(f"{model._meta.label}.{name} is not a column")
    return field


def _column_name(field: models.Field) -> str:
    if not field.column:
        raise ValueError(f"{field} has no column")
    return field.column


def _preparer(field: models.Field) -> Callable[[Any, Any], Any] | None:
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    kind = target.get_internal_type()
    return None if kind in _PLAIN_TYPES else field.get_db_prep_save


def _column_type(field: models.Field, conn) -> str:
    db_type = field.db_type(conn)
    if db_type is None:
        raise ValueError(f"{field} has no database column type")
    return db_type.split("(")[0]


def _cursor(conn):
    """A Django cursor with server-side parameter binding.

    Django's psycopg cursors bind client-side, quoting every array element in Python; server-side binding hands the
    arrays to libpq as they are. The cursor is still wrapped by Django (same connection and transaction, query logging
    and execute wrappers apply).
    """
    conn.ensure_connection()
    conn.validate_thread_sharing()
    raw = psycopg.Cursor(conn.connection)
    return conn.make_debug_cursor(raw) if conn.queries_logged else conn.make_cursor(raw)


# The columns a bulk-inserted match row carries, in order (the ATP import and the synthetic platform build such rows).
MATCH_ROW_COLUMNS = (
    "tournament_id",
    "round",
    "match_num",
    "participant1_id",
    "participant2_id",
    "winner_id",
    "loser_id",
    "state",
    "score",
    "completed_at",
    "created_at",
    "updated_at",
)
