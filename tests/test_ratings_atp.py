"""After import_atp of a decade and a backfill of its matches, every sampled player's final rating and peak equal a
fold computed here straight from the CSV under the issue's rules (to 1e-6): the order key from tourney_date,
tourney_id, the round rank and match_num; walkovers and same-player rows do not count."""

from __future__ import annotations

import csv
import gzip
import random

import pytest
from django.contrib.auth import get_user_model

from activity import backfill
from esports.tournaments.atp_import import import_atp
from stats.ratings.check import check_ratings
from stats.ratings.models import PlayerRating, RatingGame
from tests.backfill_support import drain
from tests.ratings_support import RANKS, fold_from_scratch, settle
from tests.test_import_atp import MATCHES, atp_dir  # noqa: F401 (the fixture)

FIRST, LAST = 2010, 2019
SAMPLE = 300

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def csv_fold(path) -> dict[str, tuple[float, float, int]]:
    """player id -> (rating, peak, matches rated), from the CSV alone."""
    decided: list[tuple[tuple, list[str], list[str]]] = []
    seen: set[tuple[str, str]] = set()
    with gzip.open(path, "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            if not FIRST <= int(row["tourney_id"][:4]) <= LAST:
                continue
            key = (row["tourney_id"], row["match_num"])
            if row["winner_id"] == row["loser_id"] or key in seen:
                continue  # not imported
            seen.add(key)
            score = row["score"].strip().lower()
            if "w/o" in score or score == "walkover":
                continue  # a forfeit
            order = (row["tourney_date"], row["tourney_id"], RANKS.get(row["round"].strip(), 0), int(row["match_num"]))
            decided.append((order, [row["winner_id"]], [row["loser_id"]]))
    players = fold_from_scratch(decided)
    return {pid: (p.rating, p.peak, p.count) for pid, p in players.items()}


def test_ratings_of_a_decade_of_atp_history_equal_a_fold_of_the_csv(atp_dir):  # noqa: F811
    import_atp(atp_dir, from_year=FIRST, to_year=LAST)
    # Committed chunks (transaction=True): in one test transaction the recordings' advisory locks would pile up.
    run = drain(backfill.start_backfill(["tournaments.match"], batch_size=2000))
    assert run.status == run.Status.SUCCEEDED, run.last_error
    settle()  # the backfill's chunks sorted before the last rated match: they left replay marks
    assert RatingGame.objects.get(game="tennis").status == RatingGame.Status.IDLE

    want = csv_fold(atp_dir / MATCHES)
    user_of = dict(
        get_user_model().objects.filter(username__in=[f"atp{p}" for p in want]).values_list("username", "id")
    )
    got = {r.profile_id: r for r in PlayerRating.objects.filter(game="tennis")}
    assert len(got) == len(want)
    sample = random.Random(17).sample(sorted(want), SAMPLE)
    top = sorted(want, key=lambda p: -want[p][1])[:20]  # the highest peaks: the longest careers of compounding
    for pid in sorted(set(sample) | set(top)):
        rating, peak, count = want[pid]
        row = got[user_of[f"atp{pid}"]]
        assert abs(row.rating - rating) <= 1e-6 and abs(row.peak - peak) <= 1e-6 and row.matches_rated == count, pid
    assert not check_ratings(sample=SAMPLE).drift  # the reconciliation pass agrees
