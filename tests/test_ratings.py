"""Ratings (issue 17): the pinned formula and order on hand-built cases, the live O(1) path and the replay that a
late match, a correction or a deletion triggers, team entries and forfeits, the command and the reconciliation pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from activity.recording import record_events_for
from esports.teams.models import TeamMembership
from esports.tournaments.models import Match, Registration
from stats.ratings import rules
from stats.ratings.check import check_ratings
from stats.ratings.models import PlayerRating, RatingGame, RatingHistory, RatingReplayMark
from stats.ratings.replay import run_replay
from tests.factories import TeamFactory, UserFactory, complete_match
from tests.ledger_helpers import record
from tests.ratings_support import (
    assert_close,
    elo_delta,
    entries,
    play,
    settle,
    solo_fold,
    stored,
    tournament,
)

pytestmark = pytest.mark.django_db

JAN = datetime(2024, 1, 1, tzinfo=UTC)


# --- the rules, pure ---------------------------------------------------------------------------------------------


def test_the_formula_at_equal_and_unequal_ratings():
    assert rules.winner_gain(1500, 1500) == 16
    # E_a = 1 / (1 + 10 ** ((R_b - R_a) / 400)): a 400-point favourite is expected to score 10/11
    assert rules.expected_score(1900, 1500) == pytest.approx(10 / 11)
    assert rules.winner_gain(1900, 1500) == pytest.approx(32 / 11)
    assert rules.winner_gain(1500, 1900) == pytest.approx(32 * 10 / 11)


def test_the_order_key_sorts_by_start_then_tournament_then_round_rank_then_number_then_id():
    def key(**kw):
        base = {
            "starts_at": JAN,
            "completed_at": None,
            "created_at": JAN,
            "external_id": "A",
            "tournament_id": 1,
            "round_value": "R16",
            "match_num": 1,
            "match_id": 1,
        }
        return rules.order_key(**{**base, **kw})

    assert key(starts_at=JAN) < key(starts_at=JAN + timedelta(days=1), external_id="0")
    assert key(external_id="A") < key(external_id="B", round_value="ER")  # ties in time: the tournament first
    ranks = ["Q1", "ER", "R128", "R64", "R32", "R16", "RR", "QF", "SF", "BR", "F"]  # any other value before ER
    assert sorted((key(round_value=r) for r in reversed(ranks)), key=lambda k: k) == [key(round_value=r) for r in ranks]
    assert key(match_num=None) < key(match_num=0) < key(match_num=2, match_id=1) < key(match_num=2, match_id=5)
    # no start date: the match's completion; no external id: the tournament id as text ("10" < "9")
    assert key(starts_at=None, completed_at=JAN)[0] == JAN
    assert key(external_id=None, tournament_id=10) < key(external_id=None, tournament_id=9)


# --- live path and replay ------------------------------------------------------------------------------------------


def test_a_new_latest_match_is_folded_in_the_recording_without_a_replay():
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    t = tournament(starts_at=JAN, external_id="T1")
    ea, eb, ec = entries(t, [a, b, c])
    play(t, ea, eb, round="QF", num=1)
    play(t, ea, ec, round="SF", num=2)
    assert not RatingReplayMark.objects.exists()
    r = {p.profile_id: p for p in PlayerRating.objects.all()}
    assert r[a.pk].rating == pytest.approx(1516 + elo_delta(1516, 1500))
    assert r[b.pk].rating == 1484 and r[c.pk].rating == pytest.approx(1500 - elo_delta(1516, 1500))
    assert r[a.pk].peak == r[a.pk].rating and r[a.pk].matches_rated == 2
    assert r[b.pk].peak == 1500 and r[b.pk].peak_at is None  # never above the start
    assert RatingHistory.objects.filter(profile_id=a.pk).count() == 2
    assert_close(stored("chess"), solo_fold("chess"))


def test_a_match_sorting_before_the_last_rated_one_is_marked_and_the_replay_makes_it_exact():
    users = [UserFactory() for _ in range(4)]
    late = tournament(starts_at=JAN + timedelta(days=7), external_id="B")
    early = tournament(starts_at=JAN, external_id="A")
    tie = tournament(starts_at=JAN + timedelta(days=7), external_id="A2")  # same start as `late`: ext decides
    e_late, e_early, e_tie = entries(late, users), entries(early, users), entries(tie, users)
    play(late, e_late[0], e_late[1], round="F")
    play(late, e_late[2], e_late[0], round="SF")  # SF before F by rank: a late insert even in one tournament
    assert RatingReplayMark.objects.count() == 1
    play(early, e_early[1], e_early[0])
    play(tie, e_tie[3], e_tie[0], round="F")
    settle()
    assert not RatingReplayMark.objects.exists()
    assert RatingGame.objects.get(game="chess").status == RatingGame.Status.IDLE
    assert_close(stored("chess"), solo_fold("chess"))


def test_flipping_one_old_final_three_times_ends_where_a_fresh_replay_ends():
    users = [UserFactory() for _ in range(5)]
    old = tournament(starts_at=JAN, external_id="OLD")
    es = entries(old, users)
    final = play(old, es[0], es[1], round="F")
    for day in range(1, 6):
        t = tournament(starts_at=JAN + timedelta(days=day), external_id=f"N{day}")
        e = entries(t, users)
        play(t, e[day % 5], e[(day + 1) % 5])
        play(t, e[0], e[day % 4 + 1], round="F")
    for _flip in range(3):
        final.refresh_from_db()
        complete_match(final, Registration.objects.get(pk=final.loser_id))
        record(final)
        settle()
        assert_close(stored("chess"), solo_fold("chess"))
    fresh_matches = stored("chess")
    call_command("recompute_ratings", "--game", "chess", stdout=StringIO())
    assert_close(stored("chess"), fresh_matches)


def test_a_deleted_or_disputed_upheld_match_leaves_ratings_as_if_it_never_counted():
    users = [UserFactory() for _ in range(3)]
    t1 = tournament(starts_at=JAN, external_id="A")
    t2 = tournament(starts_at=JAN + timedelta(days=1), external_id="B")
    e1, e2 = entries(t1, users), entries(t2, users)
    gone = play(t1, e1[0], e1[1])
    voided = play(t1, e1[2], e1[0], round="F")
    play(t2, e2[1], e2[2])
    gone_id = gone.pk
    gone.delete()
    record_events_for("tournaments.match", [gone_id])
    voided.state = Match.State.FORFEIT  # a walkover after all: no rating change
    voided.save()
    record(voided)
    settle()
    assert not RatingHistory.objects.filter(match_id__in=[gone_id, voided.pk]).exists()
    assert_close(stored("chess"), solo_fold("chess"))


def test_a_forfeit_changes_no_rating():
    a, b = UserFactory(), UserFactory()
    t = tournament(starts_at=JAN)
    ea, eb = entries(t, [a, b])
    m = Match.objects.create(
        tournament=t,
        round="F",
        participant1=ea,
        participant2=eb,
        winner=ea,
        loser=eb,
        state="forfeit",
        completed_at=JAN,
    )
    record(m)
    settle()
    assert not PlayerRating.objects.exists() and not RatingReplayMark.objects.exists()


def test_a_team_entry_rates_as_its_members_mean_and_each_member_gets_the_delta():
    a, b, c, solo = UserFactory(), UserFactory(), UserFactory(), UserFactory()
    warmup = tournament(starts_at=JAN, external_id="W")
    wa, wc = entries(warmup, [a, c])
    play(warmup, wa, wc)  # a 1516, c 1484
    team = TeamFactory()
    for u in (a, b):
        TeamMembership.objects.create(team=team, user=u, joined_at=JAN - timedelta(days=30))
    t = tournament(starts_at=JAN + timedelta(days=1), external_id="T")
    team_entry = Registration.objects.create(tournament=t, team=team, status="confirmed", checked_in=True)
    record(team_entry)
    (solo_entry,) = entries(t, [solo])
    play(t, solo_entry, team_entry, round="F")
    mean = (1516 + 1500) / 2
    delta = elo_delta(1500, mean)
    r = {p.profile_id: p.rating for p in PlayerRating.objects.all()}
    assert r[solo.pk] == pytest.approx(1500 + delta)
    assert r[a.pk] == pytest.approx(1516 - delta) and r[b.pk] == pytest.approx(1500 - delta)
    assert r[c.pk] == 1484


def test_a_player_on_both_teams_of_a_match_is_rated_by_neither_side_live_and_in_a_replay():
    # Members of both teams: the ledger counts the match as won and lost for them. They cannot gain from beating
    # themselves: each entry rates as its other members, and the shared player keeps their rating.
    both, b, c = UserFactory(), UserFactory(), UserFactory()
    red, blue = TeamFactory(), TeamFactory()
    for team, members in ((red, (both, b)), (blue, (both, c))):
        for u in members:
            TeamMembership.objects.create(team=team, user=u, joined_at=JAN - timedelta(days=30))
    t = tournament(starts_at=JAN, external_id="T")
    red_entry, blue_entry = (
        Registration.objects.create(tournament=t, team=team, status="confirmed", checked_in=True)
        for team in (red, blue)
    )
    record(red_entry)
    record(blue_entry)
    play(t, red_entry, blue_entry, round="F")
    # A team of the shared player alone against one holding them too: nobody left to win, the match rates nobody.
    lone = TeamFactory()
    TeamMembership.objects.create(team=lone, user=both, joined_at=JAN - timedelta(days=30))
    lone_entry = Registration.objects.create(tournament=t, team=lone, status="confirmed", checked_in=True)
    record(lone_entry)
    play(t, lone_entry, blue_entry, round="SF")
    settle()
    delta = elo_delta(1500, 1500)
    want = {b.pk: (1500 + delta, 1), c.pk: (1500 - delta, 1)}

    def ratings() -> dict[int, tuple[object, int]]:
        return {p.profile_id: (pytest.approx(p.rating), p.matches_rated) for p in PlayerRating.objects.all()}

    assert ratings() == want
    assert not RatingHistory.objects.filter(profile_id=both.pk).exists()
    call_command("recompute_ratings", "--game", "chess", stdout=StringIO())
    assert ratings() == want
    assert not check_ratings(sample=None).drift


def test_a_replay_runs_in_chunks_and_one_replayer_at_a_time(django_assert_max_num_queries):
    users = [UserFactory() for _ in range(6)]
    for day in range(12):
        t = tournament(starts_at=JAN + timedelta(days=12 - day), external_id=f"T{day:02}")  # recorded newest first
        e = entries(t, users)
        play(t, e[day % 6], e[(day + 3) % 6])
        play(t, e[(day + 1) % 6], e[(day + 2) % 6], round="F")
    assert RatingReplayMark.objects.exists()
    # a fixed number of statements per chunk, whatever the number of players: 24 matches in chunks of 5 (eleven per
    # chunk with the check that its players' profiles still exist; a span merge and a draft clear at each end)
    with django_assert_max_num_queries(5 * 11 + 16):
        result = run_replay("chess", chunk_size=5)
    assert result.ran and result.chunks == 5 and result.matches == 24
    assert_close(stored("chess"), solo_fold("chess"))


# --- command and reconciliation ------------------------------------------------------------------------------------


def test_recompute_ratings_dry_run_reports_drift_and_a_run_from_a_date_repairs_it():
    users = [UserFactory() for _ in range(4)]
    for day in range(4):
        t = tournament(starts_at=JAN + timedelta(days=day), external_id=f"T{day}")
        e = entries(t, users)
        play(t, e[day % 4], e[(day + 1) % 4])
    settle()
    victim = users[(3 + 1) % 4].pk  # the loser of the last match
    PlayerRating.objects.filter(profile_id=victim).update(rating=1000)
    out = StringIO()
    call_command("recompute_ratings", "--dry-run", stdout=out)
    assert "1 would change" in out.getvalue() and PlayerRating.objects.get(profile_id=victim).rating == 1000
    assert len(check_ratings(sample=None).drift) == 1
    call_command("recompute_ratings", "--game", "chess", "--from", "2024-01-04", stdout=out)
    assert_close(stored("chess"), solo_fold("chess"))
    assert not check_ratings(sample=None).drift
    with pytest.raises(CommandError, match="no tournaments of game"):
        call_command("recompute_ratings", "--game", "nope", stdout=out)


def test_a_replay_under_steady_live_traffic_ends_with_the_live_matches_folded():
    users = [UserFactory() for _ in range(6)]
    for day in range(6):
        t = tournament(starts_at=JAN + timedelta(days=6 - day), external_id=f"T{day}")  # newest first: marks
        e = entries(t, users)
        play(t, e[day % 6], e[(day + 1) % 6])
        play(t, e[(day + 2) % 6], e[(day + 3) % 6], round="F")
    live_cup = tournament(starts_at=JAN + timedelta(days=30), external_id="LIVE")
    live_entries = entries(live_cup, users)
    calls = []

    def live_match_after_each_chunk(_result) -> None:  # a recording arrives while the replay runs
        calls.append(1)
        if len(calls) <= 50:  # bounded: a replay that chases live traffic pass after pass fails here, not hangs
            n = len(calls)
            play(live_cup, live_entries[n % 6], live_entries[(n + 1) % 6], num=n)

    result = run_replay("chess", chunk_size=4, on_chunk=live_match_after_each_chunk)
    assert len(calls) == 3  # the first pass's chunks only: the live matches were folded at its end, under the lock
    assert result.matches == 12 + 3 and RatingGame.objects.get(game="chess").status == RatingGame.Status.IDLE
    assert_close(stored("chess"), solo_fold("chess"))


def test_a_long_partial_read_takes_the_one_statement_path_and_reads_the_same_matches(monkeypatch):
    # Past source.INDEXED_MAX matches after the position (a backfill's early mark), the outcomes are hash-joined in
    # one statement instead of read by index 5,000 at a time: the same matches, sides and order either way, with
    # compensations netted (a flipped final rates its new winner).
    from stats.ratings import source

    users = [UserFactory() for _ in range(4)]
    for day in range(4):
        t = tournament(starts_at=JAN + timedelta(days=day), external_id=f"P{day}")
        e = entries(t, users)
        play(t, e[day % 4], e[(day + 1) % 4])
        final = play(t, e[(day + 2) % 4], e[(day + 3) % 4], round="F")
    complete_match(final, Registration.objects.get(pk=final.loser_id))
    record(final)
    every = source.rated_after("chess", None)
    after = every[2].key
    indexed = source.rated_after("chess", after)
    monkeypatch.setattr(source, "INDEXED_MAX", 0)
    whole = source.rated_after("chess", after)
    assert whole == indexed == [m for m in every if m.key > after]
    assert len(whole) == len(every) - 3 > 0
    final.refresh_from_db()
    flipped = next(m for m in whole if m.key[4] == final.pk)
    assert flipped.winners == (Registration.objects.get(pk=final.winner_id).user_id,)
