"""Leaderboards: order, deterministic tie-breaking, who is ranked, per-game boards, parameters and caching."""

from __future__ import annotations

import random

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activity.event_types import EventType as E
from activity.selectors.errors import InvalidQueryError
from stats import cache as stats_cache
from stats.models import UserProfileStats
from stats.selectors.leaderboards import Board, InvalidLeaderboardError, UnknownGameError, leaderboard
from tests.factories import UserFactory
from tests.read_side import BASE_TIME, event, known_game, minutes, play_match, record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]


def players(n: int) -> list:
    """n users in increasing id order."""
    return sorted((UserFactory() for _ in range(n)), key=lambda u: u.pk)


def set_stats(user, **counters) -> None:
    UserProfileStats.objects.update_or_create(profile_id=user.pk, defaults=counters)


def board(name, **kwargs) -> list[tuple[int, str]]:
    return [(e.user_id, e.value) for e in leaderboard(name, use_cache=False, **kwargs)]


def test_tournaments_won_ranks_by_titles_then_runner_up_finishes_then_user_id():
    a, b, c, d, e = players(5)
    # Written in an order unrelated to the expected ranking: the ranking must not depend on row order.
    set_stats(e, tournaments_won=1, tournaments_runner_up=0)
    set_stats(c, tournaments_won=2, tournaments_runner_up=1)
    set_stats(a, tournaments_won=1, tournaments_runner_up=3)
    set_stats(d, tournaments_won=2, tournaments_runner_up=1)
    set_stats(b, tournaments_won=3, tournaments_runner_up=0)
    assert board(Board.TOURNAMENTS_WON) == [(b.pk, "3"), (c.pk, "2"), (d.pk, "2"), (a.pk, "1"), (e.pk, "1")]
    entries = leaderboard(Board.TOURNAMENTS_WON, use_cache=False)
    assert [x.rank for x in entries] == [1, 2, 3, 4, 5]
    assert entries[0].username == b.username


def test_matches_won_ties_go_to_fewer_matches_played_then_lower_user_id():
    a, b, c, d = players(4)
    set_stats(d, matches_won=10, matches_played=12)
    set_stats(c, matches_won=10, matches_played=20)
    set_stats(b, matches_won=10, matches_played=12)
    set_stats(a, matches_won=11, matches_played=40)
    assert board(Board.MATCHES_WON) == [(a.pk, "11"), (b.pk, "10"), (d.pk, "10"), (c.pk, "10")]


def test_win_rate_needs_the_minimum_matches_and_breaks_equal_rates_by_matches_then_user_id():
    a, b, c, d, e, f = players(6)
    set_stats(a, matches_won=5, matches_played=10)  # 50.00 over 10
    set_stats(b, matches_won=10, matches_played=20)  # 50.00 over 20: same rate, more matches, ranks first
    set_stats(c, matches_won=7, matches_played=10)  # 70.00
    set_stats(d, matches_won=9, matches_played=9)  # 100% but below the default minimum of 10
    set_stats(e, matches_won=1, matches_played=3)  # 33.33 over 3
    set_stats(f, matches_won=10, matches_played=30)  # 33.33 over 30 (1/3 and 10/30 are the same rate)
    assert board(Board.WIN_RATE) == [(c.pk, "70.00"), (b.pk, "50.00"), (a.pk, "50.00"), (f.pk, "33.33")]
    assert board(Board.WIN_RATE, min_matches=3) == [
        (d.pk, "100.00"),
        (c.pk, "70.00"),
        (b.pk, "50.00"),
        (a.pk, "50.00"),
        (f.pk, "33.33"),
        (e.pk, "33.33"),
    ]


def test_total_earned_ties_go_to_the_lower_user_id():
    a, b, c = players(3)
    set_stats(c, total_earned=500)
    set_stats(b, total_earned=900)
    set_stats(a, total_earned=500)
    assert board(Board.TOTAL_EARNED) == [(b.pk, "900"), (a.pk, "500"), (c.pk, "500")]


