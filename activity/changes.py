"""The source change log (activity.models.SourceChange): which source rows were written since it was last consumed,
and which other rows' derivations read them (their dependents).

The log is filled by database triggers (migration 0014), so it names rows written by any path, signal-less ones
included; this module only reads, claims and deletes it. Set-based throughout: a fixed number of queries however
many rows changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import connection

from activity import derivation as rules
from activity.models import SourceChange
from esports.tournaments.models import Match, Registration, TournamentResult

_LOG = SourceChange._meta.db_table
_REGISTRATIONS = Registration._meta.db_table
_MATCHES = Match._meta.db_table
_RESULTS = TournamentResult._meta.db_table


@dataclass
class ChangedRows:
    """Per source label, the ids written; and the scopes they bore on (kept in the log, so a deleted row's scope is
    known too)."""

    ids: dict[str, set[int]] = field(default_factory=dict)
    tournaments: set[int] = field(default_factory=set)
    teams: set[int] = field(default_factory=set)
    log_rows: int = 0

    def __bool__(self) -> bool:
        return bool(self.ids)


def claim_changes(run_id: int) -> int:
    """Mark every log row visible now as taken by run `run_id` (rows an earlier, failed run took included); returns
    how many. A row committed later (or by a transaction still open) is left for the next run: claiming by what this
    statement sees, never by an id watermark, so no change whose id was assigned early but committed late is lost."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_LOG} SET claimed_by = %s WHERE claimed_by IS DISTINCT FROM %s",
            [run_id, run_id],
        )
        return cursor.rowcount


def changed_rows(run_id: int | None) -> ChangedRows:
    """The rows run `run_id` claimed (None: every row in the log, for a report-only run, which claims nothing)."""
    where, params = ("WHERE claimed_by = %s", [run_id]) if run_id is not None else ("", [])
    out = ChangedRows()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT source_model, array_agg(DISTINCT source_id), "
            f"array_agg(DISTINCT tournament_id) FILTER (WHERE tournament_id IS NOT NULL), "
            f"array_agg(DISTINCT team_id) FILTER (WHERE team_id IS NOT NULL), COUNT(*) "
            f"FROM {_LOG} {where} GROUP BY source_model",
            params,
        )
        for label, ids, tournaments, teams, n in cursor.fetchall():
            out.ids[label] = set(ids)
            out.tournaments.update(tournaments or ())
            out.teams.update(teams or ())
            out.log_rows += n
    return out


def delete_claimed(run_id: int) -> int:
    """The run that claimed these rows re-derived them and succeeded: they are done."""
    return SourceChange.objects.filter(claimed_by=run_id).delete()[0]


def dependents(changes: ChangedRows) -> dict[str, set[int]]:
    """Rows not in the log whose derivation reads a logged row, so must be derived again; label -> ids.

    From what each derivation reads (activity.sources loaders), in dependency order:
    * a team registration's events go to the team's members active at its creation: a membership written (or its
      team) makes the team's registrations dependents;
    * a match's events go to its participants' members: a registration written (or dependent) makes its matches
      dependents;
    * a result reads its tournament's rows (placings, checked-in registrations, matches): any registration, match or
      result of a tournament written or dependent makes that tournament's result a dependent.
    Three queries at most. Superset by design (a team's registrations whatever the membership's interval): deriving
    a row again adds only what is missing.
    """
    registrations: set[int] = set()
    tournaments = set(changes.tournaments)
    with connection.cursor() as cursor:
        if changes.teams:
            cursor.execute(
                f"SELECT id, tournament_id FROM {_REGISTRATIONS} WHERE team_id = ANY(%s)",
                [sorted(changes.teams)],
            )
            for reg_id, tournament_id in cursor.fetchall():
                registrations.add(reg_id)
                tournaments.add(tournament_id)
        entries = registrations | changes.ids.get(rules.REGISTRATION, set())
        matches: set[int] = set()
        if entries:
            cursor.execute(
                f"SELECT id FROM {_MATCHES} WHERE participant1_id = ANY(%s) "
                f"UNION SELECT id FROM {_MATCHES} WHERE participant2_id = ANY(%s)",
                [sorted(entries)] * 2,
            )
            matches = {row[0] for row in cursor.fetchall()}
        results: set[int] = set()
        if tournaments:
            cursor.execute(
                f"SELECT id FROM {_RESULTS} WHERE tournament_id = ANY(%s)",
                [sorted(tournaments)],
            )
            results = {row[0] for row in cursor.fetchall()}
    found = {rules.REGISTRATION: registrations, rules.MATCH: matches, rules.TOURNAMENT_RESULT: results}
    return {label: ids - changes.ids.get(label, set()) for label, ids in found.items() if ids}
