"""The nightly sources pass in lanes (stats.nightly_lanes): every chunk and block goes to exactly one lane, a child
process's share is recorded and counted like the caller's own, and a failed or orphaned lane fails loudly."""

from __future__ import annotations

import os
import re

import pytest
from django.test import override_settings

from activity.models import SourceChange, UserActivity
from esports.economy.models import DeltaCrownTransaction
from stats.models import ReconciliationRun
from stats.nightly_lanes import LabelWork, LaneFailed, LaneOutcome, LaneWork, deal, run_lane, run_lanes
from stats.reconcile import run_reconciliation
from stats.rolling_slice import IdSlice
from tests.factories import UserFactory
from tests.ledger_helpers import counters
from tests.test_nightly_reconcile import a_slice_missing, all_source_ids, next_night_is, settled

TX = "economy.deltacrowntransaction"


def test_chunks_and_blocks_are_dealt_round_robin_each_to_exactly_one_lane():
    changed, extra = set(range(1, 11)), {9, 10, 11, 12}
    blocks = [(k * 1024, (k + 1) * 1024) for k in range(0, 35, 7)]

    lanes = deal(IdSlice(0, 7), {TX: (changed, extra, blocks)}, lanes=3, fix=True, batch_size=4)

    chunks = [lane.labels[TX].chunks for lane in lanes]
    assert chunks == [[[1, 2, 3, 4]], [[5, 6, 7, 8]], [[9, 10, 11, 12]]]
    assert [[tuple(b) for b in lane.labels[TX].blocks] for lane in lanes] == [
        [blocks[0], blocks[3]],
        [blocks[1], blocks[4]],
        [blocks[2]],
    ]
    assert all(
        lane.labels[TX].changed == sorted(changed) and lane.labels[TX].dependents == [9, 10, 11, 12] for lane in lanes
    )
    assert LaneWork.from_json(lanes[1].to_json()) == lanes[1]


@pytest.mark.django_db(transaction=True)
@override_settings(RECONCILE_LANES=2)
def test_a_child_lane_records_its_share_of_the_changed_rows_and_the_run_counts_it(enqueued):
    wallets = [UserFactory().profile.wallet for _ in range(3)]
    settled()
    rows = DeltaCrownTransaction.objects.bulk_create(
        [DeltaCrownTransaction(wallet=wallets[i % 3], amount=10 + i, reason="x") for i in range(8)]
    )
    next_night_is(a_slice_missing(all_source_ids(), 64), 64)
    lines: list[str] = []

    run = run_reconciliation(fix=True, slice_count=64, source_batch=2, trigger="beat", progress=lines.append)

    assert run.status == ReconciliationRun.Status.SUCCEEDED
    assert run.missing_events == {TX: {"coins_earned": 8}} and run.rows_rederived[TX]["changed"] == 8
    child = [line for line in lines if "lane 2/2" in line and TX in line]
    assert child and re.search(r": 4 changed or dependent, 0 in the slice; 4 event\(s\) recorded", child[0]), child
    assert UserActivity.objects.filter(source_model=TX, source_id__in=[r.pk for r in rows]).count() == 8
    assert sum(counters(w.profile.user)["total_earned"] for w in wallets) == sum(10 + i for i in range(8))
    assert not SourceChange.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_child_lane_that_fails_fails_the_pass_with_its_error():
    fine = LaneWork(0, 2, 0, 7, fix=False, batch_size=10)
    broken = LaneWork(1, 2, 0, 7, fix=False, batch_size=10, labels={"nope.model": LabelWork(chunks=[[1]])})

    with pytest.raises(LaneFailed, match=r"(?s)lane 2/2 exited with 1: .*KeyError: 'nope\.model'"):
        run_lanes([fine, broken], lambda line: None)


@pytest.mark.django_db
def test_a_lane_whose_parent_has_gone_stops_before_its_next_chunk():
    work = LaneWork(1, 2, 0, 7, fix=True, batch_size=10, labels={TX: LabelWork(chunks=[[1]])})
    with pytest.raises(SystemExit, match="has gone"):
        run_lane(work, lambda line: None, parent=os.getppid() + 1)
    assert run_lane(LaneWork(1, 2, 0, 7, fix=True, batch_size=10), lambda line: None, parent=os.getppid()) == (
        LaneOutcome()
    )
