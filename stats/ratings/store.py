"""Writes and reads of the rating projection, each one set-based statement: history rows in, player rows upserted
from the fold's states, states loaded, player rows rebuilt from history, history cut from a position on.

A replay writes its draft (the game's RatingHistory rows of the next fold, published fold + 1, and RatingDraftRating)
and `publish` switches it in, in one transaction: readers of RatingHistory (the published fold's rows only) and
PlayerRating see the whole previous fold or the whole new one. Functions that read or write history take `fold`, the
game's published fold (RatingGame.fold, read by the caller under the game's row lock); the draft is fold + 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from esports.profiles.models import UserProfile
from stats.ratings.fold import HistoryRow, PlayerState
from stats.ratings.models import (
    PlayerRating,
    RatingDraftRating,
    RatingGame,
    RatingHistory,
    RatingReplayMark,
)
from stats.ratings.rules import START, OrderKey

_HISTORY = sql.Identifier(RatingHistory._meta.db_table)
_RATINGS = sql.Identifier(PlayerRating._meta.db_table)
_DRAFT_RATINGS = sql.Identifier(RatingDraftRating._meta.db_table)
_PROFILES = sql.Identifier(UserProfile._meta.db_table)
_PROFILE_PK = sql.Identifier(UserProfile._meta.pk.attname)
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
    "fold",
)
_COLUMN_LIST = sql.SQL(", ").join(sql.Identifier(c) for c in _HISTORY_COLUMNS)
_COPY_HISTORY = sql.SQL("COPY {h} ({cols}) FROM STDIN").format(h=_HISTORY, cols=_COLUMN_LIST)


def insert_draft_history(game: str, rows: Sequence[HistoryRow], fold: int) -> None:
    """The draft's rows (fold + 1) by COPY, not INSERT, of rows formatted here (psycopg's per-value write_row cost
    more than the whole fold): a full replay writes every history row of the game again. Floats as repr
    (round-trips exactly). Rows of a profile deleted since its matches were recorded are left out (the foreign key
    would fail the whole chunk; the switch drops such a profile's draft state too)."""
    ids = sorted({r.profile_id for r in rows})
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("SELECT {pk} FROM {p} WHERE {pk} = ANY(%s)").format(p=_PROFILES, pk=_PROFILE_PK), [ids])
        present = {r[0] for r in cursor.fetchall()}
    if len(present) < len(ids):
        rows = [r for r in rows if r.profile_id in present]
    stamps: dict[datetime, str] = {}  # few distinct times (tournament dates): format each once

    def stamp(at: datetime) -> str:
        text = stamps.get(at)
        if text is None:
            text = stamps[at] = at.isoformat()
        return text

    texts: dict[str, str] = {}
    game_text = _copy_text(game)
    tail = f"\t{fold + 1}\n"
    lines = []
    last_key: OrderKey | None = None
    middle = ""
    for r in rows:
        if r.key is not last_key:  # the rows of one match are adjacent and share its key: format it once
            last_key, (ka, ke, kr, kn, mi) = r.key, r.key
            ext = texts.get(ke)
            if ext is None:
                ext = texts[ke] = _copy_text(ke)
            middle = f"\t{game_text}\t{stamp(ka)}\t{ext}\t{kr}\t{kn}\t{mi}\t{stamp(r.at)}\t"
        lines.append(f"{r.profile_id}{middle}{r.before!r}\t{r.after!r}{tail}")
    with connection.cursor() as cursor, cursor.cursor.copy(_COPY_HISTORY) as copy:
        copy.write("".join(lines))


