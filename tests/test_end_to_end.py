"""End to end through the real path: source rows saved -> receivers -> Redis -> the real worker -> ledger -> stats."""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activity.event_types import EventType as E
from activity.models import UserActivity
from esports.economy.models import DeltaCrownTransaction
from esports.tournaments.models import Match, Registration
from stats.models import UserProfileStats
from tasks.recording import record_source_change
from tests.factories import (
    MatchFactory,
    RegistrationFactory,
    TeamFactory,
    TeamMembershipFactory,
    TournamentFactory,
    TournamentResultFactory,
    UserFactory,
    complete_match,
)
from tests.ledger_helpers import counters, ledger_counts, nonzero, run_in_threads

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("live_worker")]

MATCH_COUNTERS = ("matches_played", "matches_won", "matches_lost")


def match_counters(user) -> tuple[int, ...]:
    c = counters(user)
    return tuple(c[k] for k in MATCH_COUNTERS)


def test_every_new_user_gets_profile_created_and_a_stats_row(tracker):
    user = UserFactory()
    tracker.wait_idle()
    assert ledger_counts(user) == {E.PROFILE_CREATED: 1}
    assert UserProfileStats.objects.filter(profile_id=user.id).exists()


def test_register_check_in_four_wins_title_and_prize(tracker):
    prize = 2500
    tournament = TournamentFactory()
    me = RegistrationFactory(tournament=tournament, status=Registration.Status.PENDING, checked_in=False)
    opponents = RegistrationFactory.create_batch(4, tournament=tournament)
    tracker.wait_idle()

    me.status = Registration.Status.CONFIRMED  # register
    me.save()
    me.checked_in, me.checked_in_at = True, timezone.now()  # check in
    me.save()
    for rnd, opponent in zip(("R16", "QF", "SF", "F"), opponents):
        complete_match(MatchFactory(tournament=tournament, round=rnd, participant1=opponent, participant2=me), me)
    TournamentResultFactory(
        tournament=tournament, winner=me, runner_up=opponents[3], third_place=opponents[2], fourth_place=opponents[1]
    )
    DeltaCrownTransaction.objects.create(wallet=me.user.profile.wallet, amount=prize, reason="tournament prize")
    tracker.wait_idle()

    assert ledger_counts(me.user) == {
        E.PROFILE_CREATED: 1,
        E.TOURNAMENT_REGISTERED: 1,
        E.TOURNAMENT_JOINED: 1,
        E.MATCH_PLAYED: 4,
        E.MATCH_WON: 4,
        E.TOURNAMENT_WON: 1,
        E.TOURNAMENT_COMPLETED: 1,
        E.TOURNAMENT_PLACED: 1,
        E.COINS_EARNED: 1,
    }
    assert nonzero(counters(me.user)) == {
        "tournaments_registered": 1,
        "tournaments_played": 1,
        "tournaments_completed": 1,
        "tournaments_won": 1,
        "matches_played": 4,
        "matches_won": 4,
        "total_earned": prize,
        "placements_counted": 1,  # placed 1st
        "placements_sum": 1,
    }
    assert UserActivity.objects.get(user=me.user, event_type=E.COINS_EARNED).amount == prize
    assert "FAILURE" not in tracker.states()


def test_no_show_gives_no_tournament_joined(tracker):
    registration = RegistrationFactory(checked_in=False)
    tracker.wait_idle()  # registered (confirmed) is recorded before the player fails to show up
    registration.status = Registration.Status.NO_SHOW
    registration.save()
    TournamentResultFactory(tournament=registration.tournament)
    tracker.wait_idle()
    assert ledger_counts(registration.user) == {E.PROFILE_CREATED: 1, E.TOURNAMENT_REGISTERED: 1}
    assert nonzero(counters(registration.user)) == {"tournaments_registered": 1}


