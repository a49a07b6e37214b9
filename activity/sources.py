"""The source tables the ledger derives from: how to load a chunk of rows set-based and derive their events.

Every loader runs a fixed number of queries per chunk, whatever the chunk's size (no per-row queries).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import models
from django.db.models import BigIntegerField, Q
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from activity import derivation as rules
from activity import source_rows
from activity.derivation import Derivation
from activity.event_types import MATCH_OUTCOME_EVENTS
from activity.event_types import EventType as E
from activity.models import UserActivity
from activity.phases import phase
from esports.achievements.models import UserAchievement
from esports.economy.models import DeltaCrownTransaction
from esports.moderation.models import Dispute
from esports.profiles.models import UserProfile
from esports.teams.models import Team, TeamMembership
from esports.tournaments.models import Match, Registration, TournamentResult

# A chunk's derivation still to run, once its rows are read: a pure function of what was read.
Deferred = Callable[[], list[Derivation]]


@dataclass(frozen=True)
class SourceKind:
    label: str
    model: type[models.Model]
    # Reads a chunk of rows (every query the derivation needs) and returns their derivation still to run: a pure
    # function, no database access, so the overlapped backfill (activity.overlapped) can run it in a helper thread
    # while the connection inserts the chunk before. Sources whose rules read model instances derive at once.
    fetch: Callable[[Sequence[int]], Deferred]
    # Field that moves whenever a row's state may imply new events (catch-up sweeps scan it).
    changed_field: str
    # Recorders of one row are serialised with an advisory lock in this key space: a derivation that compensates
    # (a correction, or the row's deletion) must not plan against a ledger another recorder is still writing.
    lock_space: int | None = None
    # The base event types this source records: what a deleted row's compensation may cancel. Empty: deleting a row
    # is not compensated (a profile: its account's history stays; see the README).
    recorded_types: frozenset[str] = frozenset()
    # Rows of another source whose derivation reads this one's rows: (their label, ids -> their ids). The live path
    # and the sweep re-derive them after recording these (backfill and reconciliation derive every row anyway).
    dependents: tuple[str, Callable[[Sequence[int]], list[int]]] | None = None

    def load(self, ids: Sequence[int]) -> list[Derivation]:
        """The rows' derivations (rows that do not exist are left out)."""
        derive = self.fetch(ids)
        with phase("derive"):
            return derive()


def _memberships(team_ids: set[int]) -> list[tuple[int, int, datetime, datetime | None]]:
    """(team_id, user_id, joined_at, left_at) of every membership of these teams."""
    if not team_ids:
        return []
    return list(
        TeamMembership.objects.filter(team_id__in=team_ids).values_list("team_id", "user_id", "joined_at", "left_at")
    )


def _members_for(registrations: Sequence[Registration | source_rows.EntryRow]) -> dict[int, list[int]]:
    team_ids = {r.team_id for r in registrations if r.team_id is not None}
    return rules.members_active_at(registrations, _memberships(team_ids)) if team_ids else {}


def _deferred(
    fetched: list[tuple],
    teams: set[int],
    rows_of: Callable[[list[tuple]], list],
    entries_of: Callable[[list], list],
    derive_one: Callable,
) -> Deferred:
    """Registrations and matches (most of a history) are fetched as the query's rows, with the memberships of their
    teams: making them the rules' rows is part of the deferred derivation, so the overlapped backfill does that in
    its helper thread too."""
    memberships = _memberships(teams)

    def derive() -> list[Derivation]:
        rows = rows_of(fetched)
        members = rules.members_active_at(entries_of(rows), memberships) if teams else {}
        return [derive_one(row, members) for row in rows]

    return derive


def _fetch_registrations(ids: Sequence[int]) -> Deferred:
    fetched = source_rows.fetch_registrations(ids)
    teams = source_rows.registration_teams(fetched)
    return _deferred(fetched, teams, source_rows.registration_rows, lambda regs: regs, rules.derive_registration)


def _fetch_matches(ids: Sequence[int]) -> Deferred:
    fetched = source_rows.fetch_matches(ids)

    def sides(matches: list) -> list:
        return [m.participant1 for m in matches] + [m.participant2 for m in matches]

    return _deferred(fetched, source_rows.match_teams(fetched), source_rows.match_rows, sides, rules.derive_match)


def _fetch_results(ids: Sequence[int]) -> Deferred:
    results = source_rows.load_results(ids)
    checked_in = source_rows.checked_in_entries(sorted({r.tournament_id for r in results}))
    placed = [p for r in results for p in (r.winner, r.runner_up, r.third_place, r.fourth_place) if p is not None]
    members = _members_for(placed + [reg for regs in checked_in.values() for reg in regs])
    lost_rounds: dict[int, list[str]] = {}
    # A walkover is a forfeit with a loser: it counts as a loss in its round.
    for loser_id, round_ in Match.objects.filter(
        tournament_id__in=[r.tournament_id for r in results],
        state__in=(Match.State.COMPLETED, Match.State.FORFEIT),
        loser__isnull=False,
    ).values_list("loser_id", "round"):
        lost_rounds.setdefault(loser_id, []).append(round_)
    return lambda: [
        rules.derive_tournament_result(r, checked_in.get(r.tournament_id, []), members, lost_rounds) for r in results
    ]