def _copy_text(value: str) -> str:
    """A value in COPY's text format: backslash, tab, newline and carriage return escaped."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def upsert_draft_ratings(game: str, states: dict[int, PlayerState], profile_ids: Iterable[int]) -> None:
    """The draft state of these profiles (as of the replay's cursor)."""
    ids = sorted(set(profile_ids))
    if not ids:
        return
    query = sql.SQL(
        "INSERT INTO {r} (profile_id, game, rating, peak, peak_at, matches_rated, updated_at) "
        "SELECT p, %s, r, pk, pa, n, %s FROM unnest(%s::bigint[], %s::float8[], %s::float8[], %s::timestamptz[], "
        "%s::int[]) AS x(p, r, pk, pa, n) "
        "ON CONFLICT (profile_id, game) DO UPDATE SET rating = EXCLUDED.rating, peak = EXCLUDED.peak, "
        "peak_at = EXCLUDED.peak_at, matches_rated = EXCLUDED.matches_rated, updated_at = EXCLUDED.updated_at"
    ).format(r=_DRAFT_RATINGS)
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


def load_states(
    game: str, profile_ids: Iterable[int], *, lock: bool = False, draft: bool = False
) -> dict[int, PlayerState]:
    """The stored states of these profiles (absent ones: not rated yet). `lock`: FOR UPDATE, in profile order.
    `draft`: the running replay's states instead of the published ones."""
    ids = sorted(set(profile_ids))
    if not ids:
        return {}
    query = sql.SQL(
        "SELECT profile_id, rating, peak, peak_at, matches_rated FROM {r} WHERE game = %s AND profile_id = ANY(%s) "
        "ORDER BY profile_id {lock}"
    ).format(r=_DRAFT_RATINGS if draft else _RATINGS, lock=sql.SQL("FOR UPDATE") if lock else sql.SQL(""))
    with connection.cursor() as cursor:
        cursor.execute(query, [game, ids])
        return {p: PlayerState(r, pk, pa, n) for p, r, pk, pa, n in cursor.fetchall()}


def rebuild_ratings(game: str, profile_ids: Sequence[int], fold: int) -> None:
    """PlayerRating of these profiles from their history (of `fold`) alone (deleted when they have none left). The
    peak is the highest rating held, the start included; peak_at the first match that reached it."""
    if not profile_ids:
        return
    upsert = sql.SQL(
        "INSERT INTO {r} (profile_id, game, rating, peak, peak_at, matches_rated, updated_at) "
        "SELECT profile_id, game, (array_agg(after ORDER BY {desc}))[1], GREATEST(%s, MAX(after)), "
        "CASE WHEN MAX(after) > %s THEN (array_agg(at ORDER BY after DESC, {key}))[1] END, COUNT(*), %s "
        "FROM {h} WHERE game = %s AND fold = %s AND profile_id = ANY(%s) GROUP BY profile_id, game "
        "ON CONFLICT (profile_id, game) DO UPDATE SET rating = EXCLUDED.rating, peak = EXCLUDED.peak, "
        "peak_at = EXCLUDED.peak_at, matches_rated = EXCLUDED.matches_rated, updated_at = EXCLUDED.updated_at"
    ).format(r=_RATINGS, h=_HISTORY, key=_KEY, desc=_KEY_DESC)
    orphans = sql.SQL(
        "DELETE FROM {r} r WHERE r.game = %s AND r.profile_id = ANY(%s) AND NOT EXISTS "
        "(SELECT 1 FROM {h} h WHERE h.profile_id = r.profile_id AND h.game = r.game AND h.fold = %s)"
    ).format(r=_RATINGS, h=_HISTORY)
    ids = list(profile_ids)
    with connection.cursor() as cursor:
        cursor.execute(upsert, [START, START, timezone.now(), game, fold, ids])
        cursor.execute(orphans, [game, ids, fold])


# The window a bounded last_history_key reads first, back from its `before`.
_RECENT = timedelta(days=400)


def last_history_key(game: str, *, fold: int, before: OrderKey | None = None) -> OrderKey | None:
    """The position of the game's last history row of `fold` (strictly before `before` when given): of the
    published history (the published fold) or of the running replay's draft (fold + 1). None: there is none.

    With `before`, the rows of the last 400 days before it are read first (the BRIN index on key_at reads only
    their pages), and the whole history only when none is there: a replay's start reads this under the game's row
    lock, and the unbounded read sorted every row of the game (a third of a second on the ATP history)."""
    where: sql.Composable = sql.SQL("")
    params: list[Any] = [game, fold]
    if before is not None:
        where = sql.SQL(" AND ({key}) < (%s, %s, %s, %s, %s)").format(key=_KEY)
        params.extend(before)
    query = sql.SQL("SELECT {key} FROM {h} WHERE game = %s AND fold = %s{where}{window} ORDER BY {desc} LIMIT 1")
    with connection.cursor() as cursor:
        row = None
        if before is not None and before[0] > datetime(1, 1, 1, tzinfo=UTC) + _RECENT:
            window = sql.SQL(" AND key_at >= %s")
            cursor.execute(
                query.format(key=_KEY, h=_HISTORY, where=where, window=window, desc=_KEY_DESC),
                [*params, before[0] - _RECENT],
            )
            row = cursor.fetchone()
        if row is None:
            cursor.execute(query.format(key=_KEY, h=_HISTORY, where=where, window=sql.SQL(""), desc=_KEY_DESC), params)
            row = cursor.fetchone()
    return None if row is None else (row[0], row[1], row[2], row[3], row[4])


def _aggregate_states(rows: sql.Composable) -> sql.Composable:
    """profile_id, rating, peak, peak_at, matches_rated of the history rows `rows` (profile_id, key, at, after),
    folded per profile: the last row's rating, the highest held (the start included) and when it was first reached."""
    return sql.SQL(
        "SELECT profile_id, (array_agg(after ORDER BY {desc}))[1] AS rating, GREATEST(%s, MAX(after)) AS peak, "
        "CASE WHEN MAX(after) > %s THEN (array_agg(at ORDER BY after DESC, {key}))[1] END AS peak_at, "
        "COUNT(*) AS matches_rated FROM ({rows}) x GROUP BY profile_id"
    ).format(desc=_KEY_DESC, key=_KEY, rows=rows)


def states_at_base(game: str, profile_ids: Iterable[int], base: OrderKey | None, fold: int) -> dict[int, PlayerState]:
    """The states of these profiles after the published history up to `base` (inclusive; nothing when None): where
    a replay's fold of a player it has not met yet starts. Rows after the base (stale, or live matches published
    during the replay) are not read: the replay folds those matches itself."""
    ids = sorted(set(profile_ids))
    if not ids or base is None:
        return {}
    rows = sql.SQL(
        "SELECT profile_id, {key}, at, after FROM {h} WHERE game = %s AND fold = %s AND profile_id = ANY(%s) "
        "AND ({key}) <= (%s, %s, %s, %s, %s)"
    ).format(key=_KEY, h=_HISTORY)
    with connection.cursor() as cursor:
        cursor.execute(_aggregate_states(rows), [START, START, game, fold, ids, *base])
        return {p: PlayerState(r, pk, pa, n) for p, r, pk, pa, n in cursor.fetchall()}


def clear_draft(game: str, fold: int) -> None:
    """Every history row of the game outside its published `fold` (a draft, or the fold a full replay's switch
    replaced) and the draft states. Outside the switch: readers never read those rows. The caller merged the
    span first (merge_span)."""
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("DELETE FROM {h} WHERE game = %s AND fold <> %s").format(h=_HISTORY), [game, fold])
        cursor.execute(sql.SQL("DELETE FROM {r} WHERE game = %s").format(r=_DRAFT_RATINGS), [game])