def test_forfeit_counts_played_not_won(tracker):
    match = MatchFactory()
    match.state, match.winner, match.loser, match.completed_at = (
        Match.State.FORFEIT,
        match.participant1,
        match.participant2,
        timezone.now(),
    )
    match.save()
    tracker.wait_idle()
    for side in (match.participant1, match.participant2):
        assert match_counters(side.user) == (1, 0, 0)


@pytest.mark.parametrize("flips", [1, 3])
def test_dispute_resolved_the_other_way_keeps_the_original_events_and_stats_follow(tracker, flips):
    match = MatchFactory()
    a, b = match.participant1, match.participant2
    complete_match(match, a)
    tracker.wait_idle()
    original = set(
        UserActivity.objects.filter(source_model="tournaments.match", source_id=match.id).values_list("id", flat=True)
    )
    assert len(original) == 4
    for _ in range(flips):
        match.state = Match.State.DISPUTED
        match.save()
        tracker.wait_idle()
        complete_match(match, match.loser)
        tracker.wait_idle()
    assert original <= set(UserActivity.objects.values_list("id", flat=True))
    assert match_counters(a.user) == (1, 0, 1)  # an odd number of flips: b won in the end
    assert match_counters(b.user) == (1, 1, 0)
    assert ledger_counts(a.user)[E.MATCH_WON] == 1 + flips // 2


def test_changes_faster_than_the_worker_still_converge_on_the_final_state(tracker):
    match = MatchFactory()
    a, b = match.participant1, match.participant2
    for winner in (a, b, a, b, a, b, a):  # no waiting: deliveries may see any intermediate or the final state
        complete_match(match, winner)
    tracker.wait_idle()
    assert match_counters(a.user) == (1, 1, 0)
    assert match_counters(b.user) == (1, 0, 1)


def test_a_backdated_member_gets_the_teams_entries_from_one_task_run_by_the_worker(tracker):
    """The membership receiver publishes one record_team_entries task after commit: the worker, not the request,
    finds the team's registrations, matches and results and records them for the new member."""
    tournament = TournamentFactory()
    team, rivals = TeamFactory(), TeamFactory()
    TeamMembershipFactory(team=team)
    TeamMembershipFactory(team=rivals)
    ours = RegistrationFactory(tournament=tournament, user=None, team=team)
    theirs = RegistrationFactory(tournament=tournament, user=None, team=rivals)
    complete_match(MatchFactory(tournament=tournament, participant1=ours, participant2=theirs), ours)
    TournamentResultFactory(tournament=tournament, winner=ours, runner_up=theirs)
    late = UserFactory()
    tracker.wait_idle()
    with CaptureQueriesContext(connection) as queries:
        TeamMembershipFactory(team=team, user=late, joined_at=ours.created_at - timezone.timedelta(days=1))
    assert not any("tournaments_registration" in q["sql"] for q in queries.captured_queries)  # nothing in the request
    tracker.wait_idle()
    # registered, joined, played, won, title, completed and placed 1st
    assert any(state == "SUCCESS" and retval == 7 for _, args, state, retval in tracker.runs if args[:1] == (team.pk,))
    assert nonzero(counters(late)) == {
        "tournaments_registered": 1,
        "tournaments_played": 1,
        "tournaments_completed": 1,
        "tournaments_won": 1,
        "matches_played": 1,
        "matches_won": 1,
        "teams_joined": 1,
        "current_teams_count": 1,
        "placements_counted": 1,
        "placements_sum": 1,
    }