def test_inactive_accounts_tombstones_and_zero_counts_are_not_ranked():
    ranked, deactivated, nothing_won = players(3)
    set_stats(ranked, tournaments_won=1)
    set_stats(deactivated, tournaments_won=5)
    set_stats(nothing_won, tournaments_won=0, tournaments_runner_up=4)
    get_user_model().objects.filter(pk=deactivated.pk).update(is_active=False)
    assert board(Board.TOURNAMENTS_WON) == [(ranked.pk, "1")]


def test_limit_cuts_the_board_after_the_tie_break():
    a, b, c = players(3)
    for user in (a, b, c):
        set_stats(user, total_earned=100)
    assert board(Board.TOTAL_EARNED, limit=2) == [(a.pk, "100"), (b.pk, "100")]


def test_a_per_game_board_counts_that_games_events_only_net_of_corrections():
    a, b, c = players(3)
    for _ in range(3):
        play_match(a, "won", game="chess")  # a: 3 chess wins, no valorant
    play_match(b, "won", game="valorant")
    play_match(b, "won", game="valorant")
    voided = play_match(c, "won", game="valorant")
    play_match(c, "won", game="valorant")
    play_match(c, "won", game="valorant")
    # c's first win is withdrawn (a dispute resolved the other way): c has 2 net wins in 3 matches, like b in 2.
    record(
        event(c, E.MATCH_WON_REVERSED, source_id=voided, meta={"game": "valorant", "reverses": "match_won"}),
        event(c, E.MATCH_LOST, source_id=voided, meta={"game": "valorant"}),
    )
    assert board(Board.MATCHES_WON, game="valorant") == [(b.pk, "2"), (c.pk, "2")]  # fewer matches first
    assert board(Board.MATCHES_WON, game="chess") == [(a.pk, "3")]
    assert board(Board.WIN_RATE, game="valorant", min_matches=2) == [(b.pk, "100.00"), (c.pk, "66.67")]
    assert board(Board.WIN_RATE, game="valorant") == []  # nobody has 10 valorant matches
    with pytest.raises(UnknownGameError):  # no tournament is played in it: a 404, not an empty board
        board(Board.MATCHES_WON, game="dota")


def test_a_per_game_titles_board_ranks_titles_then_runner_up():
    a, b = players(2)
    meta = {"tournament_id": 1, "tournament": "Cup", "game": known_game("chess")}
    record(
        event(a, E.TOURNAMENT_WON, meta=meta),
        event(b, E.TOURNAMENT_WON, meta=meta),
        event(b, E.TOURNAMENT_RUNNER_UP, meta=meta),
        event(a, E.TOURNAMENT_WON, meta={**meta, "game": "valorant"}),
    )
    assert board(Board.TOURNAMENTS_WON, game="chess") == [(b.pk, "1"), (a.pk, "1")]
    entry = leaderboard(Board.TOURNAMENTS_WON, game="chess", use_cache=False)[0]
    assert (entry.tournaments_runner_up, entry.total_earned) == (1, None)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "10"},
        {"min_matches": 0},
        {"min_matches": -5},
        {"game": "x" * 51},
        {"game": "<script>"},
    ],
)
def test_bad_parameters_are_rejected(kwargs):
    with pytest.raises(InvalidQueryError):
        leaderboard(Board.WIN_RATE, use_cache=False, **kwargs)


def test_unknown_boards_and_per_game_earnings_are_rejected():
    with pytest.raises(InvalidLeaderboardError, match="Unknown leaderboard"):
        leaderboard("most_friends")
    with pytest.raises(InvalidLeaderboardError, match="no per-game view"):
        leaderboard(Board.TOTAL_EARNED, game="chess")


def test_boards_are_cached_until_their_generation_is_dropped(django_assert_num_queries):
    a, b = players(2)
    set_stats(a, matches_won=3)
    assert [e.user_id for e in leaderboard(Board.MATCHES_WON)] == [a.pk]  # computed and cached
    with django_assert_num_queries(0):
        leaderboard(Board.MATCHES_WON)
    set_stats(b, matches_won=9)
    with django_assert_num_queries(0):
        assert [e.user_id for e in leaderboard(Board.MATCHES_WON)] == [a.pk]  # cached for up to a minute
    stats_cache.invalidate_leaderboards()
    assert [e.user_id for e in leaderboard(Board.MATCHES_WON)] == [b.pk, a.pk]


