"""Real ATP history for the career-page tests: imported and recorded once per test module, committed (so a live
server thread sees it too), flushed when the module ends, exactly as a transactional test's teardown flushes.

`atp_rows` reads the CSV straight with the csv module: the tests' expectations never come from our tables.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from activity.backfill.service import drive_inline, start_backfill
from activity.models import BackfillRun

ATP_DIR = Path(os.environ.get("ATP_DIR") or Path(settings.BASE_DIR).parent / "shared" / "data" / "atp")
MATCHES = "atp_tour_matches.csv.gz"
ROUND_ORDER = ("ER", "R128", "R64", "R32", "R16", "RR", "QF", "SF", "BR", "F")
RANK = {name: i for i, name in enumerate(ROUND_ORDER, start=1)}


def is_walkover(score: str) -> bool:
    s = score.strip().lower()
    return "w/o" in s or s == "walkover"


def atp_rows(first: int, last: int) -> list[dict]:
    """The CSV's rows of seasons first..last that the import keeps (a row whose winner is its loser is skipped)."""
    if not (ATP_DIR / MATCHES).is_file():
        pytest.fail(f"the ATP data is expected at {ATP_DIR} (set ATP_DIR)", pytrace=False)
    with gzip.open(ATP_DIR / MATCHES, "rt", encoding="utf-8", newline="") as fh:
        return [
            row
            for row in csv.DictReader(fh)
            if first <= int(row["tourney_id"][:4]) <= last and row["winner_id"] != row["loser_id"]
        ]


@contextmanager
def recorded_atp_history(django_db_blocker, first: int, last: int) -> Iterator[None]:
    """Import seasons first..last, record them through the backfill (inline, no broker), yield, then flush."""
    with django_db_blocker.unblock(), pytest.MonkeyPatch.context() as mp:
        # The import is history from before the ledger: its saves enqueue nothing (the backfill records them).
        mp.setattr("tasks.receivers.enqueue_source_change", lambda label, pk: None)
        try:
            call_command("import_atp", str(ATP_DIR), from_year=first, to_year=last, stdout=io.StringIO())
            run = drive_inline(start_backfill(None, batch_size=5000, enqueue=False).pk)
            assert run.status == BackfillRun.Status.SUCCEEDED, run.last_error
            with connection.cursor() as cur:
                cur.execute("ANALYZE")  # as autovacuum would have by now in production: plans from real statistics
            yield
        finally:
            call_command("flush", interactive=False, verbosity=0, reset_sequences=False)
