"""The catch-up sweep after a bulk import or a backfill: no "live task lost" alarm for rows a backfill owns, no rescan
of history already backfilled, and a bounded slice of a big backlog per run, continued where the last run stopped."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from activity import catchup
from activity.backfill import start_backfill
from activity.models import SweepWatermark
from esports.tournaments.models import Match
from tests.backfill_support import MATCH, RESULT, drain, ledger_keys, make_history
from tests.test_catchup import findings

# Source rows written in these tests are history (the receivers enqueue nothing), and the sweep takes rows however
# young: no live task will record them.
pytestmark = pytest.mark.usefixtures("history_mode", "no_grace")


def imported(matches: int, minutes_ago: float) -> list[Match]:
    """Matches a bulk import wrote `minutes_ago` (no live task: the receivers are muted by history_mode)."""
    history = make_history(players=6, matches=matches)
    Match.objects.filter(pk__in=[m.pk for m in history.matches]).update(
        updated_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return history.matches


@pytest.mark.django_db
def test_a_finished_backfill_moves_the_watermarks_of_its_sources_to_its_start():
    an_hour_ago = timezone.now() - timedelta(hours=1)
    SweepWatermark.objects.create(source=MATCH, watermark=an_hour_ago)
    imported(matches=12, minutes_ago=10)

    run = drain(start_backfill())

    marks = dict(SweepWatermark.objects.values_list("source", "watermark"))
    assert set(marks) == set(run.sources) and set(marks.values()) == {run.created_at}
    before = findings()
    report = catchup.sweep()
    # Before: the sweep rescanned the 12 imported matches (and, live, counted them as lost had it run first).
    assert report.sources[MATCH].scanned == 0 and report.found == 0 and findings() == before


@pytest.mark.django_db
def test_a_backfill_never_moves_a_watermark_backwards_and_a_dry_run_moves_none():
    imported(matches=3, minutes_ago=10)
    ahead = timezone.now() + timedelta(minutes=5)
    SweepWatermark.objects.create(source=MATCH, watermark=ahead)

    drain(start_backfill(dry_run=True))
    assert list(SweepWatermark.objects.values_list("source", flat=True)) == [MATCH]

    drain(start_backfill([MATCH]))
    assert SweepWatermark.objects.get(source=MATCH).watermark == ahead


@pytest.mark.django_db
def test_what_the_sweep_records_for_rows_a_running_backfill_covers_is_not_counted_as_lost():
    imported(matches=8, minutes_ago=1)
    start_backfill(enqueue=False)  # created, not yet executed: every imported row is still ahead of it
    before = findings()

    report = catchup.sweep()

    assert report.sources[MATCH].found == 0
    # A match's recording re-derives its tournament's result in the same append (placements follow the matches):
    # those events are the backfill's too.
    assert report.sources[MATCH].owned_by_backfill == sum(ledger_keys([MATCH, RESULT]).values()) > 0
    assert findings() == before
    imported(matches=1, minutes_ago=0.5)  # beyond the run's highest key: this one's live task really was lost
    results_before = sum(ledger_keys([RESULT]).values())
    found = catchup.sweep().sources[MATCH].found
    # The match's 4 events, and what its re-derived tournament result inserted with them: counted with the match that
    # caused them (the result rows' own backfill ownership is not looked at for dependents).
    assert found == 4 + sum(ledger_keys([RESULT]).values()) - results_before


@pytest.mark.django_db
def test_the_sweep_takes_a_bounded_slice_per_run_and_continues_where_it_stopped(settings):
    settings.ACTIVITY_SWEEP_BATCH_SIZE, settings.ACTIVITY_SWEEP_MAX_ROWS_PER_RUN = 2, 5
    stamp = timezone.now() - timedelta(seconds=30)
    SweepWatermark.objects.create(source=MATCH, watermark=stamp - timedelta(seconds=1))
    matches = imported(matches=13, minutes_ago=0)
    # One change time for all of them, inside the overlap margin: restarting the window each run would never get past.
    Match.objects.filter(pk__in=[m.pk for m in matches]).update(updated_at=stamp)

    scanned = []
    for _ in range(3):
        report = catchup.sweep()
        scanned.append(report.sources[MATCH].scanned)
        mark = SweepWatermark.objects.get(source=MATCH)
        if len(scanned) < 3:
            assert (mark.resume_changed_at, mark.watermark) == (stamp, stamp)  # stopped mid-window, cursor kept

    assert scanned == [6, 6, 1]  # whole pages, up to the bound; the third finishes the window
    assert mark.resume_changed_at is None and mark.resume_id is None and mark.watermark > stamp
    assert Counter(k[3] for k in ledger_keys([MATCH])) == {"match_played": 26, "match_won": 11, "match_lost": 11}
    assert max(ledger_keys().values()) == 1
