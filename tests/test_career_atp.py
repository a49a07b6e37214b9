"""Career pages on a decade of real ATP history (issue 16): match rows, tournament rows, head-to-head, seasons and
search, each compared with a count made here straight from the CSV."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activity.event_types import EventType as E
from activity.models import UserActivity
from activity.privacy import ViewerClass, ViewerRelation
from activity.selectors.head_to_head import head_to_head
from activity.selectors.match_history import match_history, played_rows
from activity.selectors.tournament_rows import tournament_rows
from esports.profiles.search import search_players
from esports.tournaments.models import Tournament
from stats.scoped_models import UserSeasonStats
from stats.selectors.seasons import season_table
from tests.career_data import KNOCKOUT_PLACEMENT, RANK, atp_rows, csv_placements, is_walkover, recorded_atp_history

DECADE = (2015, 2024)
pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(scope="module")
def rows(django_db_setup, django_db_blocker):
    with recorded_atp_history(django_db_blocker, *DECADE):
        yield atp_rows(*DECADE)


@pytest.fixture(autouse=True)
def _own_cache(settings):
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": f"career-{uuid.uuid4().hex[:8]}"}}


def user_id(atp_id: str) -> int:
    return get_user_model().objects.get(username=f"atp{atp_id}").pk


def anonymous(uid: int) -> ViewerRelation:
    return ViewerRelation(ViewerClass.ANONYMOUS, uid)


def all_pages(fetch) -> list:
    items, cursor = [], None
    while True:
        page = fetch(cursor)
        items += page.items
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def champion_of_own_latest_tournament(rows: list[dict]) -> tuple[str, dict]:
    """A player whose latest tournament (by date) in the CSV is one they won, and that final's row: the busiest one."""
    latest: dict[str, str] = {}
    for r in rows:
        for side in ("winner_id", "loser_id"):
            latest[r[side]] = max(latest.get(r[side], ""), r["tourney_date"] + r["tourney_id"])
    finals = [r for r in rows if r["round"] == "F" and latest[r["winner_id"]] == r["tourney_date"] + r["tourney_id"]]
    played = Counter(r[side] for r in rows for side in ("winner_id", "loser_id"))
    final = max(finals, key=lambda r: (played[r["winner_id"]], r["tourney_id"]))
    return final["winner_id"], final


def test_a_champions_latest_match_is_the_final_of_their_latest_tournament(rows):
    champion, final = champion_of_own_latest_tournament(rows)
    latest = match_history(anonymous(user_id(champion)), limit=3).items[0]
    assert (latest.metadata["round"], latest.outcome.value) == ("F", "won")
    assert Tournament.objects.get(pk=latest.metadata["tournament_id"]).external_id == final["tourney_id"]
    assert latest.score == final["score"] and latest.opponent.username == f"atp{final['loser_id']}"


def test_opponents_scores_and_order_equal_the_csv_rows(rows):
    champion, _final = champion_of_own_latest_tournament(rows)
    uid = user_id(champion)
    items = all_pages(lambda c: match_history(anonymous(uid), cursor=c, limit=50))
    external = dict(Tournament.objects.values_list("id", "external_id"))
    got = Counter(
        (external[e.metadata["tournament_id"]], e.metadata["round"], e.opponent.username, e.score, e.outcome.value)
        for e in items
    )
    expected = Counter()
    for r in rows:
        if champion not in (r["winner_id"], r["loser_id"]):
            continue
        won = r["winner_id"] == champion
        outcome = "forfeit" if is_walkover(r["score"]) else ("won" if won else "lost")
        opponent = r["loser_id"] if won else r["winner_id"]
        expected[(r["tourney_id"], r["round"], f"atp{opponent}", r["score"].strip(), outcome)] += 1
    assert got == expected
    # Newest first by date, then by round: within a tournament the final comes before the semi-final.
    keys = [(e.timestamp, e.round_rank) for e in items]
    assert keys == sorted(keys, reverse=True)


