"""ORM querysets compiled to SQL once per shape, for the hot reads whose only varying value is an id.

Why: a profile page's first pages (the timeline, the match history) are ORM querysets built from the privacy rules
(activity.privacy) and the derivation's conditions. Building and compiling such a queryset costs about 1 ms of
Python per request, more than PostgreSQL takes to run it from a warm cache. Hand-written SQL would say the privacy
rules a second time; compiling the ORM's own query once keeps them in one place.

How: `build(*args)` returns the queryset; its arguments are the shape. Each varying value is given to it as a
Marker's sentinel, an integer that cannot be a real id, so the compiled SQL and its parameter list are the same for
every call of the shape. The parameter positions holding a sentinel are noted; a call binds each marker's real value
there and keeps every other parameter as compiled. The shape's key is `build` with its arguments, sentinels
included, so anything else a query depends on (a viewer's class, a privacy flag, a page size) is one of those
arguments: `build` is a pure function of them, and the cache is correct by construction.

A marker the compiled parameters do not hold exactly (the ORM transformed or inlined it) fails loudly at compile
time, as does a queryset the loader cannot map (values_list(), select_related, deferred fields).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.db.models.query import ModelIterable, ValuesIterable

from project.one_trip_reads import Rows, instances

MAX_SHAPES = 256
_MARKER_BASE = -(2**62)  # far below any id a sequence hands out; still a bigint


@dataclass(frozen=True, slots=True)
class Marker:
    """The varying value `name` of a shape (an integer id), stood for at compile time by `sentinel`."""

    name: str

    @property
    def sentinel(self) -> int:
        return _MARKER_BASE - zlib.crc32(self.name.encode())


ID = Marker("id")


@dataclass(frozen=True, slots=True)
class Compiled:
    model: type
    sql: str
    params: tuple[Any, ...]
    slots: tuple[tuple[int, str], ...]  # (parameter position, marker name)
    extra: tuple[str, ...]  # a model query's annotations, selected beside the model's columns
    names: tuple[str, ...] | None = None  # a values() query's keys, in its columns' order; None for a model query
    converters: Mapping[int, tuple[list, Any]] = field(default_factory=dict)  # values(): the ORM's, per column

    def rows(self, values: Mapping[str, int]) -> list:
        """What the queryset would load (model instances, or dicts for values()) with each marker bound to its
        value in `values`."""
        params = list(self.params)
        for at, name in self.slots:
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an integer, got {value!r}")
            params[at] = value
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            result = Rows([c.name for c in cursor.description], cursor.fetchall())
        if self.names is None:
            return instances(self.model, result, extra=self.extra)
        return [dict(zip(self.names, self._converted(row), strict=True)) for row in result.rows]

    def _converted(self, row: tuple) -> list:
        # As SQLCompiler.apply_converters does, without keeping the compiler: it holds the connection of the thread
        # that compiled the shape, and the shape serves every thread.
        out = list(row)
        for at, (converters, expression) in self.converters.items():
            for convert in converters:
                out[at] = convert(out[at], expression, connection)
        return out


def rows_by_id(build: Callable[[int], QuerySet], value: int) -> list:
    """What `build(value)` loads, `build` compiled once: the shape of a read whose one argument is the id."""
    return compiled(build, ID.sentinel, markers=(ID,)).rows({ID.name: value})


def compiled(build: Callable[..., QuerySet], *args: Hashable, markers: tuple[Marker, ...]) -> Compiled:
    """`build(*args)` compiled once per (build, args): a module-level function and hashable arguments, each value
    that varies per call given as the sentinel of one of `markers`."""
    return _compile(build, args, markers)


@functools.lru_cache(maxsize=MAX_SHAPES)
def _compile(build: Callable[..., QuerySet], args: tuple[Hashable, ...], markers: tuple[Marker, ...]) -> Compiled:
    queryset = build(*args)
    query = queryset.query
    as_values = queryset._iterable_class is ValuesIterable
    if (
        not (as_values or queryset._iterable_class is ModelIterable)
        or query.select_related
        or query.deferred_loading[0]
    ):
        raise ValueError(f"{build.__qualname__}: only model and values() querysets compile to a shape")
    compiler = query.get_compiler(using=queryset.db)
    sql, params = compiler.as_sql()
    by_value = {m.sentinel: m.name for m in markers}
    slots = tuple((at, by_value[p]) for at, p in enumerate(params) if type(p) is int and p in by_value)
    missing = {m.name for m in markers} - {name for _, name in slots}
    if missing:
        raise ValueError(f"{build.__qualname__}: markers {sorted(missing)} are not parameters of the compiled SQL")
    names, converters = None, {}
    if as_values:  # as ValuesIterable names and converts them (after as_sql the compiler holds its select list)
        names = (*query.extra_select, *query.values_select, *query.annotation_select)
        converters = compiler.get_converters([expression for expression, _sql, _alias in compiler.select])
    return Compiled(queryset.model, sql, tuple(params), slots, tuple(query.annotation_select), names, converters)
