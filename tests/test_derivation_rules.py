"""The derivation rules as pure functions: a source row's current state in, the events it implies out (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace as Row

import pytest

from activity import derivation as rules
from activity.event_types import (
    MATCH_OUTCOME_EVENTS,
    PLACEMENT_EVENTS,
    REVERSAL_OF,
    Visibility,
    default_visibility,
)
from activity.event_types import (
    EventType as E,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CUP = Row(id=7, name="Spring Cup", game="valorant", season=2026)


def reg(id, user_id=None, team_id=None, status="confirmed", checked_in=True, created_at=T0, checked_in_at=None):
    return Row(
        id=id,
        tournament=CUP,
        user_id=user_id,
        team_id=team_id,
        status=status,
        checked_in=checked_in,
        created_at=created_at,
        checked_in_at=checked_in_at,
        updated_at=created_at + timedelta(hours=1),
    )


def match(p1, p2, state="completed", winner=None, loser=None, completed_at=T0, id=50):
    return Row(
        id=id,
        tournament=CUP,
        round="QF",
        participant1=p1,
        participant2=p2,
        winner=winner,
        loser=loser,
        state=state,
        completed_at=completed_at,
        updated_at=T0 + timedelta(minutes=5),
    )


def triples(derivation) -> list[tuple[int, str]]:
    return sorted((e.user_id, e.event_type) for e in derivation.events)


# --- registrations --------------------------------------------------------------------------------------------


def test_confirmed_registration_gives_tournament_registered_at_registration_time():
    d = rules.derive_registration(reg(1, user_id=10, checked_in=False), {})
    assert triples(d) == [(10, E.TOURNAMENT_REGISTERED)]
    (event,) = d.events
    assert event.timestamp == T0
    assert (event.source_model, event.source_id) == ("tournaments.registration", 1)
    assert event.metadata == {"tournament_id": 7, "tournament": "Spring Cup", "game": "valorant"}


def test_checked_in_registration_also_gives_tournament_joined_at_check_in_time():
    checked = T0 + timedelta(days=2)
    d = rules.derive_registration(reg(1, user_id=10, checked_in_at=checked), {})
    assert triples(d) == [(10, E.TOURNAMENT_JOINED), (10, E.TOURNAMENT_REGISTERED)]
    joined = next(e for e in d.events if e.event_type == E.TOURNAMENT_JOINED)
    assert joined.timestamp == checked


@pytest.mark.parametrize("status", ["pending", "cancelled", "no_show"])
def test_unconfirmed_registration_implies_nothing(status):
    assert rules.derive_registration(reg(1, user_id=10, status=status, checked_in=False), {}).events == ()


def test_no_show_is_never_joined_even_when_flagged_checked_in():
    assert rules.derive_registration(reg(1, user_id=10, status="no_show", checked_in=True), {}).events == ()


def test_team_registration_gives_events_to_every_member_listed_for_it():
    d = rules.derive_registration(reg(1, team_id=3, checked_in=False), {1: [21, 22, 23]})
    assert triples(d) == [(21, E.TOURNAMENT_REGISTERED), (22, E.TOURNAMENT_REGISTERED), (23, E.TOURNAMENT_REGISTERED)]
    assert all(e.metadata["team_id"] == 3 for e in d.events)


def test_members_active_at_registration_time_exclude_later_joiners_and_earlier_leavers():
    team_reg = reg(1, team_id=3, created_at=T0)
    memberships = [
        (3, 21, T0 - timedelta(days=10), None),  # active
        (3, 22, T0 - timedelta(days=10), T0 + timedelta(days=1)),  # left after registering: still a member then
        (3, 23, T0 + timedelta(hours=1), None),  # joined after registering
        (3, 24, T0 - timedelta(days=10), T0 - timedelta(days=1)),  # left before registering
        (3, 25, T0, None),  # joined at the very moment: counts
        (9, 26, T0 - timedelta(days=10), None),  # another team
    ]
    solo = reg(2, user_id=30)
    assert rules.members_active_at([team_reg, solo], memberships) == {1: [21, 22, 25]}


# --- matches --------------------------------------------------------------------------------------------------


def test_completed_match_gives_played_to_both_won_to_winner_lost_to_loser():
    a, b = reg(1, user_id=10), reg(2, user_id=20)
    d = rules.derive_match(match(a, b, winner=b, loser=a), {})
    assert triples(d) == [(10, E.MATCH_LOST), (10, E.MATCH_PLAYED), (20, E.MATCH_PLAYED), (20, E.MATCH_WON)]
    assert {e.timestamp for e in d.events} == {T0}
    assert d.authority == MATCH_OUTCOME_EVENTS  # the row's state is the whole truth: corrections compensate


def test_forfeit_counts_played_for_both_and_no_win_or_loss():
    a, b = reg(1, user_id=10), reg(2, user_id=20)
    d = rules.derive_match(match(a, b, state="forfeit", winner=a, loser=b), {})
    assert triples(d) == [(10, E.MATCH_PLAYED), (20, E.MATCH_PLAYED)]
    assert d.authority == MATCH_OUTCOME_EVENTS


@pytest.mark.parametrize("state", ["scheduled", "live", "disputed", "cancelled"])
def test_unfinished_disputed_or_cancelled_match_implies_nothing_and_touches_nothing(state):
    a, b = reg(1, user_id=10), reg(2, user_id=20)
    d = rules.derive_match(match(a, b, state=state, winner=a, loser=b), {})
    assert d.events == ()
    assert d.authority == frozenset()  # no authority: events recorded earlier are not compensated


def test_match_without_completed_at_falls_back_to_its_update_time():
    a, b = reg(1, user_id=10), reg(2, user_id=20)
    d = rules.derive_match(match(a, b, winner=a, loser=b, completed_at=None), {})
    assert {e.timestamp for e in d.events} == {T0 + timedelta(minutes=5)}


def test_team_match_gives_every_member_of_each_side_its_events():
    a, b = reg(1, team_id=3), reg(2, team_id=4)
    members = {1: [11, 12, 13, 14, 15], 2: [21, 22, 23, 24, 25]}
    d = rules.derive_match(match(a, b, winner=a, loser=b), members)
    by_type = {}
    for user_id, event_type in triples(d):
        by_type.setdefault(event_type, []).append(user_id)
    assert by_type == {
        E.MATCH_PLAYED: [11, 12, 13, 14, 15, 21, 22, 23, 24, 25],
        E.MATCH_WON: [11, 12, 13, 14, 15],
        E.MATCH_LOST: [21, 22, 23, 24, 25],
    }


# --- tournament results ---------------------------------------------------------------------------------------


def test_result_gives_placements_and_tournament_completed_to_every_checked_in_entrant():
    w, r, third, fourth, other = (reg(i, user_id=10 * i) for i in range(1, 6))
    result = Row(
        id=9,
        tournament=CUP,
        winner=w,
        runner_up=r,
        third_place=third,
        fourth_place=fourth,
        created_at=T0,
        updated_at=T0,
    )
    d = rules.derive_tournament_result(result, [w, r, third, fourth, other], {})
    assert triples(d) == sorted(
        [
            (10, E.TOURNAMENT_WON),
            (20, E.TOURNAMENT_RUNNER_UP),
            (30, E.TOURNAMENT_TOP4),
            (40, E.TOURNAMENT_TOP4),
            *[(u, E.TOURNAMENT_COMPLETED) for u in (10, 20, 30, 40, 50)],
            *[(u, E.TOURNAMENT_PLACED) for u in (10, 20, 30, 40)],  # the fifth lost no knockout match: no placement
        ]
    )
    assert d.authority == PLACEMENT_EVENTS | {E.TOURNAMENT_PLACED}
    placed = {e.user_id: (e.metadata["placement"], e.amount) for e in d.events if e.event_type == E.TOURNAMENT_PLACED}
    assert placed == {10: (1, 1), 20: (2, 2), 30: (3, 3), 40: (4, 4)}


def test_result_without_third_and_fourth_place_gives_no_top4():
    w, r = reg(1, user_id=10), reg(2, user_id=20)
    result = Row(
        id=9, tournament=CUP, winner=w, runner_up=r, third_place=None, fourth_place=None, created_at=T0, updated_at=T0
    )
    d = rules.derive_tournament_result(result, [w, r], {})
    assert E.TOURNAMENT_TOP4 not in {e.event_type for e in d.events}


def test_team_result_gives_placement_to_all_members():
    w, r = reg(1, team_id=3), reg(2, user_id=20)
    result = Row(
        id=9, tournament=CUP, winner=w, runner_up=r, third_place=None, fourth_place=None, created_at=T0, updated_at=T0
    )
    d = rules.derive_tournament_result(result, [w, r], {1: [11, 12, 13, 14, 15]})
    assert sorted(u for u, t in triples(d) if t == E.TOURNAMENT_WON) == [11, 12, 13, 14, 15]
    assert sorted(u for u, t in triples(d) if t == E.TOURNAMENT_COMPLETED) == [11, 12, 13, 14, 15, 20]
    assert sorted(u for u, t in triples(d) if t == E.TOURNAMENT_PLACED) == [11, 12, 13, 14, 15, 20]


def test_other_entrants_are_placed_by_the_knockout_round_of_their_last_loss():
    entrants = [reg(i, user_id=10 * i) for i in range(1, 12)]
    w, r, qf, r16, r32, r64, r128, rr, br, er, unchecked = entrants
    result = Row(
        id=9, tournament=CUP, winner=w, runner_up=r, third_place=None, fourth_place=None, created_at=T0, updated_at=T0
    )
    lost = {
        r.id: ["F"],
        qf.id: ["RR", "QF"],  # a group-stage loss before the quarter-final: the last loss counts
        r16.id: ["R16"],
        r32.id: ["R32"],
        r64.id: ["R64"],
        r128.id: ["R128"],
        rr.id: ["RR"],
        br.id: ["BR"],
        er.id: ["ER"],
        unchecked.id: ["QF"],
    }
    d = rules.derive_tournament_result(result, entrants[:-1], {}, lost)
    placed = {e.user_id: (e.metadata["placement"], e.amount) for e in d.events if e.event_type == E.TOURNAMENT_PLACED}
    # Only placements up to 10 carry themselves as amount (what average_placement averages).
    assert placed == {10: (1, 1), 20: (2, 2), 30: (5, 5), 40: (9, 9), 50: (17, None), 60: (33, None), 70: (65, None)}


# --- coins, achievements, teams, profiles ---------------------------------------------------------------------


def test_positive_transaction_is_coins_earned_with_its_amount():
    t = Row(id=5, wallet=Row(profile_id=10), amount=250, reason="prize", created_at=T0, reverses_id=None)
    (event,) = rules.derive_transaction(t).events
    assert (event.user_id, event.event_type, event.amount, event.timestamp) == (10, E.COINS_EARNED, 250, T0)
    assert event.metadata == {"reason": "prize"}


def test_negative_transaction_is_coins_spent_stored_as_a_positive_amount():
    t = Row(id=5, wallet=Row(profile_id=10), amount=-40, reason="skin", created_at=T0, reverses_id=None)
    (event,) = rules.derive_transaction(t).events
    assert (event.event_type, event.amount) == (E.COINS_SPENT, 40)


def test_a_reversing_transaction_cancels_what_the_reversed_one_counted():
    unearn = Row(id=6, wallet=Row(profile_id=10), amount=-250, reason="prize revoked", created_at=T0, reverses_id=5)
    refund = Row(id=7, wallet=Row(profile_id=10), amount=40, reason="refund", created_at=T0, reverses_id=4)
    assert [(e.event_type, e.amount) for e in rules.derive_transaction(unearn).events] == [
        (E.COINS_EARNED_REVERSED, 250)
    ]
    assert [(e.event_type, e.amount) for e in rules.derive_transaction(refund).events] == [(E.COINS_SPENT_REVERSED, 40)]


def test_unlocked_achievement_gives_achievement_unlocked_at_unlock_time():
    unlock = Row(id=3, user_id=10, unlocked_at=T0, achievement=Row(code="first-win", name="First win", tier="minor"))
    (event,) = rules.derive_user_achievement(unlock).events
    assert (event.user_id, event.event_type, event.timestamp) == (10, E.ACHIEVEMENT_UNLOCKED, T0)
    assert event.metadata == {"code": "first-win", "name": "First win", "tier": "minor"}


def test_team_created_goes_to_its_creator():
    (event,) = rules.derive_team(Row(id=3, name="Owls", created_by_id=10, created_at=T0)).events
    assert (event.user_id, event.event_type) == (10, E.TEAM_CREATED)


def test_membership_gives_team_joined_and_once_left_also_team_left_at_leaving_time():
    team = Row(name="Owls")
    active = Row(id=4, team_id=3, team=team, user_id=10, joined_at=T0, left_at=None, updated_at=T0)
    assert triples(rules.derive_team_membership(active)) == [(10, E.TEAM_JOINED)]
    left = Row(id=4, team_id=3, team=team, user_id=10, joined_at=T0, left_at=T0 + timedelta(days=3), updated_at=T0)
    d = rules.derive_team_membership(left)
    assert triples(d) == [(10, E.TEAM_JOINED), (10, E.TEAM_LEFT)]
    assert next(e for e in d.events if e.event_type == E.TEAM_LEFT).timestamp == T0 + timedelta(days=3)
    assert d.authority == {E.TEAM_JOINED, E.TEAM_LEFT}  # a re-join (left_at cleared) compensates the team_left


def test_profile_created_is_keyed_by_the_user():
    (event,) = rules.derive_profile(Row(user_id=10, created_at=T0, updated_at=T0, level=4, kyc_verified_at=None)).events
    assert (event.user_id, event.event_type, event.source_id) == (10, E.PROFILE_CREATED, 10)


def test_a_profile_implies_a_level_up_per_multiple_of_5_keyed_by_level_and_kyc_verified_once():
    later = T0 + timedelta(days=3)
    profile = Row(user_id=10, created_at=T0, updated_at=later, level=12, kyc_verified_at=later)
    events = rules.derive_profile(profile).events
    ups = [(e.seq, e.metadata["level"], e.timestamp) for e in events if e.event_type == E.LEVEL_UP]
    assert ups == [(1, 5, later), (2, 10, later)]
    (kyc,) = [e for e in events if e.event_type == E.KYC_VERIFIED]
    assert (kyc.timestamp, kyc.resolved_visibility()) == (later, Visibility.PRIVATE)


# --- vocabulary -----------------------------------------------------------------------------------------------


def test_every_base_event_a_deletable_source_records_has_a_compensating_type():
    from activity.sources import SOURCES

    recorded = {t for kind in SOURCES.values() for t in kind.recorded_types}
    assert set(REVERSAL_OF) >= MATCH_OUTCOME_EVENTS | PLACEMENT_EVENTS
    assert recorded <= set(REVERSAL_OF)
    assert E.PROFILE_CREATED not in REVERSAL_OF  # a profile's deletion is not compensated
    assert all(rev in E.values for rev in REVERSAL_OF.values())


@pytest.mark.parametrize(
    "event_type, visibility",
    [
        (E.COINS_EARNED, Visibility.PRIVATE),
        (E.COINS_SPENT, Visibility.PRIVATE),
        (E.TOURNAMENT_WON, Visibility.PUBLIC),
        (E.TOURNAMENT_TOP4, Visibility.PUBLIC),
        (E.TOURNAMENT_REGISTERED, Visibility.PUBLIC),
        (E.ACHIEVEMENT_UNLOCKED, Visibility.PUBLIC),
        (E.TEAM_JOINED, Visibility.PUBLIC),
        (E.MATCH_WON_REVERSED, Visibility.PUBLIC),
    ],
)
def test_default_visibility_keeps_coins_private_and_the_rest_public(event_type, visibility):
    assert default_visibility(event_type) == visibility


def test_events_of_one_row_have_deterministic_idempotency_keys():
    a, b = reg(1, user_id=10), reg(2, user_id=20)
    first = rules.derive_match(match(a, b, winner=a, loser=b), {})
    again = rules.derive_match(match(a, b, winner=a, loser=b), {})
    assert [e.key for e in first.events] == [e.key for e in again.events]
    assert len({e.key for e in first.events}) == len(first.events)
