"""Every finish placed (issue 15 item 2): a tournament_placed event per checked-in entrant of a tournament with a
result - 1-4 from the result, 5 / 9 / 17 / 33 / 65 from the knockout round of the entrant's last loss (a walkover
loss included; round-robin, bronze-match and early-round losses none) - and average_placement, the mean of the
placements <= 10, on the lifetime, per-game and per-season rows; corrections of a match or of the result move it."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.utils import timezone

from activity.derivation import MATCH, TOURNAMENT_RESULT
from activity.event_types import EventType as E
from activity.models import UserActivity
from activity.privacy import ViewerClass, ViewerRelation
from activity.recording import record_events_for
from activity.selectors.timeline import timeline
from esports.tournaments.models import Match, Registration, Tournament, TournamentResult
from stats.models import UserGameStats, UserProfileStats, UserSeasonStats
from stats.recompute import recompute_stats
from stats.reconcile import run_reconciliation
from stats.selectors.seasons import season_table
from tests.factories import RegistrationFactory, TournamentFactory, UserFactory, solo_user_id
from tests.ledger_helpers import record

pytestmark = pytest.mark.django_db


class Bracket:
    """A 16-draw knockout (R16, QF, SF, F) of one tournament, entry 0 the champion; QF 4 is lost by walkover. Extra
    checked-in entries lose only a round-robin, a bronze or an early-round match; one entry never checked in."""

    def __init__(self, tournament: Tournament, users=None) -> None:
        self.tournament = tournament
        users = users or [UserFactory() for _ in range(16)]
        record(*[u.profile for u in users])
        self.entries = [RegistrationFactory(tournament=tournament, user=u) for u in users]
        self.outside = {
            name: RegistrationFactory(tournament=tournament, checked_in=name != "unchecked")
            for name in ("RR", "BR", "ER", "unchecked")
        }
        record(*self.entries, *self.outside.values())
        self.matches: dict[tuple[str, int], Match] = {}
        e = self.entries
        for i in range(8):  # R16: entry i beats entry i + 8
            self.play("R16", i, e[i], e[i + 8])
        for i in range(4):  # QF: entry i beats entry i + 4 (QF 3 by walkover)
            self.play("QF", i, e[i], e[i + 4], walkover=i == 3)
        self.play("SF", 0, e[0], e[2])
        self.play("SF", 1, e[1], e[3])
        self.play("F", 0, e[0], e[1])
        self.play("RR", 0, e[0], self.outside["RR"])
        self.play("BR", 0, e[2], self.outside["BR"])
        self.play("ER", 0, e[3], self.outside["ER"])
        self.play("R16", 9, e[4], self.outside["unchecked"])
        record(*self.matches.values())
        self.result = TournamentResult.objects.create(
            tournament=tournament, winner=e[0], runner_up=e[1], third_place=e[2], fourth_place=e[3]
        )
        record(self.result)

    def play(self, round_: str, n: int, winner: Registration, loser: Registration, walkover: bool = False) -> Match:
        match = Match.objects.create(
            tournament=self.tournament,
            round=round_,
            participant1=winner,
            participant2=loser,
            winner=winner,
            loser=loser,
            state=Match.State.FORFEIT if walkover else Match.State.COMPLETED,
            score="W/O" if walkover else "6-4 6-4",
            completed_at=timezone.now(),
        )
        self.matches[(round_, n)] = match
        return match

    def user(self, index: int) -> int:
        return solo_user_id(self.entries[index])


def placements(tournament: Tournament) -> dict[int, int]:
    """user id -> the placement the ledger holds now for this tournament (events net of their compensations)."""
    net: dict[tuple[int, int], int] = {}
    for user_id, event_type, metadata in UserActivity.objects.filter(
        event_type__in=(E.TOURNAMENT_PLACED, E.TOURNAMENT_PLACED_REVERSED), metadata__tournament_id=tournament.id
    ).values_list("user_id", "event_type", "metadata"):
        key = (user_id, metadata["placement"])
        net[key] = net.get(key, 0) + (1 if event_type == E.TOURNAMENT_PLACED else -1)
    assert all(n in (0, 1) for n in net.values()), net
    held = {user: place for (user, place), n in net.items() if n == 1}
    assert len(held) == len({user for (user, _place), n in net.items() if n == 1}), "one placement per entrant"
    return held


def average(user_id: int) -> Decimal | None:
    return UserProfileStats.objects.get(profile_id=user_id).average_placement


def test_a_bracket_places_every_checked_in_entrant_by_the_round_of_their_last_loss():
    bracket = Bracket(TournamentFactory(game="valorant", season=2025))
    expected = {bracket.user(0): 1, bracket.user(1): 2, bracket.user(2): 3, bracket.user(3): 4}
    expected |= {bracket.user(i): 5 for i in range(4, 8)}  # entry 7 lost its quarter-final by walkover
    expected |= {bracket.user(i): 9 for i in range(8, 16)}
    # Round-robin, bronze-match and early-round losers get no placement, nor does an entry never checked in.
    assert placements(bracket.tournament) == expected
    assert average(bracket.user(7)) == Decimal("5.00")
    assert average(bracket.user(0)) == Decimal("1.00")
    assert average(solo_user_id(bracket.outside["RR"])) is None

    # A second tournament of another season: the mean of 1 and 9; a 17th place is not averaged.
    users = [UserFactory() for _ in range(16)]
    users[8], users[0] = bracket.entries[0].user, bracket.entries[8].user  # the champion now loses an R16
    second = Bracket(TournamentFactory(game="valorant", season=2026), users)
    assert placements(second.tournament)[bracket.user(0)] == 9
    assert average(bracket.user(0)) == Decimal("5.00")
    assert average(bracket.user(8)) == Decimal("5.00")  # 9, then 1
    by_season = {r.season: r.average_placement for r in UserSeasonStats.objects.filter(profile_id=bracket.user(0))}
    assert by_season == {2025: Decimal("1.00"), 2026: Decimal("9.00")}
    assert UserGameStats.objects.get(profile_id=bracket.user(0), game="valorant").average_placement == Decimal("5.00")
    assert [(s.season, s.average_placement) for s in season_table(bracket.user(0))] == [
        (2025, Decimal("1.00")),
        (2026, Decimal("9.00")),
    ]


def test_placements_deeper_than_ten_are_recorded_but_not_averaged():
    tournament = TournamentFactory(game="tennis", season=2019)
    entries = [RegistrationFactory(tournament=tournament) for _ in range(7)]
    record(*[e.user.profile for e in entries])
    record(*entries)
    rounds = ["F", "SF", "R32", "R64", "R128", "QF"]
    for loser, round_ in zip(entries[1:], rounds, strict=True):
        Match.objects.create(
            tournament=tournament,
            round=round_,
            participant1=entries[0],
            participant2=loser,
            winner=entries[0],
            loser=loser,
            state=Match.State.COMPLETED,
        )
    record(*Match.objects.filter(tournament=tournament))
    record(TournamentResult.objects.create(tournament=tournament, winner=entries[0], runner_up=entries[1]))
    got = placements(tournament)
    # The SF loser is not named third or fourth by this result: an SF loss maps to no placement.
    assert got == {
        solo_user_id(entries[0]): 1,
        solo_user_id(entries[1]): 2,
        solo_user_id(entries[3]): 17,
        solo_user_id(entries[4]): 33,
        solo_user_id(entries[5]): 65,
        solo_user_id(entries[6]): 5,
    }
    deep = UserProfileStats.objects.get(profile_id=solo_user_id(entries[5]))
    assert (deep.placements_counted, deep.placements_sum, deep.average_placement) == (0, 0, None)
    assert deep.to_dict()["average_placement"] is None
    assert UserProfileStats.objects.get(profile_id=solo_user_id(entries[6])).to_dict()["average_placement"] == "5.00"


def test_an_entrant_the_result_names_twice_keeps_the_best_place():
    # A team cup's result (ATP 2024-9900): the champion also lost a semi-final rubber, which names them third too.
    tournament = TournamentFactory(game="tennis", season=2024)
    champion, finalist, semi_winner, other_loser = [RegistrationFactory(tournament=tournament) for _ in range(4)]
    record(*[e.user.profile for e in (champion, finalist, semi_winner, other_loser)])
    record(champion, finalist, semi_winner, other_loser)
    for round_, winner, loser in (
        ("SF", semi_winner, champion),
        ("SF", finalist, other_loser),
        ("F", champion, finalist),
    ):
        Match.objects.create(
            tournament=tournament,
            round=round_,
            participant1=winner,
            participant2=loser,
            winner=winner,
            loser=loser,
            state=Match.State.COMPLETED,
        )
    record(*Match.objects.filter(tournament=tournament))
    record(
        TournamentResult.objects.create(
            tournament=tournament, winner=champion, runner_up=finalist, third_place=champion, fourth_place=other_loser
        )
    )
    assert placements(tournament) == {
        solo_user_id(champion): 1,
        solo_user_id(finalist): 2,
        solo_user_id(other_loser): 4,
    }
    assert average(solo_user_id(champion)) == Decimal("1.00")


def test_a_corrected_match_moves_the_placement_and_the_average_with_it():
    bracket = Bracket(TournamentFactory(game="valorant", season=2025))
    loser = bracket.user(9)  # lost R16 match 1: 9th
    r16 = bracket.matches[("R16", 1)]
    assert placements(bracket.tournament)[loser] == 9

    # The match was a quarter-final after all: recording the match re-derives the result's placements with it.
    r16.round = "QF"
    r16.save()
    record(r16)
    assert placements(bracket.tournament)[loser] == 5
    assert average(loser) == Decimal("5.00")
    r16.round = "R16"
    r16.save()
    record(r16)
    assert placements(bracket.tournament)[loser] == 9
    assert average(loser) == Decimal("9.00")

    # Disputed: the loss no longer stands, nor the placement it gave; resolved the same way, both come back.
    r16.state = Match.State.DISPUTED
    r16.save()
    record(r16)
    assert loser not in placements(bracket.tournament)
    assert average(loser) is None
    r16.state = Match.State.COMPLETED
    r16.save()
    record(r16)
    assert placements(bracket.tournament)[loser] == 9

    # Upheld the other way: the former winner (out in the QF, 5th) now lost the R16 too, but the QF is his last loss.
    r16.winner, r16.loser = r16.loser, r16.winner
    r16.save()
    record(r16)
    assert loser not in placements(bracket.tournament)
    assert placements(bracket.tournament)[bracket.user(1)] == 2  # named runner-up by the result: unmoved

    # A deleted match is compensated, and so is what it placed (its tournament found from the ledger's rows).
    qf = bracket.matches[("QF", 3)]  # the walkover
    qf_id = qf.pk
    qf.delete()
    record_events_for(MATCH, [qf_id])
    assert bracket.user(7) not in placements(bracket.tournament)
    assert average(bracket.user(7)) is None


def test_a_deleted_or_changed_result_compensates_its_placements():
    bracket = Bracket(TournamentFactory(game="valorant", season=2025))
    result = bracket.result
    result.third_place, result.fourth_place = None, None
    result.save()
    record(result)
    # No longer named: the semi-final losers have no placement (an SF loss maps to none).
    assert bracket.user(2) not in placements(bracket.tournament)
    assert average(bracket.user(2)) is None
    result_id = result.pk
    result.delete()
    record_events_for(TOURNAMENT_RESULT, [result_id])
    assert placements(bracket.tournament) == {}
    assert UserProfileStats.objects.filter(placements_counted__gt=0).count() == 0


def test_a_correction_recorded_without_its_dependents_is_repaired_by_the_reconciliation():
    bracket = Bracket(TournamentFactory(game="valorant", season=2025))
    r16 = bracket.matches[("R16", 2)]
    r16.round = "QF"
    r16.save()
    record_events_for(MATCH, [r16.pk], origin="backfill")  # the backfill derives every result itself: no dependents
    assert placements(bracket.tournament)[bracket.user(10)] == 9  # not moved yet
    run = run_reconciliation(fix=True)
    assert run.missing_events.get(TOURNAMENT_RESULT, {}).get(E.TOURNAMENT_PLACED) == 1
    assert placements(bracket.tournament)[bracket.user(10)] == 5
    assert average(bracket.user(10)) == Decimal("5.00")


def test_recompute_and_reconciliation_agree_with_the_incremental_average():
    bracket = Bracket(TournamentFactory(game="valorant", season=2025))
    users = [bracket.user(i) for i in range(16)]
    before = {u: average(u) for u in users}
    UserProfileStats.objects.filter(profile_id=users[5]).update(placements_counted=3, placements_sum=4)
    UserSeasonStats.objects.filter(profile_id=users[6]).update(placements_sum=40)
    report = run_reconciliation(fix=False, skip_sources=True)
    assert report.field_drift == {"placements_counted": 1, "placements_sum": 1, "season_stats.placements_sum": 1}
    assert average(users[5]) == Decimal("1.33")  # 4 / 3, from the drifted counters: the column follows them
    recompute_stats(users)
    assert {u: average(u) for u in users} == before
    assert run_reconciliation(fix=False, skip_sources=True).users_drifted == 0


def test_placements_stay_off_the_default_timeline_and_follow_the_participation_flag(client, settings):
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"placed-{uuid.uuid4().hex[:8]}"}}
    bracket = Bracket(TournamentFactory(game="valorant", season=2025))
    player = bracket.entries[9].user  # 9th
    me = ViewerRelation(ViewerClass.SELF, player.pk)
    anonymous = ViewerRelation(ViewerClass.ANONYMOUS, player.pk)
    # A 9th place is not a major event: the default timeline leaves it to the `types` filter.
    assert E.TOURNAMENT_PLACED not in {e.event_type for e in timeline(me).items}
    asked = timeline(anonymous, types=frozenset({E.TOURNAMENT_PLACED}))
    assert [(e.event_type, e.metadata["placement"]) for e in asked.items] == [(E.TOURNAMENT_PLACED, 9)]

    # Hidden participation hides where they finished from others; the average stays an aggregate counter.
    player.profile.show_tournament_stats = False
    player.profile.save()
    hidden = ViewerRelation(ViewerClass.ANONYMOUS, player.pk, show_tournament_stats=False)
    assert timeline(hidden, types=frozenset({E.TOURNAMENT_PLACED})).items == []
    stats = client.get(f"/api/users/{player.pk}/stats/").json()
    assert (stats["average_placement"], stats["placements_counted"]) == (9.0, 1)
    seasons = client.get(f"/api/users/{player.pk}/seasons/").json()["results"]
    assert [(s["season"], s["average_placement"]) for s in seasons] == [(2025, 9.0)]
    page = client.get(f"/u/{player.username}/")
    assert b'data-stat="average_placement">9.00<' in page.content
