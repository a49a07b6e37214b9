"""Writes and reads of the rating projection, each one set-based statement: history rows in, player rows upserted
from the fold's states, states loaded, player rows rebuilt from history, history cut from a position on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone
from psycopg import sql

from stats.ratings.fold import HistoryRow, PlayerState
from stats.ratings.models import PlayerRating, RatingGame, RatingHistory, RatingReplayMark
from stats.ratings.rules import START, OrderKey

_HISTORY = sql.Identifier(RatingHistory._meta.db_table)
_RATINGS = sql.Identifier(PlayerRating._meta.db_table)
_MARKS = sql.Identifier(RatingReplayMark._meta.db_table)
_KEY = sql.SQL("key_at, key_ext, key_round, key_num, match_id")
# Every column descending (a trailing DESC would apply to the last one only).
_KEY_DESC = sql.SQL("key_at DESC, key_ext DESC, key_round DESC, key_num DESC, match_id DESC")


_HISTORY_COLUMNS = (
    "profile_id",
    "game",
    "key_at",
    "key_ext",
    "key_round",
    "key_num",
    "match_id",
    "at",
    "before",
    "after",
)
_COPY_HISTORY = sql.SQL("COPY {h} ({cols}) FROM STDIN").format(
    h=_HISTORY, cols=sql.SQL(", ").join(sql.Identifier(c) for c in _HISTORY_COLUMNS)
)


def insert_history(game: str, rows: Sequence[HistoryRow]) -> None:
    """COPY, not INSERT, of rows formatted here (psycopg's per-value write_row cost more than the whole fold): a
    full replay writes every history row of the game again. Floats as repr (round-trips exactly)."""
    if not rows:
        return
    stamps: dict[datetime, str] = {}  # few distinct times (tournament dates): format each once

    def stamp(at: datetime) -> str:
        text = stamps.get(at)
        if text is None:
            text = stamps[at] = at.isoformat()
        return text

    texts: dict[str, str] = {}
    game_text = _copy_text(game)
    lines = []
    for r in rows:
        ext = texts.get(r.key[1])
        if ext is None:
            ext = texts[r.key[1]] = _copy_text(r.key[1])
        lines.append(
            f"{r.profile_id}\t{game_text}\t{stamp(r.key[0])}\t{ext}\t{r.key[2]}\t{r.key[3]}\t{r.key[4]}\t"
            f"{stamp(r.at)}\t{r.before!r}\t{r.after!r}\n"
        )
    with connection.cursor() as cursor, cursor.cursor.copy(_COPY_HISTORY) as copy:
        copy.write("".join(lines))


def _copy_text(value: str) -> str:
    """A value in COPY's text format: backslash, tab, newline and carriage return escaped."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def upsert_ratings(game: str, states: dict[int, PlayerState], profile_ids: Iterable[int]) -> None:
    ids = sorted(set(profile_ids))
    if not ids:
        return
    query = sql.SQL(
        "INSERT INTO {r} (profile_id, game, rating, peak, peak_at, matches_rated, updated_at) "
        "SELECT p, %s, r, pk, pa, n, %s FROM unnest(%s::bigint[], %s::float8[], %s::float8[], %s::timestamptz[], "
        "%s::int[]) AS x(p, r, pk, pa, n) "
        "ON CONFLICT (profile_id, game) DO UPDATE SET rating = EXCLUDED.rating, peak = EXCLUDED.peak, "
        "peak_at = EXCLUDED.peak_at, matches_rated = EXCLUDED.matches_rated, updated_at = EXCLUDED.updated_at"
    ).format(r=_RATINGS)
    with connection.cursor() as cursor:
        cursor.execute(
            query,
            [
                game,
                timezone.now(),
                ids,
                [states[i].rating for i in ids],
                [states[i].peak for i in ids],
                [states[i].peak_at for i in ids],
                [states[i].matches_rated for i in ids],
            ],
        )


def load_states(game: str, profile_ids: Iterable[int], *, lock: bool = False) -> dict[int, PlayerState]:
    """The stored states of these profiles (absent ones: not rated yet). `lock`: FOR UPDATE, in profile order."""
    ids = sorted(set(profile_ids))
    if not ids:
        return {}
    query = sql.SQL(
        "SELECT profile_id, rating, peak, peak_at, matches_rated FROM {r} WHERE game = %s AND profile_id = ANY(%s) "
        "ORDER BY profile_id {lock}"
    ).format(r=_RATINGS, lock=sql.SQL("FOR UPDATE") if lock else sql.SQL(""))
    with connection.cursor() as cursor:
        cursor.execute(query, [game, ids])
        return {p: PlayerState(r, pk, pa, n) for p, r, pk, pa, n in cursor.fetchall()}


def cut_history(game: str, position: OrderKey) -> list[int]:
    """Delete the game's history at and after `position`; the profiles it touched, whose rows are then rebuilt."""
    query = sql.SQL("DELETE FROM {h} WHERE game = %s AND ({key}) >= (%s, %s, %s, %s, %s) RETURNING profile_id").format(
        h=_HISTORY, key=_KEY
    )
    with connection.cursor() as cursor:
        cursor.execute(query, [game, *position])
        touched = sorted({r[0] for r in cursor.fetchall()})
    rebuild_ratings(game, touched)
    return touched


def clear_game(game: str) -> None:
    """A replay from the very start: no history, no ratings (faster than cutting row by row)."""
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("DELETE FROM {h} WHERE game = %s").format(h=_HISTORY), [game])
        cursor.execute(sql.SQL("DELETE FROM {r} WHERE game = %s").format(r=_RATINGS), [game])


