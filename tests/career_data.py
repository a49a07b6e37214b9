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


KNOCKOUT_PLACEMENT = {"QF": 5, "R16": 9, "R32": 17, "R64": 33, "R128": 65}
KNOCKOUT = {*KNOCKOUT_PLACEMENT, "SF", "F"}


def csv_placements(event_rows: list[dict]) -> dict[str, int]:
    """player id -> placement in one tournament, by issue 15's rules read off its CSV rows: only a tournament with one
    final has a result; its two SF losers (match_num order) are third and fourth; anyone else is placed by the round of
    their last knockout loss, a walkover included."""
    finals = [r for r in event_rows if r["round"] == "F"]
    if len(finals) != 1:
        return {}
    placed = {finals[0]["winner_id"]: 1, finals[0]["loser_id"]: 2}
    semis = sorted((r for r in event_rows if r["round"] == "SF"), key=lambda r: int(r["match_num"]))
    if len(semis) == 2:
        placed.setdefault(semis[0]["loser_id"], 3)
        placed.setdefault(semis[1]["loser_id"], 4)
    last_loss: dict[str, str] = {}
    for r in event_rows:
        if r["round"] in KNOCKOUT and RANK[r["round"]] > RANK.get(last_loss.get(r["loser_id"], ""), 0):
            last_loss[r["loser_id"]] = r["round"]
    for player, round_ in last_loss.items():
        if player not in placed and round_ in KNOCKOUT_PLACEMENT:
            placed[player] = KNOCKOUT_PLACEMENT[round_]
    return placed


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