def test_every_board_is_one_round_trip_whatever_its_size():
    def selects(**kwargs) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert len(leaderboard(use_cache=False, **kwargs)) == len(ranked)
        # Its settings, statement and resets are one message (project/one_trip_reads.py).
        return len(captured.captured_queries)

    ranked = []
    for size in (3, 30):
        for user in players(size - len(ranked)):
            set_stats(user, tournaments_won=1, matches_won=10, matches_played=12, total_earned=5)
            play_match(user, "won", game="chess", at=BASE_TIME + minutes(user.pk))
            ranked.append(user)
        for name in Board:
            assert selects(board=name) == 1
        # A per-game board first checks the game on the tournaments' index (unknown games 404 without a ledger scan).
        assert selects(board=Board.MATCHES_WON, game="chess") == 2


def test_a_per_season_board_ranks_that_seasons_rows_only():
    a, b = players(2)
    play_match(a, "won", game="tennis", season=2019)
    play_match(a, "won", game="tennis", season=2019)
    play_match(b, "won", game="tennis", season=2019)
    play_match(b, "won", game="tennis", season=2020)
    assert board(Board.MATCHES_WON, game="tennis", season=2019) == [(a.pk, "2"), (b.pk, "1")]
    assert board(Board.MATCHES_WON, game="tennis", season=2020) == [(b.pk, "1")]
    assert board(Board.MATCHES_WON, game="tennis") == [(a.pk, "2"), (b.pk, "2")]
    assert board(Board.WIN_RATE, game="tennis", season=2019, min_matches=1) == [(a.pk, "100.00"), (b.pk, "100.00")]
    with pytest.raises(UnknownGameError):  # no tournament of that season: a 404, not an empty board
        board(Board.MATCHES_WON, game="tennis", season=2031)
    with pytest.raises(InvalidLeaderboardError, match="give the game"):
        leaderboard(Board.MATCHES_WON, season=2019)
    with pytest.raises(InvalidLeaderboardError, match="season must be"):
        leaderboard(Board.MATCHES_WON, game="tennis", season=-1)


def test_per_game_and_per_season_boards_read_the_scoped_rows_not_the_ledger():
    from stats.models import UserGameStats, UserSeasonStats

    a, b = players(2)
    play_match(a, "won", game="tennis", season=2019)
    play_match(b, "won", game="tennis", season=2019)
    # A row moved behind the ledger's back (reconciliation would repair it): the boards follow the rows.
    UserGameStats.objects.filter(profile_id=b.pk, game="tennis").update(matches_won=5, matches_played=5)
    UserSeasonStats.objects.filter(profile_id=a.pk, game="tennis", season=2019).update(tournaments_won=2)
    assert board(Board.MATCHES_WON, game="tennis") == [(b.pk, "5"), (a.pk, "1")]
    assert board(Board.TOURNAMENTS_WON, game="tennis", season=2019) == [(a.pk, "2")]


def test_the_season_board_over_the_api_and_the_page(client):
    a = players(1)[0]
    play_match(a, "won", game="tennis", season=2019)
    body = client.get("/api/leaderboards/matches_won/?game=tennis&season=2019").json()
    assert (body["season"], [r["user_id"] for r in body["results"]]) == (2019, [a.pk])
    assert client.get("/api/leaderboards/matches_won/?season=2019").status_code == 400
    page = client.get("/leaderboards/?board=matches_won&game=tennis&season=2019")
    assert page.status_code == 200 and b"season 2019" in page.content


