"""Derivation rules: the events a source row's current state implies (DESIGN.md §4).

Pure functions of a source row (already loaded, with its related rows) and, for team entries, the members of each
registration. Live recording, the catch-up sweep, backfill and reconciliation all derive through this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from activity.event_types import MATCH_OUTCOME_EVENTS, PLACEMENT_EVENTS, EventType
from activity.events import NewEvent
from activity.rounds import round_rank

# Registration id -> the user ids it stands for (one for a solo entry; the team's members for a team entry).
Members = Mapping[int, Sequence[int]]

REGISTRATION = "tournaments.registration"
MATCH = "tournaments.match"
TOURNAMENT_RESULT = "tournaments.tournamentresult"
TRANSACTION = "economy.deltacrowntransaction"
USER_ACHIEVEMENT = "achievements.userachievement"
TEAM = "teams.team"
TEAM_MEMBERSHIP = "teams.teammembership"
PROFILE = "profiles.userprofile"
DISPUTE = "moderation.dispute"


@dataclass(frozen=True, slots=True)
class Derivation:
    """What one source row implies.

    `events` are added when missing. For the base types in `authority`, the row's state is the whole truth for
    every user of this row: the append path also compensates events of those types that the row no longer implies.
    """

    source_model: str
    source_id: int
    events: tuple[NewEvent, ...] = ()
    authority: frozenset[str] = field(default_factory=frozenset)
    corrected_at: datetime | None = None


def registration_members(registration, members: Members) -> Sequence[int]:
    if registration.user_id is not None:
        return (registration.user_id,)
    return members.get(registration.id, ())


def members_active_at(
    registrations: Sequence, memberships: Sequence[tuple[int, int, datetime, datetime | None]]
) -> dict[int, list[int]]:
    """Team members active at each team registration's created_at, from (team_id, user_id, joined_at, left_at)."""
    by_team: dict[int, list[tuple[int, datetime, datetime | None]]] = {}
    for team_id, user_id, joined_at, left_at in memberships:
        by_team.setdefault(team_id, []).append((user_id, joined_at, left_at))
    result: dict[int, list[int]] = {}
    for reg in registrations:
        if reg.team_id is None:
            continue
        at = reg.created_at
        result[reg.id] = sorted(
            {u for u, joined, left in by_team.get(reg.team_id, ()) if joined <= at and (left is None or left > at)}
        )
    return result


def _tournament_metadata(tournament) -> dict:
    return {"tournament_id": tournament.id, "tournament": tournament.name, "game": tournament.game}


def _scope(tournament) -> dict:
    """The event's game and season columns (the per-game / per-season projections' keys)."""
    return {"game": tournament.game or None, "season": tournament.season if tournament.game else None}


def derive_registration(registration, members: Members) -> Derivation:
    events: list[NewEvent] = []
    if registration.status == "confirmed":
        meta = _tournament_metadata(registration.tournament)
        scope = _scope(registration.tournament)
        if registration.team_id is not None:
            meta["team_id"] = registration.team_id
        for user_id in registration_members(registration, members):
            events.append(
                NewEvent(
                    user_id,
                    EventType.TOURNAMENT_REGISTERED,
                    registration.created_at,
                    REGISTRATION,
                    registration.id,
                    meta,
                    **scope,
                )
            )
            if registration.checked_in:
                joined_at = registration.checked_in_at or registration.updated_at
                events.append(
                    NewEvent(
                        user_id, EventType.TOURNAMENT_JOINED, joined_at, REGISTRATION, registration.id, meta, **scope
                    )
                )
    # pending, cancelled, no_show: nothing new; what was recorded earlier stays.
    return Derivation(REGISTRATION, registration.id, tuple(events))


def derive_match(match, members: Members) -> Derivation:
    if match.state not in ("completed", "forfeit"):
        # scheduled, live, disputed, cancelled: nothing new, and nothing recorded earlier is touched.
        return Derivation(MATCH, match.id)
    at = match.completed_at or match.updated_at
    meta = {**_tournament_metadata(match.tournament), "round": match.round}
    scope = _scope(match.tournament)
    events: list[NewEvent] = []
    for side in (match.participant1, match.participant2):
        for user_id in registration_members(side, members):
            events.append(NewEvent(user_id, EventType.MATCH_PLAYED, at, MATCH, match.id, meta, **scope))
    if match.state == "completed":
        for user_id in registration_members(match.winner, members):
            events.append(NewEvent(user_id, EventType.MATCH_WON, at, MATCH, match.id, meta, **scope))
        for user_id in registration_members(match.loser, members):
            events.append(NewEvent(user_id, EventType.MATCH_LOST, at, MATCH, match.id, meta, **scope))
    return Derivation(MATCH, match.id, tuple(events), authority=MATCH_OUTCOME_EVENTS, corrected_at=match.updated_at)


