"""Query parameters as PostgreSQL array literals (text), built with str.join.

Handing psycopg a Python list makes it adapt every element one by one, which cost more client CPU than the rest of a
backfill chunk's insert; one string per column is quoted in one pass. The values must already be of their column's
type (ints are ints, timestamps aware datetimes): these functions only spell them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime


def int_array(values: Sequence[int | None]) -> str:
    """For a `%s::bigint[]` (or int[], smallint[]) parameter."""
    return "{" + ",".join(["NULL" if v is None else str(int(v)) for v in values]) + "}"


def text_array(values: Sequence[str | None]) -> str:
    """For a `%s::varchar[]` (or text[]) parameter: every element quoted and escaped."""
    quoted: dict[str | None, str] = {None: "NULL"}  # a chunk repeats a few distinct values thousands of times
    out = []
    for v in values:
        q = quoted.get(v)
        if q is None:
            q = quoted[v] = '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(q)
    return "{" + ",".join(out) + "}"


def timestamp_array(values: Sequence[datetime]) -> str:
    """For a `%s::timestamptz[]` parameter: aware datetimes in ISO 8601 with their offset (no character of it needs
    quoting in an array literal). Each distinct value is formatted once: a match's events share its time."""
    spelled: dict[datetime, str] = {}
    out = []
    for v in values:
        s = spelled.get(v)
        if s is None:
            s = spelled[v] = v.isoformat()
        out.append(s)
    return "{" + ",".join(out) + "}"
