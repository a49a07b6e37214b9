"""Import of the ATP tour history (../shared/data/atp, see its README.md) into the source models.

The mapping is fixed so that anyone can check the result against the CSV:

* a User `atp<player_id>` with a profile (display name from the players file) and a wallet per player id;
* a Tournament per `tourney_id`: game "tennis", status completed, season = first four characters of the id,
  `external_id` = the id, `starts_at` = `tourney_date`;
* a confirmed, checked-in solo Registration per player per tournament (registered and checked in on the tournament
  date);
* a Match per row, keyed by (tournament, `match_num`): `forfeit` when the score contains "W/O" or is "Walkover"
  (trimmed, any case), otherwise `completed`; participant1 / winner = the row's winner, participant2 / loser = the
  row's loser; `round` and `score` kept; `completed_at` = the tournament date. A row whose winner and loser are the same
  id is skipped and counted;
* a TournamentResult for a tournament with exactly one `F` match: its winner and loser; third and fourth place = the
  losers of the `SF` matches (in `match_num` order) when there are exactly two, otherwise empty.

The matches file is streamed and written one season at a time. The unit is the season, not the tournament: the file
keeps each season's rows together, sorted by season, but not each tournament's (17 tournaments have rows split within
their season, e.g. 1968-303 and the Hopman Cups 1998-615 ... 2010-615); a tournament never spans seasons because its
season comes from its id, so every season chunk holds whole tournaments. Each season is one transaction, so a
malformed row or a failure rolls back the whole season being written, never part of it. Inserts go through
`insert_rows` with ON CONFLICT DO NOTHING on the natural keys (username, external_id, (tournament, user),
(tournament, match_num), tournament), so a second run adds nothing. Bulk inserts send no signals: the import records
nothing in the ledger (a backfill does that).
"""

from __future__ import annotations

import csv
import gzip
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone as dj_timezone

from esports.profiles.services import create_users_bulk
from esports.tournaments.bulk_insert import MATCH_ROW_COLUMNS, insert_rows
from esports.tournaments.models import Match, Registration, Tournament, TournamentResult

MATCHES_FILE = "atp_tour_matches.csv.gz"
PLAYERS_FILE = "atp_players.csv.gz"
MATCH_COLUMNS = (
    "tourney_id",
    "tourney_name",
    "tourney_date",
    "match_num",
    "round",
    "winner_id",
    "winner_name",
    "loser_id",
    "loser_name",
    "score",
)
PLAYER_COLUMNS = ("player_id", "name_first", "name_last")
GAME = "tennis"
USERNAME_PREFIX = "atp"

SKIP_SAME_PLAYER = "winner and loser are the same player id"
SKIP_DUPLICATE_KEY = "duplicate (tourney_id, match_num)"


class AtpImportError(Exception):
    """A data file is missing, unreadable or malformed. The season being read when it was found was not written."""


def username_for(player_id: int) -> str:
    return f"{USERNAME_PREFIX}{player_id}"


def is_walkover(score: str) -> bool:
    text = score.strip().lower()
    return "w/o" in text or text == "walkover"


@dataclass(frozen=True, slots=True)
class AtpRow:
    line: int
    tourney_id: str
    tourney_name: str
    tourney_date: datetime
    season: int
    match_num: int
    round: str
    winner_id: int
    winner_name: str
    loser_id: int
    loser_name: str
    score: str


@dataclass(slots=True)
class Tally:
    created: int = 0
    present: int = 0

    def add(self, wanted: int, created: int) -> None:
        self.created += created
        self.present += wanted - created

    def __str__(self) -> str:
        return f"{self.created:,} created, {self.present:,} already present"


@dataclass
class AtpImportReport:
    players: Tally = field(default_factory=Tally)
    tournaments: Tally = field(default_factory=Tally)
    registrations: Tally = field(default_factory=Tally)
    matches: Tally = field(default_factory=Tally)
    forfeits: Tally = field(default_factory=Tally)
    results: Tally = field(default_factory=Tally)
    rows_read: int = 0
    rows_outside_years: int = 0
    skipped: Counter = field(default_factory=Counter)
    seasons: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_in_range(self) -> int:
        return self.rows_read - self.rows_outside_years

    @property
    def rows_per_second(self) -> float:
        """Rows of the requested seasons handled per second (rows outside the range are only scanned)."""
        return self.rows_in_range / self.seconds if self.seconds > 0 else 0.0

    def summary_lines(self) -> list[str]:
        span = f"{self.seasons[0]}-{self.seasons[-1]}" if self.seasons else "none"
        lines = [
            f"seasons imported: {len(self.seasons)} ({span})",
            f"players:       {self.players}",
            f"tournaments:   {self.tournaments}",
            f"registrations: {self.registrations}",
            f"matches:       {self.matches}",
            f"  forfeits:    {self.forfeits}",
            f"results:       {self.results}",
            f"rows read: {self.rows_read:,}; in the year range: {self.rows_in_range:,}; "
            f"skipped: {sum(self.skipped.values()):,}",
        ]
        lines += [f"  skipped, {reason}: {count:,}" for reason, count in sorted(self.skipped.items())]
        lines.append(f"took {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s of the requested seasons)")
        return lines