def results_of_matches(ids: Sequence[int]) -> list[int]:
    """The results of the tournaments of these matches (deleted ones too, by the tournament their events name), in
    one query: a match's change can move an entrant's placement, which its tournament's result row derives."""
    recorded_in = (
        UserActivity.objects.filter(source_model=rules.MATCH, source_id__in=ids)
        .annotate(tid=Cast(KT("metadata__tournament_id"), BigIntegerField()))
        .values("tid")
    )
    in_tournaments = Q(tournament_id__in=Match.objects.filter(id__in=ids).values("tournament_id")) | Q(
        tournament_id__in=recorded_in
    )
    return sorted(TournamentResult.objects.filter(in_tournaments).values_list("id", flat=True))


def _at_once(load: Callable[[Sequence[int]], list[Derivation]]) -> Callable[[Sequence[int]], Deferred]:
    """A loader whose rules read model instances (lazy relations could query): derived while fetching."""

    def fetch(ids: Sequence[int]) -> Deferred:
        derivations = load(ids)
        return lambda: derivations

    return fetch


def _load_transactions(ids: Sequence[int]) -> list[Derivation]:
    rows = DeltaCrownTransaction.objects.filter(id__in=ids).select_related("wallet").order_by("id")
    return [rules.derive_transaction(t) for t in rows]


def _load_unlocks(ids: Sequence[int]) -> list[Derivation]:
    rows = UserAchievement.objects.filter(id__in=ids).select_related("achievement").order_by("id")
    return [rules.derive_user_achievement(u) for u in rows]


def _load_teams(ids: Sequence[int]) -> list[Derivation]:
    return [rules.derive_team(t) for t in Team.objects.filter(id__in=ids).order_by("id")]


def _load_memberships(ids: Sequence[int]) -> list[Derivation]:
    rows = TeamMembership.objects.filter(id__in=ids).select_related("team").order_by("id")
    return [rules.derive_team_membership(m) for m in rows]


def _load_profiles(ids: Sequence[int]) -> list[Derivation]:
    return [rules.derive_profile(p) for p in UserProfile.objects.filter(user_id__in=ids).order_by("user_id")]


def _load_disputes(ids: Sequence[int]) -> list[Derivation]:
    rows = Dispute.objects.filter(id__in=ids).select_related("match__tournament").order_by("id")
    return [rules.derive_dispute(d) for d in rows]


SOURCES: dict[str, SourceKind] = {
    kind.label: kind
    for kind in (
        # updated_at: a level or verification change implies new events (the wallet mirror's updates leave it alone).
        SourceKind(rules.PROFILE, UserProfile, _at_once(_load_profiles), "updated_at"),
        SourceKind(
            rules.TEAM,
            Team,
            _at_once(_load_teams),
            "updated_at",
            lock_space=4,
            recorded_types=frozenset({E.TEAM_CREATED}),
        ),
        SourceKind(
            rules.TEAM_MEMBERSHIP,
            TeamMembership,
            _at_once(_load_memberships),
            "updated_at",
            lock_space=3,
            recorded_types=rules.MEMBERSHIP_EVENTS,
        ),
        SourceKind(
            rules.REGISTRATION,
            Registration,
            _fetch_registrations,
            "updated_at",
            lock_space=5,
            recorded_types=frozenset({E.TOURNAMENT_REGISTERED, E.TOURNAMENT_JOINED}),
        ),
        SourceKind(
            rules.MATCH,
            Match,
            _fetch_matches,
            "updated_at",
            lock_space=1,
            recorded_types=MATCH_OUTCOME_EVENTS,
            dependents=(rules.TOURNAMENT_RESULT, results_of_matches),
        ),
        SourceKind(
            rules.TOURNAMENT_RESULT,
            TournamentResult,
            _fetch_results,
            "updated_at",
            lock_space=2,
            recorded_types=rules.RESULT_AUTHORITY | {E.TOURNAMENT_COMPLETED},
        ),
        # Transactions are immutable (database trigger): created_at is their change time.
        SourceKind(
            rules.TRANSACTION,
            DeltaCrownTransaction,
            _at_once(_load_transactions),
            "created_at",
            lock_space=6,
            recorded_types=frozenset({E.COINS_EARNED, E.COINS_SPENT}),
        ),
        SourceKind(
            rules.USER_ACHIEVEMENT,
            UserAchievement,
            _at_once(_load_unlocks),
            "updated_at",
            lock_space=7,
            recorded_types=frozenset({E.ACHIEVEMENT_UNLOCKED}),
        ),
        # A filing is never edited (resolving it changes the match, a source of its own): created_at is its change.
        SourceKind(
            rules.DISPUTE,
            Dispute,
            _at_once(_load_disputes),
            "created_at",
            lock_space=8,
            recorded_types=frozenset({E.DISPUTE_FILED}),
        ),
    )
}


class UnknownSourceError(LookupError):
    pass


def source_kind(label: str) -> SourceKind:
    try:
        return SOURCES[label]
    except KeyError:
        raise UnknownSourceError(f"Unknown source {label!r}; known: {', '.join(sorted(SOURCES))}.") from None