def expected_finishes(rows: list[dict], player: str) -> dict[str, tuple[str, int, int]]:
    """tourney_id -> (finish, wins, losses) for one player, from the CSV: W / F for the final, else the furthest
    round played; W-L over completed matches (walkovers count for neither)."""
    finals = defaultdict(list)
    for r in rows:
        if r["round"] == "F":
            finals[r["tourney_id"]].append(r)
    out: dict[str, list] = {}
    for r in rows:
        if player not in (r["winner_id"], r["loser_id"]):
            continue
        entry = out.setdefault(r["tourney_id"], [0, 0, 0])  # furthest rank, wins, losses
        entry[0] = max(entry[0], RANK.get(r["round"], 0))
        if not is_walkover(r["score"]):
            entry[1 if r["winner_id"] == player else 2] += 1
    result = {}
    for tid, (rank, wins, losses) in out.items():
        final = finals[tid][0] if len(finals[tid]) == 1 else None
        if final is not None and final["winner_id"] == player:
            finish = "W"
        elif final is not None and final["loser_id"] == player:
            finish = "F"
        else:
            finish = {v: k for k, v in RANK.items()}.get(rank, "-")
        result[tid] = (finish, wins, losses)
    return result


def test_tournament_history_has_one_row_per_tournament_with_the_right_finish(rows):
    champion, _final = champion_of_own_latest_tournament(rows)
    uid = user_id(champion)
    got_rows = all_pages(lambda c: tournament_rows(anonymous(uid), cursor=c, limit=50))
    external = dict(Tournament.objects.values_list("id", "external_id"))
    got = {external[r.tournament_id]: (r.finish, r.wins, r.losses) for r in got_rows}
    assert len(got) == len(got_rows), "one row per tournament"
    assert got == expected_finishes(rows, champion)
    in_2023 = tournament_rows(anonymous(uid), season=2023, limit=50).items
    assert in_2023 and {r.season for r in in_2023} == {2023}
    assert {external[r.tournament_id] for r in in_2023} == {t for t in got if t.startswith("2023")}


def busiest_pair(rows: list[dict]) -> tuple[str, str]:
    pairs = Counter(tuple(sorted((r["winner_id"], r["loser_id"]))) for r in rows)
    return pairs.most_common(1)[0][0]


def test_head_to_head_totals_equal_a_count_made_from_the_csv(rows):
    a, b = busiest_pair(rows)
    meetings = [r for r in rows if {r["winner_id"], r["loser_id"]} == {a, b}]
    expected = {
        "a_wins": sum(r["winner_id"] == a and not is_walkover(r["score"]) for r in meetings),
        "b_wins": sum(r["winner_id"] == b and not is_walkover(r["score"]) for r in meetings),
        "walkovers": sum(is_walkover(r["score"]) for r in meetings),
    }
    a_id, b_id = user_id(a), user_id(b)
    with CaptureQueriesContext(connection) as queries:
        result = head_to_head(anonymous(a_id), anonymous(b_id), limit=50)
    t = result.total
    assert {"a_wins": t.a_wins, "b_wins": t.b_wins, "walkovers": t.walkovers} == expected
    assert result.by_game["tennis"].a_wins == t.a_wins
    listed = all_pages(lambda c: head_to_head(anonymous(a_id), anonymous(b_id), cursor=c, limit=7).matches)
    assert len(listed) == len(meetings)
    assert {e.opponent.username for e in listed} == {f"atp{b}"}
    assert len(queries) <= 3  # totals, the page, the page's sides: whatever the number of meetings


def test_the_season_table_equals_the_per_season_projection_and_the_csv(rows):
    champion, _final = champion_of_own_latest_tournament(rows)
    expected: dict[int, Counter] = defaultdict(Counter)
    finals = defaultdict(list)
    for r in rows:
        if r["round"] == "F":
            finals[r["tourney_id"]].append(r)
    for r in rows:
        season = int(r["tourney_id"][:4])
        if champion in (r["winner_id"], r["loser_id"]) and not is_walkover(r["score"]):
            expected[season]["wins" if r["winner_id"] == champion else "losses"] += 1
    for tid, fs in finals.items():
        if len(fs) == 1 and fs[0]["winner_id"] == champion:
            expected[int(tid[:4])]["titles"] += 1
    table = season_table(user_id(champion))
    got = {s.season: Counter({"wins": s.wins, "losses": s.losses, "titles": s.titles}) for s in table}
    assert {k: +v for k, v in got.items()} == {k: +v for k, v in expected.items()}
    projection = {
        (r.season, r.matches_played, r.matches_won, r.matches_lost, r.tournaments_won, r.tournaments_runner_up)
        for r in UserSeasonStats.objects.filter(profile_id=user_id(champion), game="tennis")
        if r.matches_played or r.tournaments_won or r.tournaments_runner_up
    }
    assert {(s.season, s.played, s.wins, s.losses, s.titles, s.runner_up) for s in table} == projection