def test_the_per_game_win_rate_board_equals_a_fresh_top_n_for_every_minimum_when_levels_hold_more_than_n():
    """The skyline statement reads at most 100 active players per match count (the levels index): with more than
    100 players on some counts, and deactivated players at the top of one, every min_matches still ranks exactly
    as a top 100 sorted here from every row."""
    from stats.models import UserGameStats
    from stats.selectors.leaderboards import MAX_LIMIT

    known_game("chess")
    rng = random.Random(11)
    users = players(260)
    counts = {u.pk: rng.choice([2, 2, 3, 3, 3, 7, 12]) for u in users}
    wins = {uid: rng.randint(0, p) for uid, p in counts.items()}
    inactive = [uid for uid in sorted(counts) if counts[uid] == 3][:8]
    for uid in inactive:  # perfect records nobody may see ranked
        wins[uid] = 3
    get_user_model().objects.filter(pk__in=inactive).update(is_active=False)
    UserGameStats.objects.bulk_create(
        UserGameStats(profile_id=uid, game="chess", matches_played=p, matches_won=wins[uid])
        for uid, p in counts.items()
    )
    for min_matches in (1, 2, 3, 4, 7, 8, 12, 13):
        expected = sorted(
            (uid for uid, p in counts.items() if p >= min_matches and uid not in inactive),
            key=lambda uid: (-(wins[uid] / counts[uid]), -counts[uid], uid),
        )[:MAX_LIMIT]
        got = leaderboard(Board.WIN_RATE, game="chess", min_matches=min_matches, use_cache=False)
        assert [e.user_id for e in got] == expected, min_matches


def test_the_skyline_walk_reads_only_players_some_minimum_ranks_and_stops_below_a_board_of_perfect_records():
    """Past a full board of perfect records nobody with fewer matches can rank (a rate above 1 is impossible), and
    at every count only the players with fewer than 100 above them are read: the statement returns exactly the
    skyline, where a per-count top 100 would return 100 of each count; every min_matches still ranks exactly."""
    from stats.models import UserGameStats
    from stats.selectors.leaderboards import MAX_LIMIT, _scoped, _win_rate_skyline, board_sql

    known_game("chess")
    rng = random.Random(5)
    users = players(420)
    counts, wins = {}, {}
    for i, u in enumerate(users):
        # 60 perfect records at 30 and 30 at 20 (90: not yet a full board), 20 near-perfect at 12, then 310 short
        # careers of 2-9 matches below them, with 10 more perfect records at 9.
        played = 30 if i < 60 else 20 if i < 90 else 12 if i < 110 else 9 if i < 120 else rng.randint(2, 9)
        counts[u.pk], wins[u.pk] = played, played if i < 90 or 110 <= i < 120 else rng.randint(0, played)
    wins[users[100].pk] = 12  # a perfect 12: the 91st perfect record
    UserGameStats.objects.bulk_create(
        UserGameStats(profile_id=uid, game="chess", matches_played=p, matches_won=wins[uid])
        for uid, p in counts.items()
    )
    with connection.cursor() as cursor:
        cursor.execute(board_sql(Board.WIN_RATE, per_game=True, skyline=True), {"game": "chess"})
        read = [(row[0], row[6], row[5]) for row in cursor.fetchall()]
    assert len(read) == len(_win_rate_skyline(read, MAX_LIMIT)), "the statement returned players no board ranks"
    assert max(p for _uid, _won, p in read) == 30 and len(read) < 300
    assert len(_scoped(Board.WIN_RATE, "chess", None)) == len(read)
    for min_matches in (1, 2, 5, 9, 10, 12, 13, 20, 21, 30):
        expected = sorted(
            (uid for uid, p in counts.items() if p >= min_matches),
            key=lambda uid: (-(wins[uid] / counts[uid]), -counts[uid], uid),
        )[:MAX_LIMIT]
        got = leaderboard(Board.WIN_RATE, game="chess", min_matches=min_matches, use_cache=False)
        assert [e.user_id for e in got] == expected, min_matches


def test_the_win_rate_skyline_walks_the_levels_index():
    from project.one_trip_reads import explain
    from stats.selectors.leaderboards import _board_read

    known_game("chess")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a handful of rows: the plan the index allows, not a scan
    # The plan the board runs with: its prepared statement's generic plan.
    read = _board_read(Board.WIN_RATE, per_game=True, per_season=False, skyline=True, timeout_ms=3000)
    plan = explain(read, {"game": "chess"})
    assert "game_stats_lb_wr_levels" in plan, plan
    assert "Seq Scan" not in plan, plan
    # The only window numbers one match count's rows read (a sort of at most 100, under the LIMIT), never the scope's.
    lines = plan.splitlines()
    windows = [i for i, line in enumerate(lines) if "WindowAgg" in line]
    assert all(any("Limit" in line for line in lines[i + 1 : i + 7]) for i in windows), plan