def test_team_win_gives_events_to_all_five_members(tracker):
    tournament = TournamentFactory()
    teams = [TeamFactory(), TeamFactory()]
    rosters = [[TeamMembershipFactory(team=team).user for _ in range(5)] for team in teams]
    regs = [RegistrationFactory(tournament=tournament, user=None, team=team) for team in teams]
    complete_match(MatchFactory(tournament=tournament, round="F", participant1=regs[0], participant2=regs[1]), regs[0])
    TournamentResultFactory(tournament=tournament, winner=regs[0], runner_up=regs[1])
    tracker.wait_idle()
    for member in rosters[0]:
        assert ledger_counts(member) == {
            E.PROFILE_CREATED: 1,
            E.TEAM_JOINED: 1,
            E.TOURNAMENT_REGISTERED: 1,
            E.TOURNAMENT_JOINED: 1,
            E.MATCH_PLAYED: 1,
            E.MATCH_WON: 1,
            E.TOURNAMENT_WON: 1,
            E.TOURNAMENT_COMPLETED: 1,
            E.TOURNAMENT_PLACED: 1,
        }
        assert counters(member)["current_teams_count"] == 1
    for member in rosters[1]:
        assert nonzero(counters(member))["matches_lost"] == 1
        assert counters(member)["tournaments_runner_up"] == 1


def test_two_tournaments_completing_concurrently(tracker):
    shared = UserFactory.create_batch(3)
    setups = []
    for _ in range(2):
        tournament = TournamentFactory()
        regs = [RegistrationFactory(tournament=tournament, user=u) for u in shared] + [
            RegistrationFactory(tournament=tournament)
        ]
        setups.append((tournament, regs))
    tracker.wait_idle()

    def complete(i: int) -> None:  # two requests, each committing one result at the same moment
        tournament, regs = setups[i]
        TournamentResultFactory(
            tournament=tournament, winner=regs[i], runner_up=regs[1 - i], third_place=regs[2], fourth_place=regs[3]
        )

    assert run_in_threads(2, complete) == []
    tracker.wait_idle()
    for user, expected in zip(
        shared,
        [
            {"tournaments_won": 1, "tournaments_runner_up": 1},
            {"tournaments_won": 1, "tournaments_runner_up": 1},
            {"tournaments_top4": 2},
        ],
    ):
        got = counters(user)
        assert {k: got[k] for k in expected} == expected
        assert got["tournaments_completed"] == 2


# --- the task on bad input and on database errors ------------------------------------------------------------


@pytest.mark.parametrize(
    "args, logged",
    [
        (("tournaments.match", 987654321), None),  # the row was deleted (or never committed)
        (("nope.model", 1), "Unknown source 'nope.model'"),
        (("tournaments.match", "abc"), "invalid literal"),
        (("tournaments.match", None), "must be an integer"),
        (("tournaments.match", 2**70), "outside the 64-bit range"),
        (("tournaments.match", 2**40), None),  # a bigint key beyond int4: a missing row, not a crash
    ],
)
def test_task_with_a_missing_row_or_a_bad_payload_logs_and_returns_without_retry(tracker, caplog, args, logged):
    caplog.set_level(logging.INFO)
    before = UserActivity.objects.count()
    record_source_change.apply_async(args)
    tracker.wait_idle()
    assert [(state, retval) for _, a, state, retval in tracker.runs if a == args] == [("SUCCESS", 0)]
    assert sum(tracker.published.values()) == 1  # never re-published as a retry
    assert UserActivity.objects.count() == before
    if logged:
        assert any(
            logged in r.getMessage() and repr(args[1]) in r.getMessage()
            for r in caplog.records
            if r.levelno >= logging.ERROR
        )


def test_task_retries_with_backoff_on_a_database_error(tracker, monkeypatch, settings):
    from tasks import recording

    settings.ACTIVITY_ENQUEUE_MODE = "task"  # the per-row task's own retry (the drain's is in test_batched_enqueue)
    real = recording.record_events_for
    calls = []

    def flaky(label, ids, **kwargs):
        calls.append(ids)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(label, ids, **kwargs)

    match = MatchFactory()
    tracker.wait_idle()
    monkeypatch.setattr(recording, "record_events_for", flaky)
    complete_match(match, match.participant1)
    tracker.wait_idle(timeout=30)
    assert [state for _, args, state, _ in tracker.runs if args == ("tournaments.match", match.id)][-2:] == [
        "RETRY",
        "SUCCESS",
    ]
    assert match_counters(match.participant1.user) == (1, 1, 0)
