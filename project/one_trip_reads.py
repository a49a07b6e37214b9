"""Hot read statements in one round trip each, prepared once per connection with a generic plan where that is right.

Why: on this machine a round trip to PostgreSQL costs ~0.4 ms, and a page read wrapped the way Django makes it easy
(BEGIN; SET LOCAL ...; the statement; SET LOCAL ... TO DEFAULT; COMMIT) paid five or six of them. Planning was the
other half: the following feed's sixteen-branch statement took longer to parse and plan than to run (bench at 100k
players, 1,000 followees: 5.8 ms sent as literal SQL, 2.5 ms executed from a prepared generic plan).

How: one message in the simple query protocol, which PostgreSQL runs as one implicit transaction when none is open:

    [DEALLOCATE ...;] [PREPARE name (types) AS text;] SET LOCAL ...; EXECUTE name (values) [; SET LOCAL ... TO DEFAULT]

* The statement's text is fixed per shape: constants are composed in as literals by the caller, only what varies per
  call is a parameter (with its declared type). Its generic plan is then the plan the literals would get, and
  `plan_cache_mode = force_generic_plan` (local) makes PostgreSQL use it from the first execution, planning nothing.
  A statement whose plan depends on a value (a LIKE prefix becomes an index range only when the planner sees the
  pattern) is sent as it is instead (`prepare=False`): still one round trip with its settings.
* The settings are local: they end with the implicit transaction; inside a caller's transaction (an atomic block)
  they are put back to the session's defaults in the same message.
* Which statements a connection holds is booked per psycopg connection (a new connection starts with none). PREPARE
  is not transactional (a rolled-back transaction keeps what it prepared), so after any error the book is no longer
  trusted: the connection's next message starts with DEALLOCATE ALL and the book starts over. At most MAX_PREPARED
  per connection, the least recently used deallocated first.

Needs a connection held by the session (Django's persistent connections are); a transaction-pooling PgBouncer
would need its prepared-statement support (`max_prepared_statements`, 1.21+) or `prepare=False`.
"""

from __future__ import annotations

import hashlib
import re
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Model

MAX_PREPARED = 64
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")
_SETTING_NAME = re.compile(r"^[a-z_][a-z0-9_.]*$")


