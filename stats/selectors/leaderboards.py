"""Leaderboards: top N players by tournaments won, matches won, win rate (minimum matches) or DeltaCoins earned.

Global boards rank the projection's rows (UserProfileStats): the total_earned board walks its index and stops after
N entries; the others (secondary tie-breaks no index covers) scan the one stats table with a top-N sort. Per-game
boards (`game`) aggregate that game's match and placement events in the ledger (`metadata.game`) set-based: cost
grows with the game's events (bench/read_path.py measures it), which is why boards are cached; a per-(user, game)
projection would make them constant-time if per-game boards become a hot path. Coins carry no game, so there is no
per-game earnings board.

Ordering is total and deterministic (tie-breaks are part of the contract, tested):
  tournaments_won: titles desc, runner-up finishes desc, user id asc
  matches_won:     wins desc, matches played asc (the same wins in fewer matches ranks higher), user id asc
  win_rate:        won/played desc (exact: equal fractions compare equal), matches played desc, user id asc;
                   only players with at least `min_matches` matches
  total_earned:    DeltaCoins earned desc, user id asc
Only active accounts are ranked (erasure tombstones, erased and deactivated accounts are not), and only players with
something to rank (a zero count is not a ranking).

Results are cached for LEADERBOARD_TTL seconds (boards are read far more often than they change, and a per-game
board is an aggregate over the ledger), all under one generation key that an erasure drops (stats.cache);
`use_cache=False` reads fresh, `refresh=True` drops every cached board and recomputes this one (a periodic job).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, fields

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from activity.event_types import REVERSAL_OF, EventType as E
from activity.models import UserActivity
from activity.selectors.errors import InvalidQueryError
from activity.selectors.match_history import validate_game
from esports.profiles.models import UserProfile
from stats import cache as stats_cache
from stats.counters import counter_sql
from stats.models import UserProfileStats, _percent

LEADERBOARD_TTL = 60
DEFAULT_LIMIT = 100
MAX_LIMIT = 100
DEFAULT_MIN_MATCHES = 10
MAX_MIN_MATCHES = 100_000


class Board(enum.StrEnum):
    TOURNAMENTS_WON = "tournaments_won"
    MATCHES_WON = "matches_won"
    WIN_RATE = "win_rate"
    TOTAL_EARNED = "total_earned"


BOARD_TITLES: dict[Board, str] = {
    Board.TOURNAMENTS_WON: "Tournaments won",
    Board.MATCHES_WON: "Matches won",
    Board.WIN_RATE: "Win rate",
    Board.TOTAL_EARNED: "DeltaCoins earned",
}


class InvalidLeaderboardError(InvalidQueryError):
    code = "invalid_leaderboard"


@dataclass(frozen=True, slots=True)
class LeaderboardEntry:
    rank: int
    user_id: int
    username: str
    display_name: str
    value: str  # the ranked figure as shown: a count, a DeltaCoin amount or a percentage with 2 decimals
    tournaments_won: int
    tournaments_runner_up: int
    matches_played: int
    matches_won: int
    win_rate: str
    total_earned: int | None  # None on per-game boards (coins have no game)


_ENTRY_FIELDS = tuple(f.name for f in fields(LeaderboardEntry))


def parse_board(raw: str) -> Board:
    try:
        return Board(raw)
    except ValueError:
        raise InvalidLeaderboardError(f"Unknown leaderboard {raw!r}; choose one of: {', '.join(Board)}.") from None


def leaderboard(board: Board | str, *, limit: int = DEFAULT_LIMIT, game: str | None = None,
                min_matches: int = DEFAULT_MIN_MATCHES, use_cache: bool = True, refresh: bool = False) -> list[LeaderboardEntry]:
    """The top `limit` (1..100) players of `board`, overall or for one game; raises InvalidLeaderboardError."""
    board = parse_board(board) if not isinstance(board, Board) else board
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidLeaderboardError(f"limit must be an integer between 1 and {MAX_LIMIT}.")
    if isinstance(min_matches, bool) or not isinstance(min_matches, int) or not 1 <= min_matches <= MAX_MIN_MATCHES:
        raise InvalidLeaderboardError(f"min_matches must be an integer between 1 and {MAX_MIN_MATCHES}.")
    game = validate_game(game)
    if game is not None and board is Board.TOTAL_EARNED:
        raise InvalidLeaderboardError("DeltaCoins are not tied to a game: the total_earned board has no per-game view.")
    if board is not Board.WIN_RATE:
        min_matches = DEFAULT_MIN_MATCHES  # not part of the ranking: keep one cache entry per board

    def compute() -> list[tuple]:
        rows = _per_game(board, game, limit, min_matches) if game else _overall(board, limit, min_matches)
        return [tuple(getattr(e, name) for name in _ENTRY_FIELDS) for e in rows]  # plain tuples: cheap to pickle

    if not use_cache:
        rows = compute()
    else:
        key = f"leaderboards:v1:{board}:{game or '*'}:{min_matches}:{limit}"
        if refresh:
            stats_cache.invalidate_leaderboards()
        rows = stats_cache.generational_get(key, stats_cache.LEADERBOARD_GENERATION_KEY, compute, LEADERBOARD_TTL)
    return [LeaderboardEntry(*row) for row in rows]


def _win_rate(won: int, played: int) -> str:
    return str(_percent(won, played))  # the projection's own definition (UserProfileStats.win_rate)


# Every board is one statement: rank the candidates (the projection's rows, or one game's ledger aggregate) of
# active accounts, keep the top N, and only then look the N winners' names up. Ranking before joining lets a board
# whose order has an index (total_earned) stop after N index entries, and keeps the others to one scan and a top-N
# sort of a single table.
_ORDER: dict[Board, str] = {
    Board.TOURNAMENTS_WON: "{t}.tournaments_won DESC, {t}.tournaments_runner_up DESC, {t}.user_id",
    Board.MATCHES_WON: "{t}.matches_won DESC, {t}.matches_played ASC, {t}.user_id",
    # float8 division is correctly rounded, so equal fractions (2/4, 5/10) give equal keys and tie properly.
    Board.WIN_RATE: "{t}.matches_won::float8 / {t}.matches_played DESC, {t}.matches_played DESC, {t}.user_id",
    Board.TOTAL_EARNED: "{t}.total_earned DESC, {t}.user_id",
}
_FILTER: dict[Board, str] = {
    Board.TOURNAMENTS_WON: "{t}.tournaments_won > 0",
    Board.MATCHES_WON: "{t}.matches_won > 0",
    Board.WIN_RATE: "{t}.matches_played >= %(min_matches)s",
    Board.TOTAL_EARNED: "{t}.total_earned > 0",
}
_COLUMNS = ("tournaments_won", "tournaments_runner_up", "matches_played", "matches_won", "total_earned")
_GAME_TYPES = sorted({str(t) for base in (E.TOURNAMENT_WON, E.TOURNAMENT_RUNNER_UP, E.MATCH_PLAYED, E.MATCH_WON)
                      for t in (base, REVERSAL_OF[base])})


def _overall_source() -> str:
    return f"SELECT profile_id AS user_id, {', '.join(_COLUMNS)} FROM {UserProfileStats._meta.db_table}"


def _per_game_source() -> str:
    counters = ", ".join(f"{counter_sql(f)} AS {f}" for f in _COLUMNS if f != "total_earned")
    return (f"SELECT user_id, {counters}, NULL::bigint AS total_earned FROM {UserActivity._meta.db_table} "
            f"WHERE metadata ->> 'game' = %(game)s AND event_type = ANY(%(types)s) GROUP BY user_id")


def board_sql(board: Board, *, per_game: bool) -> str:
    users, profiles = get_user_model()._meta.db_table, UserProfile._meta.db_table
    columns = ", ".join(f"r.{c}" for c in _COLUMNS)
    return (
        f"WITH candidates AS ({_per_game_source() if per_game else _overall_source()}), "
        f"ranked AS (SELECT * FROM candidates c WHERE {_FILTER[board].format(t='c')} "
        f"AND EXISTS (SELECT 1 FROM {users} a WHERE a.id = c.user_id AND a.is_active) "
        f"ORDER BY {_ORDER[board].format(t='c')} LIMIT %(limit)s) "
        f"SELECT r.user_id, (SELECT username FROM {users} WHERE id = r.user_id), "
        f"(SELECT display_name FROM {profiles} WHERE user_id = r.user_id), {columns} FROM ranked r "
        f"ORDER BY {_ORDER[board].format(t='r')}"
    )


def _overall(board: Board, limit: int, min_matches: int) -> list[LeaderboardEntry]:
    return _rank(board, board_sql(board, per_game=False), {"limit": limit, "min_matches": min_matches}, parallel=False)


def _per_game(board: Board, game: str, limit: int, min_matches: int) -> list[LeaderboardEntry]:
    if connection.vendor != "postgresql":
        raise InvalidLeaderboardError("Per-game leaderboards need PostgreSQL.")
    params = {"game": game, "types": _GAME_TYPES, "limit": limit, "min_matches": min_matches}
    return _rank(board, board_sql(board, per_game=True), params, parallel=True)  # a real aggregate: workers help


def _rank(board: Board, sql: str, params: dict, *, parallel: bool) -> list[LeaderboardEntry]:
    serial = not parallel and connection.vendor == "postgresql"
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if serial:
            # A top-N walk reads a few hundred rows; starting parallel workers for it (which the planner likes to,
            # seeing the whole table behind the LIMIT) costs more than the walk itself: 20-40 ms here at 100k users.
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        if serial:  # leave a caller's enclosing transaction as it was
            cursor.execute("SET LOCAL max_parallel_workers_per_gather TO DEFAULT")
    entries = []
    for rank, (user_id, username, display_name, t_won, t_runner_up, played, won, earned) in enumerate(rows, start=1):
        win_rate = _win_rate(won, played)
        value = {Board.TOURNAMENTS_WON: t_won, Board.MATCHES_WON: won, Board.WIN_RATE: win_rate,
                 Board.TOTAL_EARNED: earned}[board]
        entries.append(LeaderboardEntry(rank, user_id, username, display_name, str(value), int(t_won),
                                        int(t_runner_up), int(played), int(won), win_rate,
                                        None if earned is None else int(earned)))
    return entries