def cut_draft(game: str, position: OrderKey, base: OrderKey | None, fold: int) -> None:
    """Rewind the draft: its history at and after `position` goes, and the draft state of every profile it touched
    is refolded from what is left (published rows up to the base, then the draft's); a profile left with no draft
    row loses its draft state (it starts again from the base, states_at_base)."""
    cut = sql.SQL(
        "DELETE FROM {h} WHERE game = %s AND fold = %s AND key_at >= %s AND ({key}) >= (%s, %s, %s, %s, %s) "
        "RETURNING profile_id"
    ).format(h=_HISTORY, key=_KEY)
    with connection.cursor() as cursor:
        cursor.execute(cut, [game, fold + 1, position[0], *position])
        touched = sorted({r[0] for r in cursor.fetchall()})
        if not touched:
            return
        cursor.execute(
            sql.SQL("DELETE FROM {r} WHERE game = %s AND profile_id = ANY(%s)").format(r=_DRAFT_RATINGS),
            [game, touched],
        )
        published: sql.Composable = sql.SQL("")
        params: list[Any] = [START, START, game, fold + 1, touched]
        if base is not None:
            published = sql.SQL(
                "SELECT profile_id, {key}, at, after, false AS d FROM {h} WHERE game = %s AND fold = %s "
                "AND profile_id = ANY(%s) AND ({key}) <= (%s, %s, %s, %s, %s) UNION ALL "
            ).format(key=_KEY, h=_HISTORY)
            params = [START, START, game, fold, touched, *base, game, fold + 1, touched]
        rows = sql.SQL(
            "{published}SELECT profile_id, {key}, at, after, true AS d FROM {h} "
            "WHERE game = %s AND fold = %s AND profile_id = ANY(%s)"
        ).format(published=published, key=_KEY, h=_HISTORY)
        folded = sql.SQL(
            "SELECT profile_id, (array_agg(after ORDER BY {desc}))[1], GREATEST(%s, MAX(after)), "
            "CASE WHEN MAX(after) > %s THEN (array_agg(at ORDER BY after DESC, {key}))[1] END, COUNT(*), now() "
            "FROM ({rows}) x GROUP BY profile_id HAVING bool_or(d)"
        ).format(desc=_KEY_DESC, key=_KEY, rows=rows)
        cursor.execute(
            sql.SQL(
                "INSERT INTO {r} (profile_id, rating, peak, peak_at, matches_rated, updated_at, game) "
                "SELECT *, %s FROM ({folded}) f"
            ).format(r=_DRAFT_RATINGS, folded=folded),
            [game, *params],
        )