@dataclass(frozen=True)
class Read:
    """One SELECT with %(name)s placeholders (psycopg's style: %% for a literal %), the SQL type of each parameter
    (`types`, in any order), and the settings it runs under (SQL literals by name, local to it)."""

    text: str
    types: Mapping[str, str]
    settings: Mapping[str, str] = field(default_factory=dict)
    prepare: bool = True
    name: str = field(init=False)
    _prepare_sql: str = field(init=False)
    _execute_sql: str = field(init=False)
    _set_sql: list[str] = field(init=False)
    _reset_sql: list[str] = field(init=False)

    def __post_init__(self) -> None:
        bad = [n for n in self.settings if not _SETTING_NAME.match(n)]
        if bad:
            raise ValueError(f"not setting names: {bad}")
        order: list[str] = []

        def positional(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return "%%"  # stays escaped: the whole message is formatted once more
            if name not in self.types:
                raise ValueError(f"parameter {name!r} has no declared type")
            if name not in order:
                order.append(name)
            return f"${order.index(name) + 1}"

        body = _PLACEHOLDER.sub(positional, self.text)
        digest = hashlib.blake2b(f"{body}\x00{[self.types[n] for n in order]}".encode(), digest_size=12).hexdigest()
        object.__setattr__(self, "name", f"otr_{digest}")
        types = f" ({', '.join(self.types[n] for n in order)})" if order else ""
        values = f" ({', '.join(f'%({n})s' for n in order)})" if order else ""
        object.__setattr__(self, "_prepare_sql", f"PREPARE {self.name}{types} AS {body}")
        object.__setattr__(self, "_execute_sql", f"EXECUTE {self.name}{values}")
        local = {**self.settings, **({"plan_cache_mode": "force_generic_plan"} if self.prepare else {})}
        # Every part of a message is formatted with the parameters once: a literal % of a setting's value is escaped.
        object.__setattr__(self, "_set_sql", [f"SET LOCAL {n} = {v.replace('%', '%%')}" for n, v in local.items()])
        object.__setattr__(self, "_reset_sql", [f"SET LOCAL {n} TO DEFAULT" for n in local])


@dataclass(frozen=True, slots=True)
class Rows:
    columns: list[str]
    rows: list[tuple[Any, ...]]


class _Book:
    """The prepared statements one connection holds, least recently used first; `trusted` False after an error."""

    def __init__(self) -> None:
        self.names: OrderedDict[str, None] = OrderedDict()
        self.trusted = True


_books: weakref.WeakKeyDictionary[Any, _Book] = weakref.WeakKeyDictionary()


def fetch(read: Read, params: Mapping[str, Any]) -> Rows:
    """Run `read` with these parameter values on the default connection, in one round trip."""
    return _run(read, params, "")


def explain(read: Read, params: Mapping[str, Any], options: str = "") -> str:
    """The plan `read` runs with for these values (EXPLAIN [(options)] of its EXECUTE, under its settings)."""
    prefix = f"EXPLAIN ({options}) " if options else "EXPLAIN "
    return "\n".join(row[0] for row in _run(read, params, prefix).rows)


def _run(read: Read, params: Mapping[str, Any], prefix: str) -> Rows:
    with connection.cursor() as cursor:  # connected now: the book is the live connection's
        book = _books.setdefault(connection.connection, _Book())
        before, known = _bookkeeping(read, book)
        before += read._set_sql
        after = read._reset_sql if connection.in_atomic_block else []
        statement = prefix + (read._execute_sql if read.prepare else read.text)
        try:
            cursor.execute("; ".join([*before, statement, *after]), dict(params))
        except Exception:
            book.trusted = False  # what this message prepared or deallocated before it failed is unknown
            raise
        book.names, book.trusted = known, True
        for _ in before:
            cursor.nextset()
        columns = [c.name for c in cursor.description]
        return Rows(columns, cursor.fetchall())


def _bookkeeping(read: Read, book: _Book) -> tuple[list[str], OrderedDict[str, None]]:
    """The statements that must come before `read`'s (a DEALLOCATE ALL after an error, deallocations over
    MAX_PREPARED, its PREPARE) and the book as it will be once they ran."""
    before: list[str] = []
    known: OrderedDict[str, None] = OrderedDict() if not book.trusted else OrderedDict(book.names)
    if not book.trusted:
        before.append("DEALLOCATE ALL")
    if read.prepare:
        if read.name in known:
            known.move_to_end(read.name)
        else:
            while len(known) >= MAX_PREPARED:
                oldest, _ = known.popitem(last=False)
                before.append(f"DEALLOCATE {oldest}")
            before.append(read._prepare_sql)
            known[read.name] = None
    return before, known


def instances(model: type[Model], result: Rows, *, extra: Sequence[str] = ()) -> list[Any]:
    """`result`'s rows (every concrete column of `model`, by name, then the `extra` columns) as model instances
    loaded as the ORM loads them (its converters applied: JSON decoded with the field's decoder), each extra column
    an attribute."""
    fields = model._meta.concrete_fields
    index = {name: i for i, name in enumerate(result.columns)}
    positions = [index[str(f.column)] for f in fields]
    extras = [(name, index[name]) for name in extra]
    table = model._meta.db_table
    converting = []
    for at, f in enumerate(fields):
        col = f.get_col(table)
        converters = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if converters:
            converting.append((at, col, converters))
    names = [f.attname for f in fields]
    loaded = []
    for row in result.rows:
        values = [row[i] for i in positions]
        for at, col, converters in converting:
            for convert in converters:
                values[at] = convert(values[at], col, connection)
        obj = model.from_db(connection.alias, names, values)
        for name, i in extras:
            setattr(obj, name, row[i])
        loaded.append(obj)
    return loaded