def import_atp(
    directory: Path | str,
    *,
    from_year: int | None = None,
    to_year: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> AtpImportReport:
    """Import the seasons in [from_year, to_year] (inclusive, either open) from the ATP data directory."""
    started = time.perf_counter()
    directory = Path(directory)
    matches_path, players_path = _data_files(directory)
    if from_year is not None and to_year is not None and from_year > to_year:
        raise AtpImportError(f"--from-year {from_year} is after --to-year {to_year}")
    # Check both archives end to end before writing anything: a truncated or corrupt download fails here, cheaply
    # (decompression only), instead of after some seasons were imported.
    for path in (players_path, matches_path):
        _verify_gzip(path)
    names = _read_players(players_path)

    report = AtpImportReport()
    known_users: dict[int, int] = {}  # player id -> user id, for players already handled in this run
    for season, rows in _seasons(_read_matches(matches_path, report, from_year, to_year)):
        _import_season(season, rows, names, known_users, report)
        report.seasons.append(season)
        if progress:
            elapsed = time.perf_counter() - started
            progress(
                f"season {season}: {len(rows):,} rows | total {report.matches.created:,} matches created, "
                f"{report.matches.present:,} present, {report.rows_in_range:,} rows in {elapsed:.1f} s "
                f"({report.rows_in_range / elapsed:,.0f} rows/s)"
            )
    report.seconds = time.perf_counter() - started
    return report


# --- reading -----------------------------------------------------------------------------------------------------


def _data_files(directory: Path) -> tuple[Path, Path]:
    if not directory.is_dir():
        raise AtpImportError(
            f"{directory} is not a directory: expected the ATP data directory holding "
            f"{MATCHES_FILE} and {PLAYERS_FILE} (see its README.md)"
        )
    paths = (directory / MATCHES_FILE, directory / PLAYERS_FILE)
    for path in paths:
        if not path.is_file():
            raise AtpImportError(
                f"{path} not found: the ATP data directory must hold {MATCHES_FILE} and {PLAYERS_FILE}"
            )
    return paths


def _verify_gzip(path: Path) -> None:
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise AtpImportError(f"{path} is corrupt or truncated: {exc}") from exc


def _csv_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; any decoding or format problem becomes an AtpImportError naming the line."""
    line = 1
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise AtpImportError(f"{path} is empty (no header line)")
            header = [h.strip() for h in header]
            missing = [c for c in required if c not in header]
            if missing:
                raise AtpImportError(f"{path} lacks the column(s) {', '.join(missing)} (header: {', '.join(header)})")
            for values in reader:
                line = reader.line_num
                if len(values) != len(header):
                    raise AtpImportError(f"{path} line {line}: {len(values)} fields, the header has {len(header)}")
                yield line, dict(zip(header, values))
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
        raise AtpImportError(f"{path} is corrupt or truncated after line {line}: {exc}") from exc


def _int(path: Path, line: int, column: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise AtpImportError(f"{path} line {line}: {column} is not an integer: {value!r}") from None


def _read_players(path: Path) -> dict[int, str]:
    names: dict[int, str] = {}
    for line, row in _csv_rows(path, PLAYER_COLUMNS):
        player_id = _int(path, line, "player_id", row["player_id"])
        names[player_id] = f"{row['name_first'].strip()} {row['name_last'].strip()}".strip()
    return names


def _read_matches(path: Path, report: AtpImportReport, from_year: int | None, to_year: int | None) -> Iterator[AtpRow]:
    dates: dict[str, datetime] = {}  # a few thousand distinct dates over 195k rows: parse each once
    for line, row in _csv_rows(path, MATCH_COLUMNS):
        report.rows_read += 1
        tourney_id = row["tourney_id"].strip()
        season = _int(path, line, "season (first four characters of tourney_id)", tourney_id[:4])
        if (from_year is not None and season < from_year) or (to_year is not None and season > to_year):
            report.rows_outside_years += 1
            continue
        raw_date = row["tourney_date"].strip()
        tourney_date = dates.get(raw_date)
        if tourney_date is None:
            try:
                tourney_date = dates[raw_date] = datetime.strptime(raw_date, "%Y%m%d").replace(tzinfo=UTC)
            except ValueError:
                raise AtpImportError(f"{path} line {line}: tourney_date is not a YYYYMMDD date: {raw_date!r}") from None
        yield AtpRow(
            line=line,
            tourney_id=tourney_id,
            tourney_name=row["tourney_name"].strip(),
            tourney_date=tourney_date,
            season=season,
            match_num=_int(path, line, "match_num", row["match_num"]),
            round=row["round"].strip(),
            winner_id=_int(path, line, "winner_id", row["winner_id"]),
            winner_name=row["winner_name"].strip(),
            loser_id=_int(path, line, "loser_id", row["loser_id"]),
            loser_name=row["loser_name"].strip(),
            score=row["score"].strip(),
        )


def _seasons(rows: Iterator[AtpRow]) -> Iterator[tuple[int, list[AtpRow]]]:
    """Consecutive rows of one season, a season at a time (the unit of one transaction).

    A tournament's result needs all of its rows, so a season must not come back once written: the published file is
    sorted by season, and a file that is not fails clearly here instead of importing incomplete results.
    """
    done: set[int] = set()
    season: int | None = None
    chunk: list[AtpRow] = []
    for row in rows:
        if row.season != season:
            if chunk and season is not None:
                yield season, chunk
                done.add(season)
            if row.season in done:
                raise AtpImportError(
                    f"line {row.line}: season {row.season} appears again after it was imported; "
                    "the matches file must keep each season's rows together"
                )
            season, chunk = row.season, []
        chunk.append(row)
    if chunk and season is not None:
        yield season, chunk


# --- writing -----------------------------------------------------------------------------------------------------


def _import_season(
    season: int, rows: list[AtpRow], names: dict[int, str], known_users: dict[int, int], report: AtpImportReport
) -> None:
    kept: list[AtpRow] = []
    keys: set[tuple[str, int]] = set()
    skipped: Counter = Counter()
    for row in rows:
        if row.winner_id == row.loser_id:
            skipped[SKIP_SAME_PLAYER] += 1
        elif (row.tourney_id, row.match_num) in keys:
            skipped[SKIP_DUPLICATE_KEY] += 1
        else:
            keys.add((row.tourney_id, row.match_num))
            kept.append(row)

    now = dj_timezone.now()
    chunk = AtpImportReport()
    with transaction.atomic():
        new_users = _ensure_players(kept, names, known_users, chunk)
        user_ids = {**known_users, **new_users}
        tournament_ids = _ensure_tournaments(rows, now, chunk)
        registration_ids = _ensure_registrations(kept, tournament_ids, user_ids, now, chunk)
        _ensure_matches(kept, tournament_ids, registration_ids, user_ids, now, chunk)
        _ensure_results(list(tournament_ids.values()), now, chunk)

    # Only a committed season counts (and only its users are remembered).
    known_users.update(new_users)
    for name in ("players", "tournaments", "registrations", "matches", "forfeits", "results"):
        total, part = getattr(report, name), getattr(chunk, name)
        total.created += part.created
        total.present += part.present
    report.skipped.update(skipped)


def _ensure_players(
    rows: list[AtpRow], names: dict[int, str], known_users: dict[int, int], chunk: AtpImportReport
) -> dict[int, int]:
    row_names: dict[int, str] = {}
    for row in rows:
        row_names.setdefault(row.winner_id, row.winner_name)
        row_names.setdefault(row.loser_id, row.loser_name)
    new = sorted(pid for pid in row_names if pid not in known_users)
    if not new:
        return {}
    wanted = {username_for(pid): pid for pid in new}
    present = set(get_user_model().objects.filter(username__in=list(wanted)).values_list("username", flat=True))
    # The players file is the source of display names; the match row's spelling only stands in when it has none.
    pairs = [(u, names.get(pid) or row_names[pid] or u) for u, pid in wanted.items()]
    ids = create_users_bulk(pairs)
    chunk.players.add(len(wanted), len(wanted) - len(present))
    return {wanted[u]: user_id for u, user_id in ids.items()}


def _ensure_tournaments(rows: list[AtpRow], now: datetime, chunk: AtpImportReport) -> dict[str, int]:
    first: dict[str, AtpRow] = {}
    for row in rows:
        first.setdefault(row.tourney_id, row)
    values = [
        (r.tourney_name, GAME, Tournament.Status.COMPLETED, r.season, r.tourney_date, r.tourney_id, r.tourney_date, now)
        for r in first.values()
    ]
    created = insert_rows(
        Tournament,
        ("name", "game", "status", "season", "starts_at", "external_id", "created_at", "updated_at"),
        values,
        ignore_conflicts=True,
    )
    chunk.tournaments.add(len(values), len(created))
    ids: dict[str, int] = {}
    for external_id, pk in Tournament.objects.filter(external_id__in=list(first)).values_list("external_id", "id"):
        if external_id is not None:  # always set here: the filter matched on it
            ids[external_id] = pk
    return ids


def _ensure_registrations(
    rows: list[AtpRow], tournament_ids: dict[str, int], user_ids: dict[int, int], now: datetime, chunk: AtpImportReport
) -> dict[tuple[int, int], int]:
    entries: dict[tuple[int, int], datetime] = {}
    for row in rows:
        tid = tournament_ids[row.tourney_id]
        for pid in (row.winner_id, row.loser_id):
            entries.setdefault((tid, user_ids[pid]), row.tourney_date)
    values = [(tid, uid, Registration.Status.CONFIRMED, True, at, at, now) for (tid, uid), at in entries.items()]
    created = insert_rows(
        Registration,
        ("tournament_id", "user_id", "status", "checked_in", "checked_in_at", "created_at", "updated_at"),
        values,
        ignore_conflicts=True,
    )
    chunk.registrations.add(len(values), len(created))
    existing = Registration.objects.filter(tournament_id__in=list(tournament_ids.values()), user__isnull=False)
    return {(tid, uid): rid for tid, uid, rid in existing.values_list("tournament_id", "user_id", "id")}


def _ensure_matches(
    rows: list[AtpRow],
    tournament_ids: dict[str, int],
    registration_ids: dict[tuple[int, int], int],
    user_ids: dict[int, int],
    now: datetime,
    chunk: AtpImportReport,
) -> None:
    values = []
    forfeit_keys: set[tuple[int, int]] = set()
    for row in rows:
        tid = tournament_ids[row.tourney_id]
        winner = registration_ids[(tid, user_ids[row.winner_id])]
        loser = registration_ids[(tid, user_ids[row.loser_id])]
        state = Match.State.FORFEIT if is_walkover(row.score) else Match.State.COMPLETED
        if state == Match.State.FORFEIT:
            forfeit_keys.add((tid, row.match_num))
        values.append(
            (
                tid,
                row.round,
                row.match_num,
                winner,
                loser,
                winner,
                loser,
                state,
                row.score,
                row.tourney_date,
                row.tourney_date,
                now,
            )
        )
    created = insert_rows(
        Match,
        MATCH_ROW_COLUMNS,
        values,
        ignore_conflicts=True,
        returning=("tournament_id", "match_num"),
    )
    chunk.matches.add(len(values), len(created))
    chunk.forfeits.add(len(forfeit_keys), sum(1 for key in created if tuple(key) in forfeit_keys))


def _ensure_results(tournament_ids: list[int], now: datetime, chunk: AtpImportReport) -> None:
    """Results from the tournaments' stored F and SF matches (set-based: one query, one insert)."""
    finals: dict[int, list[tuple]] = defaultdict(list)
    semis: dict[int, list[int]] = defaultdict(list)
    deciding = (
        Match.objects.filter(tournament_id__in=tournament_ids, round__in=("F", "SF"))
        .order_by("tournament_id", "match_num", "id")
        .values_list("tournament_id", "round", "winner_id", "loser_id", "completed_at")
    )
    for tid, round_, winner, loser, completed_at in deciding:
        if round_ == "F":
            finals[tid].append((winner, loser, completed_at))
        else:
            semis[tid].append(loser)
    values = []
    for tid, final in finals.items():
        if len(final) != 1:
            continue  # no single final (team cups with two F ties): no placement can be read off
        winner, runner_up, completed_at = final[0]
        third, fourth = semis[tid] if len(semis[tid]) == 2 else (None, None)
        values.append((tid, winner, runner_up, third, fourth, completed_at, now))
    created = insert_rows(
        TournamentResult,
        ("tournament_id", "winner_id", "runner_up_id", "third_place_id", "fourth_place_id", "created_at", "updated_at"),
        values,
        ignore_conflicts=True,
        returning=("tournament_id",),
    )
    chunk.results.add(len(values), len(created))
