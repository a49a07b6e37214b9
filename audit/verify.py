"""Re-compute the hash chain and name the first row that breaks it.

Rows are read in id order in keyset chunks (constant memory at any size). For each row, in this order:
  * its id must be the previous id + 1 (ids are contiguous by construction): else rows were deleted;
  * its prev_hash must be the previous row's hash: else a row was inserted, removed or moved before it;
  * its hash must be the hash of its own content: else a field of this row was changed.
At the end of a full run the chain head (last id and hash) must match the last row: else rows were removed from, or
appended to, the end.

`since`: verification starts at the first row (in time) at or after that moment and trusts that row's stored
prev_hash as the anchor, so it proves the rows from there on are intact and linked, not the rows before.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection
from psycopg import sql

from audit.chain import HASHED_COLUMNS, SQL_TIME_FORMAT, hash_payload
from audit.models import GENESIS_HASH, AuditChainHead, UserAuditEvent

CHUNK_SIZE = 20_000


@dataclass(frozen=True)
class Problem:
    row_id: int
    kind: str  # deleted, relinked (inserted / removed / reordered), changed, head
    message: str


@dataclass
class VerifyReport:
    rows_checked: int = 0
    first_id: int | None = None
    last_id: int | None = None
    problem: Problem | None = None
    duration_seconds: float = 0.0
    reached_end: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is None


# The time comes formatted by PostgreSQL exactly as the writer formats it, so no datetime is built per row.
_COLUMNS = sql.SQL(", ").join(
    sql.SQL("to_char(occurred_at AT TIME ZONE 'UTC', {})").format(sql.Literal(SQL_TIME_FORMAT))
    if c == "occurred_at"
    else sql.Identifier(c)
    for c in (*HASHED_COLUMNS, "hash")
)
_TABLE = sql.Identifier(UserAuditEvent._meta.db_table)
_CHUNK = (
    sql.SQL("SELECT {cols} FROM {table} WHERE id >= %s ORDER BY id LIMIT %s")
    .format(cols=_COLUMNS, table=_TABLE)
    .as_string(None)
)
_ANCHOR = sql.SQL("SELECT id, prev_hash FROM {table} WHERE occurred_at >= %s ORDER BY occurred_at, id LIMIT 1").format(
    table=_TABLE
)
_HASH_AT = len(HASHED_COLUMNS)


def verify_chain(
    *,
    since: dt.datetime | None = None,
    limit: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    on_chunk: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Verify the chain (or its part from `since`, at most `limit` rows); stops at the first problem."""
    started = time.perf_counter()
    report = VerifyReport()
    with connection.cursor() as cursor:
        next_id, expected_prev = 1, GENESIS_HASH
        if since is not None:
            cursor.execute(_ANCHOR.as_string(None), [since])
            anchor = cursor.fetchone()
            if anchor is None:
                report.reached_end = True
                report.duration_seconds = time.perf_counter() - started
                return report
            next_id, expected_prev = anchor
        while report.problem is None and (limit is None or report.rows_checked < limit):
            size = chunk_size if limit is None else min(chunk_size, limit - report.rows_checked)
            cursor.execute(_CHUNK, [next_id, size])
            rows = cursor.fetchall()
            for row in rows:
                report.problem = _check(row, next_id, expected_prev)
                if report.problem is not None:
                    break
                report.first_id = report.first_id or row[0]
                report.last_id, next_id, expected_prev = row[0], row[0] + 1, row[_HASH_AT]
                report.rows_checked += 1
            if on_chunk is not None:
                on_chunk(len(rows))
            if len(rows) < size:
                report.reached_end = report.problem is None
                break
    if report.reached_end and report.problem is None:
        report.problem = _check_head(report.last_id or (next_id - 1), expected_prev)
    report.duration_seconds = time.perf_counter() - started
    return report


def _check(row: tuple, expected_id: int, expected_prev: str) -> Problem | None:
    row_id = row[0]
    if row_id != expected_id:
        missing = f"row {expected_id}" if row_id == expected_id + 1 else f"rows {expected_id}..{row_id - 1}"
        return Problem(expected_id, "deleted", f"{missing} missing: deleted from the trail (next row is {row_id})")
    if row[_HASH_AT - 1] != expected_prev:
        return Problem(
            row_id,
            "relinked",
            f"row {row_id}: prev_hash is not the hash of row {row_id - 1}: a row was inserted, removed or moved "
            f"at or before it",
        )
    fields = dict(zip(HASHED_COLUMNS, row, strict=False))
    changes = fields["changes"]
    fields["changes"] = json.loads(changes) if isinstance(changes, str) else changes
    if hash_payload(fields) != row[_HASH_AT]:
        return Problem(row_id, "changed", f"row {row_id}: content does not match its hash: a field was changed")
    return None


def _check_head(last_id: int, last_hash: str) -> Problem | None:
    head = AuditChainHead.objects.filter(pk=1).values_list("last_id", "last_hash").first()
    head_id, head_hash = head if head is not None else (0, GENESIS_HASH)
    if head_id == last_id and head_hash == last_hash:
        return None
    if head_id > last_id:
        return Problem(last_id + 1, "deleted", f"rows {last_id + 1}..{head_id} missing: deleted from the end")
    return Problem(
        head_id + 1 if head_id < last_id else last_id,
        "head",
        f"the chain head says the last row is {head_id}, the table ends at row {last_id}: a row was appended "
        f"outside record_audit_event, or the head was changed",
    )


def run_verification(
    *,
    since: dt.datetime | None = None,
    limit: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> VerifyReport:
    """verify_chain, with its outcome published as metrics (the nightly job and the command both call this)."""
    from monitoring import metrics  # a leaf module: the only project import of this app besides itself

    report = verify_chain(since=since, limit=limit, on_chunk=on_chunk)
    metrics.AUDIT_VERIFY_OK.set(1 if report.ok else 0)
    metrics.AUDIT_VERIFY_ROWS.set(report.rows_checked)
    metrics.AUDIT_VERIFY_DURATION.set(report.duration_seconds)
    metrics.AUDIT_VERIFY_LAST_RUN.set(time.time())
    return report
