"""A replay SIGKILLed in the middle of a chunk: what it committed to its draft is exact up to its stored cursor,
readers still see the whole previous fold, and the maintenance job resumes it from there to the exact end."""

from __future__ import annotations

import shlex
import sys
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import connection

from stats.ratings import source
from stats.ratings.models import RatingGame, RatingHistory
from stats.ratings.pending import replay_pending_games
from tests.conftest import wait_until
from tests.factories import UserFactory
from tests.prefork_worker import PreforkWorker
from tests.private_services import subprocess_database_url
from tests.ratings_support import assert_close, entries, play, settle, solo_fold, stored, tournament

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

JAN = datetime(2024, 1, 1, tzinfo=UTC)


def waiting_backends() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return [pid for (pid,) in cursor.fetchall()]


def backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone() is not None


def test_a_replay_killed_mid_chunk_resumes_from_its_cursor_and_ends_exact(tmp_path):
    users = [UserFactory() for _ in range(6)]
    for day in range(12):
        t = tournament(starts_at=JAN + timedelta(days=day), external_id=f"T{day:02}")
        e = entries(t, users)
        for i in range(4):
            play(t, e[(day + i) % 6], e[(day + 2 * i + 1) % 6], round=["R16", "QF", "SF", "F"][i])
    settle()
    want = solo_fold("chess")
    assert_close(stored("chess"), want)

    # Hold back the draft history row of the 23rd match (the next fold's: the game is at fold 0): an uncommitted row
    # with its key, as a concurrent writer would have. The replay's insert of that chunk waits on the unique index,
    # having committed four chunks of five.
    ordered = source.candidates_after("chess", None)
    held = ordered[22]
    winners, _ = source.outcomes([held.key[4]])[held.key[4]]
    assert RatingGame.objects.get(game="chess").fold == 0
    published = set(RatingHistory.objects.filter(fold=0).values_list("match_id", "profile_id", "before", "after"))
    blocker = psycopg.connect(subprocess_database_url().replace("postgres://", "postgresql://"), autocommit=False)
    blocker.execute(
        f"INSERT INTO {RatingHistory._meta.db_table} (profile_id, game, key_at, key_ext, key_round, key_num, "
        "match_id, at, before, after, fold) VALUES (%s, 'chess', %s, %s, %s, %s, %s, %s, 0, 0, 1)",
        [winners[0], *held.key, held.at],
    )
    command = f"{shlex.quote(sys.executable)} manage.py recompute_ratings --game chess --chunk-size 5 -v 0"
    worker = PreforkWorker(tmp_path / "replay.log", command=command, DB_LOCK_TIMEOUT_MS="120000")
    try:
        waiting = wait_until(waiting_backends, timeout=60, interval=0.05, message="the replay to block mid-chunk")
        row = RatingGame.objects.get(game="chess")
        assert row.status == RatingGame.Status.RUNNING and row.replay_chunks == 4
        worker.kill()
        blocker.rollback()
        wait_until(lambda: not any(backend_alive(p) for p in waiting), timeout=30, message="the session to end")
    finally:
        blocker.close()
        if worker.process.poll() is None:
            worker.kill()

    # Stuck at the cursor: the draft holds exactly the 20 matches of the four committed chunks, and readers still see
    # the whole previous fold.
    row = RatingGame.objects.get(game="chess")
    assert row.status == RatingGame.Status.RUNNING and row.cur_match_id == ordered[19].key[4]
    assert RatingGame.objects.get(game="chess").fold == 0
    draft = RatingHistory.objects.filter(fold=1)
    assert set(draft.values_list("match_id", flat=True)) == {c.key[4] for c in ordered[:20]}
    still = RatingHistory.objects.filter(fold=0).values_list("match_id", "profile_id", "before", "after")
    assert set(still) == published
    assert_close(stored("chess"), want)

    (result,) = replay_pending_games()  # what beat runs every minute
    assert result.ran and result.matches == len(ordered) - 20
    game = RatingGame.objects.get(game="chess")
    assert game.status == RatingGame.Status.IDLE and game.fold == 1  # the full replay's draft fold is published
    assert not RatingHistory.objects.exclude(fold=1).exists()  # the replaced fold is dropped after the switch
    assert_close(stored("chess"), want)