# Placement of an entrant the result does not name, by the knockout round of their last loss (issue 15). Losses in
# round-robin (RR), bronze-match (BR) and early rounds (ER) give none; so do SF / F losses the result leaves out.
KNOCKOUT_PLACEMENT: dict[str, int] = {"QF": 5, "R16": 9, "R32": 17, "R64": 33, "R128": 65}
KNOCKOUT_ROUNDS = frozenset({*KNOCKOUT_PLACEMENT, "SF", "F"})
# average_placement is the mean of the placements up to this one: such a placement carries itself as the event's
# amount, which the counters sum and count (stats.counters); deeper finishes carry none.
AVERAGE_PLACEMENT_MAX = 10
RESULT_AUTHORITY = PLACEMENT_EVENTS | {EventType.TOURNAMENT_PLACED}

# Registration id -> the rounds of the matches it lost (completed, or a walkover: a forfeit with a loser).
LostRounds = Mapping[int, Sequence[str]]


def placements(result, checked_in: Sequence, lost_rounds: LostRounds) -> dict[int, int]:
    """Registration id -> placement, for the checked-in entrants that have one: 1-4 as the result names them (the
    best of them when it names one twice), any other entrant by the knockout round of their last loss (the latest by
    round order)."""
    # An entrant the result names twice keeps the best place: a team cup's result can name its champion third too
    # (an SF rubber lost in a tie the team won, ATP 2024-9900), and the winner finished first.
    named: dict[int, int] = {}
    for place, registration in enumerate(
        (result.winner, result.runner_up, result.third_place, result.fourth_place), start=1
    ):
        if registration is not None:
            named.setdefault(registration.id, place)
    placed: dict[int, int] = {}
    for registration in checked_in:
        if registration.id in named:
            placed[registration.id] = named[registration.id]
            continue
        knockout = [r for r in lost_rounds.get(registration.id, ()) if r in KNOCKOUT_ROUNDS]
        if knockout:
            last = max(knockout, key=round_rank)
            if last in KNOCKOUT_PLACEMENT:
                placed[registration.id] = KNOCKOUT_PLACEMENT[last]
    return placed


def derive_tournament_result(
    result, checked_in: Sequence, members: Members, lost_rounds: LostRounds | None = None
) -> Derivation:
    """`checked_in`: the tournament's checked-in registrations, each earns `tournament_completed` for its members and
    `tournament_placed` when it has a placement; `lost_rounds`: the rounds each of them lost (the tournament's
    matches are part of this row's truth: a corrected match re-derives the result, see activity.sources)."""
    meta = _tournament_metadata(result.tournament)
    scope = _scope(result.tournament)
    at = result.created_at
    events: list[NewEvent] = []
    podium = (
        (EventType.TOURNAMENT_WON, [result.winner]),
        (EventType.TOURNAMENT_RUNNER_UP, [result.runner_up]),
        (EventType.TOURNAMENT_TOP4, [r for r in (result.third_place, result.fourth_place) if r is not None]),
    )
    for event_type, registrations in podium:
        for registration in registrations:
            for user_id in registration_members(registration, members):
                events.append(NewEvent(user_id, event_type, at, TOURNAMENT_RESULT, result.id, meta, **scope))
    placed = placements(result, checked_in, lost_rounds or {})
    for registration in checked_in:
        for user_id in registration_members(registration, members):
            events.append(
                NewEvent(user_id, EventType.TOURNAMENT_COMPLETED, at, TOURNAMENT_RESULT, result.id, meta, **scope)
            )
        place = placed.get(registration.id)
        if place is None:
            continue
        for user_id in registration_members(registration, members):
            events.append(
                NewEvent(
                    user_id,
                    EventType.TOURNAMENT_PLACED,
                    at,
                    TOURNAMENT_RESULT,
                    result.id,
                    {**meta, "placement": place},
                    amount=place if place <= AVERAGE_PLACEMENT_MAX else None,
                    **scope,
                )
            )
    return Derivation(
        TOURNAMENT_RESULT, result.id, tuple(events), authority=RESULT_AUTHORITY, corrected_at=result.updated_at
    )


def derive_transaction(transaction) -> Derivation:
    user_id = transaction.wallet.profile_id  # a profile's id is its user's id
    if transaction.reverses_id is not None:
        # A reversing transaction cancels what the reversed one counted (an earning un-earned, a spend refunded)
        # instead of counting as a new spend or earning; it has the opposite sign of the transaction it reverses.
        if transaction.amount < 0:
            event_type, amount = EventType.COINS_EARNED_REVERSED, -transaction.amount
        else:
            event_type, amount = EventType.COINS_SPENT_REVERSED, transaction.amount
    elif transaction.amount > 0:
        event_type, amount = EventType.COINS_EARNED, transaction.amount
    else:
        event_type, amount = EventType.COINS_SPENT, -transaction.amount
    event = NewEvent(
        user_id,
        event_type,
        transaction.created_at,
        TRANSACTION,
        transaction.id,
        {"reason": transaction.reason},
        amount=amount,
    )
    return Derivation(TRANSACTION, transaction.id, (event,))