def ledger_placements(tournament_id: int) -> dict[int, int]:
    """user id -> placement the ledger holds for the tournament (net of compensations)."""
    net: Counter = Counter()
    for user, event_type, meta in UserActivity.objects.filter(
        event_type__in=(E.TOURNAMENT_PLACED, E.TOURNAMENT_PLACED_REVERSED), metadata__tournament_id=tournament_id
    ).values_list("user_id", "event_type", "metadata"):
        net[(user, meta["placement"])] += 1 if event_type == E.TOURNAMENT_PLACED else -1
    return {user: place for (user, place), n in net.items() if n > 0}


def test_every_finish_of_a_real_event_is_placed_as_the_csv_says_and_averaged_per_season(rows):
    by_event: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_event[r["tourney_id"]].append(r)
    # A draw of 128 with a walkover lost in a placing round: every kind of finish in one real event.
    event = next(
        tid
        for tid, event_rows in sorted(by_event.items())
        if any(r["round"] == "R128" for r in event_rows)
        and any(is_walkover(r["score"]) and r["round"] in KNOCKOUT_PLACEMENT for r in event_rows)
    )
    expected = csv_placements(by_event[event])
    assert sorted(set(expected.values())) == [1, 2, 3, 4, 5, 9, 17, 33, 65]
    tournament = Tournament.objects.get(external_id=event)
    users = dict(get_user_model().objects.filter(username__startswith="atp").values_list("pk", "username"))
    got = {users[u].removeprefix("atp"): p for u, p in ledger_placements(tournament.id).items()}
    assert got == expected

    champion, _final = champion_of_own_latest_tournament(rows)
    per_season: dict[int, list[int]] = defaultdict(list)
    for tid, event_rows in by_event.items():
        place = csv_placements(event_rows).get(champion)
        if place is not None and place <= 10:
            per_season[int(tid[:4])].append(place)
    table = {s.season: s.average_placement for s in season_table(user_id(champion))}
    means = {season: Decimal(sum(p)) / len(p) for season, p in per_season.items()}
    assert {season: avg for season, avg in table.items() if avg is not None} == {
        season: mean.quantize(Decimal("0.01"), ROUND_HALF_UP) for season, mean in means.items()
    }


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("federer", "Roger Federer"),
        ("roger fed", "Roger Federer"),
        ("djoko", "Novak Djokovic"),
        ("federrer", "Roger Federer"),  # misspelled
        ("medevdev", "Daniil Medvedev"),  # misspelled
        ("wavrinka", "Stan Wawrinka"),  # misspelled
    ],
)
def test_search_finds_players_by_partial_and_misspelled_names(rows, query, name):
    page = search_players(query, limit=5)
    assert page.results and page.results[0].name == name, [h.name for h in page.results]


def test_search_pages_do_not_skip_or_repeat(rows):
    first = search_players("an", limit=10)
    second = search_players("an", limit=10, cursor=first.next_cursor)
    assert first.next_cursor and second.previous_cursor
    assert not {h.user_id for h in first.results} & {h.user_id for h in second.results}
    back = search_players("an", limit=10, cursor=second.previous_cursor)
    assert [h.user_id for h in back.results] == [h.user_id for h in first.results]


def test_a_match_page_is_an_index_range_scan_that_stops_early(rows):
    champion, _final = champion_of_own_latest_tournament(rows)
    qs = played_rows(anonymous(user_id(champion))).order_by("-timestamp", "-round_rank", "-id")[:11]
    plan = qs.explain()
    assert "activity_match_round_order_idx" in plan and "Sort" not in plan.split("SubPlan")[0], plan
