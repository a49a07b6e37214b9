"""Column-only loaders for the sources that make most of a history and its cost (registrations, matches, tournament
results): one SQL query per chunk that reads only the columns the derivation rules read, into small slotted rows the
rules take in place of model instances.

Building three or four Django model instances per source row (select_related) was the largest client cost of a
backfill chunk after the insert; the rules (activity.derivation) are the same, only what they read is lighter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import connection
from psycopg import sql

from activity.native_timestamps import load_timestamps_natively
from activity.sql_arrays import int_array
from esports.tournaments.models import Match, Registration, Tournament, TournamentResult


class TournamentRow:
    """What the rules read of a tournament: its metadata and its game / season scope."""

    __slots__ = ("id", "name", "game", "season")

    def __init__(self, id: int, name: str, game: str, season: int | None) -> None:  # noqa: A002 - the rules' name
        self.id, self.name, self.game, self.season = id, name, game, season


class EntryRow:
    """A registration as a match side: who it stands for (the user, or the team's members at created_at)."""

    __slots__ = ("id", "user_id", "team_id", "created_at")

    def __init__(self, id: int, user_id: int | None, team_id: int | None, created_at: datetime) -> None:  # noqa: A002
        self.id, self.user_id, self.team_id, self.created_at = id, user_id, team_id, created_at


class RegistrationRow(EntryRow):
    __slots__ = ("tournament", "status", "checked_in", "checked_in_at", "updated_at")

    def __init__(
        self,
        entry: tuple[int, int | None, int | None, datetime],
        tournament: TournamentRow,
        status: str,
        checked_in: bool,
        checked_in_at: datetime | None,
        updated_at: datetime,
    ) -> None:
        super().__init__(*entry)
        self.tournament, self.status, self.checked_in = tournament, status, checked_in
        self.checked_in_at, self.updated_at = checked_in_at, updated_at


class MatchRow:
    __slots__ = (
        "id",
        "state",
        "round",
        "completed_at",
        "updated_at",
        "tournament",
        "participant1",
        "participant2",
        "winner",
        "loser",
    )

    def __init__(
        self,
        head: tuple[int, str, str, datetime | None, datetime],
        tournament: TournamentRow,
        sides: tuple[EntryRow, EntryRow],
        winner_id: int | None,
        loser_id: int | None,
    ) -> None:
        self.id, self.state, self.round, self.completed_at, self.updated_at = head
        self.tournament = tournament
        self.participant1, self.participant2 = sides
        # winner/loser are always one of the two participants (database constraint): the loaded rows.
        by_id = {side.id: side for side in sides}
        self.winner = by_id.get(winner_id) if winner_id is not None else None
        self.loser = by_id.get(loser_id) if loser_id is not None else None


class ResultRow:
    """What the rules read of a tournament result: its tournament, its podium entries and its times."""

    __slots__ = (
        "id",
        "created_at",
        "updated_at",
        "tournament",
        "tournament_id",
        "winner",
        "runner_up",
        "third_place",
        "fourth_place",
    )

    def __init__(
        self,
        head: tuple[int, datetime, datetime],
        tournament: TournamentRow,
        podium: tuple[EntryRow | None, EntryRow | None, EntryRow | None, EntryRow | None],
    ) -> None:
        self.id, self.created_at, self.updated_at = head
        self.tournament, self.tournament_id = tournament, tournament.id
        self.winner, self.runner_up, self.third_place, self.fourth_place = podium


_T, _R, _M, _RES = (
    sql.Identifier(model._meta.db_table) for model in (Tournament, Registration, Match, TournamentResult)
)

_REGISTRATIONS_SQL = sql.SQL(
    "SELECT r.id, r.user_id, r.team_id, r.created_at, r.status, r.checked_in, r.checked_in_at, r.updated_at, "
    "t.id, t.name, t.game, t.season FROM {r} r JOIN {t} t ON t.id = r.tournament_id "
    "WHERE r.id = ANY(%s::bigint[]) ORDER BY r.id"
).format(r=_R, t=_T)

_MATCHES_SQL = sql.SQL(
    "SELECT m.id, m.state, m.round, m.completed_at, m.updated_at, m.winner_id, m.loser_id, "
    "t.id, t.name, t.game, t.season, "
    "p1.id, p1.user_id, p1.team_id, p1.created_at, p2.id, p2.user_id, p2.team_id, p2.created_at "
    "FROM {m} m JOIN {t} t ON t.id = m.tournament_id "
    "JOIN {r} p1 ON p1.id = m.participant1_id JOIN {r} p2 ON p2.id = m.participant2_id "
    "WHERE m.id = ANY(%s::bigint[]) ORDER BY m.id"
).format(m=_M, t=_T, r=_R)


# Where the fetched rows hold their entries' team ids (the SELECT lists above).
_REGISTRATION_TEAM = 2
_MATCH_SIDE_TEAMS = (13, 17)


_RESULTS_SQL = sql.SQL(
    "SELECT res.id, res.created_at, res.updated_at, t.id, t.name, t.game, t.season, "
    "w.id, w.user_id, w.team_id, w.created_at, ru.id, ru.user_id, ru.team_id, ru.created_at, "
    "tp.id, tp.user_id, tp.team_id, tp.created_at, fp.id, fp.user_id, fp.team_id, fp.created_at "
    "FROM {res} res JOIN {t} t ON t.id = res.tournament_id "
    "JOIN {r} w ON w.id = res.winner_id JOIN {r} ru ON ru.id = res.runner_up_id "
    "LEFT JOIN {r} tp ON tp.id = res.third_place_id LEFT JOIN {r} fp ON fp.id = res.fourth_place_id "
    "WHERE res.id = ANY(%s::bigint[]) ORDER BY res.id"
).format(res=_RES, t=_T, r=_R)

_CHECKED_IN_SQL = sql.SQL(
    "SELECT r.tournament_id, r.id, r.user_id, r.team_id, r.created_at FROM {r} r "
    "WHERE r.tournament_id = ANY(%s::bigint[]) AND r.checked_in ORDER BY r.id"
).format(r=_R)


def _fetch(query: sql.Composed, ids: Sequence[int]) -> list[tuple]:
    """The rows of one query over an id array, timestamps loaded by psycopg's compiled loader."""
    with connection.cursor() as cursor:
        load_timestamps_natively(cursor)
        cursor.execute(query, [int_array(ids)])
        return cursor.fetchall()


def fetch_registrations(ids: Sequence[int]) -> list[tuple]:
    """The registrations' columns the rules read, as the query returns them (registration_rows makes the rows)."""
    return _fetch(_REGISTRATIONS_SQL, ids)


def registration_teams(fetched: Sequence[tuple]) -> set[int]:
    """The teams of fetched team registrations."""
    return {row[_REGISTRATION_TEAM] for row in fetched if row[_REGISTRATION_TEAM] is not None}


def registration_rows(rows: Sequence[tuple]) -> list[RegistrationRow]:
    """Fetched registrations as the rules' rows (no database access)."""
    tournaments: dict[int, TournamentRow] = {}
    found = []
    for rid, user_id, team_id, created_at, status, checked_in, checked_in_at, updated_at, *t in rows:
        tournament = tournaments.get(t[0]) or tournaments.setdefault(t[0], TournamentRow(*t))
        found.append(
            RegistrationRow(
                (rid, user_id, team_id, created_at), tournament, status, checked_in, checked_in_at, updated_at
            )
        )
    return found


def fetch_matches(ids: Sequence[int]) -> list[tuple]:
    """The matches' columns the rules read, with their tournament and both sides, as the query returns them."""
    return _fetch(_MATCHES_SQL, ids)


def match_teams(fetched: Sequence[tuple]) -> set[int]:
    """The teams of the team entries on either side of fetched matches."""
    return {row[i] for row in fetched for i in _MATCH_SIDE_TEAMS if row[i] is not None}


def match_rows(rows: Sequence[tuple]) -> list[MatchRow]:
    """Fetched matches as the rules' rows (no database access)."""
    tournaments: dict[int, TournamentRow] = {}
    found = []
    for row in rows:
        t = row[7:11]
        tournament = tournaments.get(t[0]) or tournaments.setdefault(t[0], TournamentRow(*t))
        sides = (EntryRow(*row[11:15]), EntryRow(*row[15:19]))
        found.append(MatchRow(row[0:5], tournament, sides, row[5], row[6]))
    return found


def load_results(ids: Sequence[int]) -> list[ResultRow]:
    rows = _fetch(_RESULTS_SQL, ids)
    found = []
    for row in rows:
        podium = tuple(EntryRow(*row[i : i + 4]) if row[i] is not None else None for i in (7, 11, 15, 19))
        found.append(ResultRow(row[0:3], TournamentRow(*row[3:7]), podium))  # type: ignore[arg-type]
    return found


def checked_in_entries(tournament_ids: Sequence[int]) -> dict[int, list[EntryRow]]:
    """Tournament id -> its checked-in registrations as entries, by id."""
    rows = _fetch(_CHECKED_IN_SQL, tournament_ids)
    entries: dict[int, list[EntryRow]] = {}
    for tournament_id, *entry in rows:
        entries.setdefault(tournament_id, []).append(EntryRow(*entry))
    return entries