def publish(game: str, base: OrderKey | None, fold: int) -> tuple[int, int | None]:
    """The switch, in the caller's transaction (which holds the game's row lock); returns the folds published now
    (RatingGame.fold, span_fold), which the caller stores.

    Neither kind moves a history row into the published rows: a full replay (no base) makes its draft fold the
    published one (clear_draft drops the replaced fold afterwards); a partial replay keeps the published rows up to
    the base, deletes those after it (a delete writes no index entry) and publishes its draft fold beside them as the
    span (merge_span folds it into the published fold afterwards, outside the lock). The players' rows take their
    draft states, and a player who lost rows without a draft state is rebuilt from what stays: the lock is held for
    the players and the replaced span, not for writing the history."""
    exists = sql.SQL("EXISTS (SELECT 1 FROM {p} p WHERE p.{pk} = d.profile_id)").format(p=_PROFILES, pk=_PROFILE_PK)
    with connection.cursor() as cursor:
        lost: list[int] = []
        if base is not None:
            # `key_at >= base's` is implied by the key comparison; spelled out, the BRIN index reads only the
            # replayed span's pages.
            after_base = sql.SQL(" AND key_at >= %s AND ({key}) > (%s, %s, %s, %s, %s)").format(key=_KEY)
            cursor.execute(
                sql.SQL(
                    "SELECT DISTINCT profile_id FROM {h} WHERE game = %s AND fold = %s{after} EXCEPT "
                    "SELECT profile_id FROM {dr} WHERE game = %s"
                ).format(h=_HISTORY, after=after_base, dr=_DRAFT_RATINGS),
                [game, fold, base[0], *base, game],
            )
            lost = sorted(r[0] for r in cursor.fetchall())
            cursor.execute(
                sql.SQL("DELETE FROM {h} WHERE game = %s AND fold = %s{after}").format(h=_HISTORY, after=after_base),
                [game, fold, base[0], *base],
            )
        cursor.execute(
            sql.SQL(
                "INSERT INTO {r} (profile_id, game, rating, peak, peak_at, matches_rated, updated_at) "
                "SELECT profile_id, game, rating, peak, peak_at, matches_rated, now() FROM {dr} d "
                "WHERE game = %s AND {exists} "
                "ON CONFLICT (profile_id, game) DO UPDATE SET rating = EXCLUDED.rating, peak = EXCLUDED.peak, "
                "peak_at = EXCLUDED.peak_at, matches_rated = EXCLUDED.matches_rated, updated_at = EXCLUDED.updated_at "
                # Under the game's lock: a player the replay leaves as they were (everyone before a correction's
                # effects, in a full replay) is not rewritten with its three indexes.
                "WHERE ({r}.rating, {r}.peak, {r}.peak_at, {r}.matches_rated) IS DISTINCT FROM "
                "(EXCLUDED.rating, EXCLUDED.peak, EXCLUDED.peak_at, EXCLUDED.matches_rated)"
            ).format(r=_RATINGS, dr=_DRAFT_RATINGS, exists=exists),
            [game],
        )
        if base is None:  # the whole history replaced: whoever the draft did not rate is rated no more
            cursor.execute(
                sql.SQL(
                    "DELETE FROM {r} r WHERE r.game = %s AND NOT EXISTS "
                    "(SELECT 1 FROM {dr} d WHERE d.profile_id = r.profile_id AND d.game = r.game)"
                ).format(r=_RATINGS, dr=_DRAFT_RATINGS),
                [game],
            )
            return fold + 1, None
    rebuild_ratings(game, lost, fold)
    return fold, fold + 1


def merge_span(game: str) -> None:
    """Fold a partial replay's switched span into the published fold, then stop publishing the span fold. The
    rows move between two published folds, so readers see the same rows throughout, and the move (the span's cost)
    holds no lock a live recording waits for; only the last statement, the span's reset, takes the game's row."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.SQL("SELECT fold, span_fold FROM {g} WHERE game = %s").format(g=_GAMES), [game])
        found = cursor.fetchone()
        if found is None or found[1] is None:
            return
        fold, span = found
        cursor.execute(
            sql.SQL("UPDATE {h} SET fold = %s WHERE game = %s AND fold = %s").format(h=_HISTORY), [fold, game, span]
        )
        cursor.execute(sql.SQL("UPDATE {g} SET span_fold = NULL WHERE game = %s").format(g=_GAMES), [game])


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


def write_live(
    game: str, rows: Sequence[HistoryRow], states: dict[int, PlayerState], last: OrderKey, fold: int
) -> None:
    """The live update's writes in one statement: its history rows (of the published `fold`), its players' rows,
    the game's last position."""
    ids = sorted({r.profile_id for r in rows})
    query = sql.SQL(
        "WITH h AS (INSERT INTO {h} (profile_id, game, key_at, key_ext, key_round, key_num, match_id, at, before, "
        "after, fold) SELECT p, %s, ka, ke, kr, kn, mi, a, b, af, %s FROM unnest(%s::bigint[], %s::timestamptz[], "
        "%s::text[], %s::smallint[], %s::bigint[], %s::bigint[], %s::timestamptz[], %s::float8[], %s::float8[]) "
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
        fold,
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