def rebuild_ratings(game: str, profile_ids: Sequence[int]) -> None:
    """PlayerRating of these profiles from their history alone (deleted when they have none left). The peak is the
    highest rating held, the start included; peak_at the first match that reached it."""
    if not profile_ids:
        return
    upsert = sql.SQL(
        "INSERT INTO {r} (profile_id, game, rating, peak, peak_at, matches_rated, updated_at) "
        "SELECT profile_id, game, (array_agg(after ORDER BY {desc}))[1], GREATEST(%s, MAX(after)), "
        "CASE WHEN MAX(after) > %s THEN (array_agg(at ORDER BY after DESC, {key}))[1] END, COUNT(*), %s "
        "FROM {h} WHERE game = %s AND profile_id = ANY(%s) GROUP BY profile_id, game "
        "ON CONFLICT (profile_id, game) DO UPDATE SET rating = EXCLUDED.rating, peak = EXCLUDED.peak, "
        "peak_at = EXCLUDED.peak_at, matches_rated = EXCLUDED.matches_rated, updated_at = EXCLUDED.updated_at"
    ).format(r=_RATINGS, h=_HISTORY, key=_KEY, desc=_KEY_DESC)
    orphans = sql.SQL(
        "DELETE FROM {r} r WHERE r.game = %s AND r.profile_id = ANY(%s) AND NOT EXISTS "
        "(SELECT 1 FROM {h} h WHERE h.profile_id = r.profile_id AND h.game = r.game)"
    ).format(r=_RATINGS, h=_HISTORY)
    ids = list(profile_ids)
    with connection.cursor() as cursor:
        cursor.execute(upsert, [START, START, timezone.now(), game, ids])
        cursor.execute(orphans, [game, ids])


def last_history_key(game: str) -> OrderKey | None:
    query = sql.SQL("SELECT {key} FROM {h} WHERE game = %s ORDER BY {desc} LIMIT 1").format(
        key=_KEY, h=_HISTORY, desc=_KEY_DESC
    )
    with connection.cursor() as cursor:
        cursor.execute(query, [game])
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1], row[2], row[3], row[4])


def add_marks(game: str, positions: Sequence[OrderKey]) -> None:
    """ "Replay from here" marks; plain inserts, no lock, so a big recording batch never waits for a replay."""
    if not positions:
        return
    query = sql.SQL(
        "INSERT INTO {m} (game, key_at, key_ext, key_round, key_num, match_id, created_at) "
        "SELECT %s, ka, ke, kr, kn, mi, %s FROM unnest(%s::timestamptz[], %s::text[], %s::smallint[], %s::bigint[], "
        "%s::bigint[]) AS x(ka, ke, kr, kn, mi)"
    ).format(m=_MARKS)
    with connection.cursor() as cursor:
        cursor.execute(query, [game, timezone.now(), *([p[i] for p in positions] for i in range(5))])


def take_marks(game: str) -> list[OrderKey]:
    """Consume the game's marks (in the replay's transaction): their positions, earliest first."""
    query = sql.SQL("DELETE FROM {m} WHERE game = %s RETURNING {key}").format(m=_MARKS, key=_KEY)
    with connection.cursor() as cursor:
        cursor.execute(query, [game])
        keys = [(r[0], r[1], r[2], r[3], r[4]) for r in cursor.fetchall()]
    return sorted(set(keys))


_GAMES = sql.Identifier(RatingGame._meta.db_table)


def write_live(game: str, rows: Sequence[HistoryRow], states: dict[int, PlayerState], last: OrderKey) -> None:
    """The live update's writes in one statement: its history rows, its players' rows, the game's last position."""
    ids = sorted({r.profile_id for r in rows})
    query = sql.SQL(
        "WITH h AS (INSERT INTO {h} (profile_id, game, key_at, key_ext, key_round, key_num, match_id, at, before, "
        "after) SELECT p, %s, ka, ke, kr, kn, mi, a, b, af FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[], "
        "%s::smallint[], %s::bigint[], %s::bigint[], %s::timestamptz[], %s::float8[], %s::float8[]) "
        "AS x(p, ka, ke, kr, kn, mi, a, b, af)), "
        "r AS (INSERT INTO {r} (profile_id, game, rating, peak, peak_at, matches_rated, updated_at) "
        "SELECT p, %s, r, pk, pa, n, now() FROM unnest(%s::bigint[], %s::float8[], %s::float8[], "
        "%s::timestamptz[], %s::int[]) AS x(p, r, pk, pa, n) "
        "ON CONFLICT (profile_id, game) DO UPDATE SET rating = EXCLUDED.rating, peak = EXCLUDED.peak, "
        "peak_at = EXCLUDED.peak_at, matches_rated = EXCLUDED.matches_rated, updated_at = EXCLUDED.updated_at) "
        "UPDATE {g} SET key_at = %s, key_ext = %s, key_round = %s, key_num = %s, match_id = %s, updated_at = now() "
        "WHERE game = %s"
    ).format(h=_HISTORY, r=_RATINGS, g=_GAMES)
    params: list[Any] = [
        game,
        [r.profile_id for r in rows],
        *([r.key[i] for r in rows] for i in range(5)),
        [r.at for r in rows],
        [r.before for r in rows],
        [r.after for r in rows],
        game,
        ids,
        [states[i].rating for i in ids],
        [states[i].peak for i in ids],
        [states[i].peak_at for i in ids],
        [states[i].matches_rated for i in ids],
        *last,
        game,
    ]
    with connection.cursor() as cursor:
        cursor.execute(query, params)