def derive_user_achievement(unlock) -> Derivation:
    achievement = unlock.achievement
    meta = {"code": achievement.code, "name": achievement.name, "tier": achievement.tier}
    event = NewEvent(
        unlock.user_id, EventType.ACHIEVEMENT_UNLOCKED, unlock.unlocked_at, USER_ACHIEVEMENT, unlock.id, meta
    )
    return Derivation(USER_ACHIEVEMENT, unlock.id, (event,))


def derive_team(team) -> Derivation:
    event = NewEvent(
        team.created_by_id,
        EventType.TEAM_CREATED,
        team.created_at,
        TEAM,
        team.id,
        {"team_id": team.id, "team": team.name},
    )
    return Derivation(TEAM, team.id, (event,))


MEMBERSHIP_EVENTS = frozenset({EventType.TEAM_JOINED, EventType.TEAM_LEFT})


def derive_team_membership(membership) -> Derivation:
    """Authoritative: clearing left_at (a re-join) compensates the earlier team_left, leaving again appends seq 2."""
    meta = {"team_id": membership.team_id, "team": membership.team.name}
    events = [
        NewEvent(membership.user_id, EventType.TEAM_JOINED, membership.joined_at, TEAM_MEMBERSHIP, membership.id, meta)
    ]
    if membership.left_at is not None:
        events.append(
            NewEvent(membership.user_id, EventType.TEAM_LEFT, membership.left_at, TEAM_MEMBERSHIP, membership.id, meta)
        )
    return Derivation(
        TEAM_MEMBERSHIP, membership.id, tuple(events), authority=MEMBERSHIP_EVENTS, corrected_at=membership.updated_at
    )


def derive_deleted(source_model: str, source_id: int, recorded_types: frozenset[str], at: datetime) -> Derivation:
    """A source row that no longer exists implies nothing: authoritative over every type its source records, so the
    append path compensates whatever the ledger still counts for it (who and how much come from the ledger itself)."""
    return Derivation(source_model, source_id, (), authority=recorded_types, corrected_at=at)


def with_deleted(
    source_model: str, ids: Sequence[int], derivations: list[Derivation], recorded_types: frozenset[str], at: datetime
) -> tuple[list[Derivation], list[int]]:
    """The derivations of the rows asked for (`ids`, sorted) plus derive_deleted for each that was not found, when
    the source compensates deletions (non-empty `recorded_types`); and the ids not found, in order."""
    found = {d.source_id for d in derivations}
    missing = [i for i in ids if i not in found]
    if missing and recorded_types:
        derivations = [*derivations, *(derive_deleted(source_model, i, recorded_types, at) for i in missing)]
    return derivations, missing


def derive_dispute(dispute) -> Derivation:
    """dispute_filed for the filer, in the disputed match's game and season; the reason stays with the moderators."""
    match = dispute.match
    meta = {**_tournament_metadata(match.tournament), "match_id": match.id, "round": match.round}
    event = NewEvent(
        dispute.filed_by_id,
        EventType.DISPUTE_FILED,
        dispute.created_at,
        DISPUTE,
        dispute.id,
        meta,
        **_scope(match.tournament),
    )
    return Derivation(DISPUTE, dispute.id, (event,))


LEVEL_STEP = 5  # a level_up event for every multiple of 5 reached


def derive_profile(profile) -> Derivation:
    """profile_created; a level_up per multiple of 5 up to the profile's level (seq = level / 5: one event per
    level, whenever it is recorded); kyc_verified once verified. What a lowered level or cleared verification
    recorded earlier stays (no authority)."""
    events = [NewEvent(profile.user_id, EventType.PROFILE_CREATED, profile.created_at, PROFILE, profile.user_id, {})]
    # When a level was reached is not kept at the source: the profile's last change is the best time it has.
    reached_at = profile.updated_at or profile.created_at
    for level in range(LEVEL_STEP, (profile.level or 0) + 1, LEVEL_STEP):
        events.append(
            NewEvent(
                profile.user_id,
                EventType.LEVEL_UP,
                reached_at,
                PROFILE,
                profile.user_id,
                {"level": level},
                seq=level // LEVEL_STEP,
            )
        )
    if profile.kyc_verified_at is not None:
        events.append(
            NewEvent(profile.user_id, EventType.KYC_VERIFIED, profile.kyc_verified_at, PROFILE, profile.user_id, {})
        )
    return Derivation(PROFILE, profile.user_id, tuple(events))
