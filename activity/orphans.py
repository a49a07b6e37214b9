"""Ledger rows whose source row no longer exists: deletions that sent no signal (QuerySet.delete of some paths, raw
SQL), found set-based so the nightly reconciliation can compensate them through record_events_for."""

from __future__ import annotations

from collections.abc import Iterator

from django.db import connection

from activity.models import UserActivity
from activity.sources import source_kind

_LEDGER = UserActivity._meta.db_table
MAX_ID = 2**63 - 1
CHUNK = 5000  # orphaned ids returned per statement


def orphaned_source_ids(source_label: str, lo: int, hi: int, *, chunk: int = CHUNK) -> Iterator[list[int]]:
    """The ledger's source ids in (lo, hi] for `source_label` with no row left in the source table, ascending, in
    lists of at most `chunk`.

    An anti-join walking the ledger's (source_model, source_id, ...) unique index over the key range, each candidate
    probed on the source's primary key; one statement per `chunk` ids. A row already compensated is still returned
    (re-recording it adds nothing): deletions are rare enough that the nightly re-check costs little.
    """
    kind = source_kind(source_label)
    table = kind.model._meta.db_table
    pk = kind.model._meta.pk.column
    sql = (
        f"SELECT DISTINCT a.source_id FROM {_LEDGER} a WHERE a.source_model = %s AND a.source_id > %s "
        f"AND a.source_id <= %s AND NOT EXISTS (SELECT 1 FROM {table} s WHERE s.{pk} = a.source_id) "
        f"ORDER BY a.source_id LIMIT %s"
    )
    cursor_at = lo
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [source_label, cursor_at, hi, chunk])
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return
        yield ids
        if len(ids) < chunk:
            return
        cursor_at = ids[-1]
