"""Per-season stats on real data: after import_atp of a decade and a backfill, sampled players' per-season matches
won and lost and titles equal what the CSV says (computed here with the csv module, independently of the importer,
the derivation rules and the projection)."""

from __future__ import annotations

import csv
import gzip
import random
from collections import Counter, defaultdict

import pytest

from activity import backfill
from esports.tournaments.atp_import import import_atp
from stats.models import UserGameStats, UserSeasonStats
from tests.backfill_support import history_mode  # noqa: F401 - fixture
from tests.test_import_atp import ATP_DIR, MATCHES, atp_dir  # noqa: F401 - fixture

FIRST, LAST = 2014, 2023
SAMPLE = 40

# Committed, not one test transaction: a decade of seasons and backfill chunks as savepoints of one transaction
# would hold one lock per subtransaction id until its end (out of shared memory on a busy server).
pytestmark = pytest.mark.django_db(transaction=True)


def from_csv(path) -> dict[str, Counter]:
    """username -> Counter of (season, "won" | "lost" | "titles"), by the import's rules: self-matches and repeated
    (tourney_id, match_num) rows skipped, a walkover is no win or loss, a title is the one final of a tournament."""
    seen: set[tuple[str, str]] = set()
    finals: dict[str, list[dict]] = defaultdict(list)
    out: dict[str, Counter] = defaultdict(Counter)
    with gzip.open(path, "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            season = int(row["tourney_id"][:4])
            key = (row["tourney_id"], row["match_num"])
            if not FIRST <= season <= LAST or row["winner_id"] == row["loser_id"] or key in seen:
                continue
            seen.add(key)
            if row["round"] == "F":
                finals[row["tourney_id"]].append(row)
            score = row["score"].strip().lower()
            if "w/o" in score or score == "walkover":
                continue
            out[f"atp{row['winner_id']}"][(season, "won")] += 1
            out[f"atp{row['loser_id']}"][(season, "lost")] += 1
    for tourney_id, final in finals.items():
        if len(final) == 1:
            out[f"atp{final[0]['winner_id']}"][(int(tourney_id[:4]), "titles")] += 1
    return out


def test_per_season_rows_after_a_decade_of_atp_history_equal_the_csv(atp_dir, history_mode):  # noqa: F811
    import_atp(atp_dir, from_year=FIRST, to_year=LAST)
    run = backfill.drive_inline(backfill.start_backfill(None, batch_size=5000, enqueue=False).pk)
    assert run.status == "succeeded", run.last_error

    want = from_csv(atp_dir / MATCHES)
    titled = sorted(u for u, c in want.items() if any(k[1] == "titles" for k in c))
    rng = random.Random(FIRST)
    sample = set(rng.sample(titled, SAMPLE // 2)) | set(rng.sample(sorted(want), SAMPLE // 2))
    rows = UserSeasonStats.objects.filter(profile__user__username__in=sample, game="tennis")
    got: dict[str, Counter] = defaultdict(Counter)
    for username, season, won, lost, titles in rows.values_list(
        "profile__user__username", "season", "matches_won", "matches_lost", "tournaments_won"
    ):
        for name, n in (("won", won), ("lost", lost), ("titles", titles)):
            if n:
                got[username][(season, name)] = n
    assert {u: got[u] for u in sorted(sample)} == {u: +want[u] for u in sorted(sample)}
    assert sum(c[(s, "titles")] for c in got.values() for s in range(FIRST, LAST + 1)) > SAMPLE // 2

    # The per-game row of a player is the sum of their seasons.
    one = sorted(sample)[0]
    game = UserGameStats.objects.get(profile__user__username=one, game="tennis")
    assert game.matches_won == sum(n for (s, k), n in want[one].items() if k == "won")
