"""Migration 0008: each run's JSON lane states become BackfillLane rows, and back, with nothing lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from tests.backfill_support import MATCH, REGISTRATION

BEFORE = [("activity", "0007_poison_rows_and_sweep_resume")]
AFTER = [("activity", "0008_backfill_lane_rows")]


def migrate(targets: list[tuple[str, str]]):
    """Migrate the test database to `targets`; the historical models' registry at that point."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.fixture
def at_0007(transactional_db):
    apps = migrate(BEFORE)
    yield apps
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_the_migration_moves_json_lane_states_into_rows_and_back(at_0007):
    Run = at_0007.get_model("activity", "BackfillRun")
    started = timezone.now() - timedelta(minutes=10)
    beat = started + timedelta(minutes=3)
    one_lane = [{"source": MATCH, "cursor": 41, "seq": 3, "finished": False, "heartbeat": beat.isoformat()}]
    two_lanes = [
        {"source": MATCH, "cursor": 90, "seq": 5, "finished": True, "heartbeat": beat.isoformat()},
        {"source": REGISTRATION, "cursor": 12, "seq": 0, "finished": False, "heartbeat": None},
    ]
    running = Run.objects.create(
        sources=[REGISTRATION, MATCH],
        batch_size=5,
        lanes=1,
        status="running",
        rows_done=15,
        events_created=44,
        started_at=started,
        lanes_state=one_lane,
    )
    cancelled = Run.objects.create(
        sources=[REGISTRATION, MATCH],
        batch_size=5,
        lanes=2,
        status="cancelled",
        rows_done=30,
        events_created=70,
        started_at=started,
        finished_at=beat,
        lanes_state=two_lanes,
    )

    apps = migrate(AFTER)
    Lane = apps.get_model("activity", "BackfillLane")
    fields = (
        "run_id",
        "lane",
        "status",
        "source",
        "cursor",
        "chunks_done",
        "rows_done",
        "events_created",
        "updated_at",
        "finished_at",
    )
    rows = list(Lane.objects.order_by("run_id", "lane").values_list(*fields))
    assert rows == [
        (running.pk, 0, "running", MATCH, 41, 3, 15, 44, beat, None),  # one lane: the run's counts are the lane's
        (cancelled.pk, 0, "done", MATCH, 90, 5, 0, 0, beat, beat),
        (cancelled.pk, 1, "stopped", REGISTRATION, 12, 0, 0, 0, cancelled.created_at, beat),
    ]
    assert Lane.objects.get(run_id=running.pk).started_at == started
    assert "lanes_state" not in {f.name for f in apps.get_model("activity", "BackfillRun")._meta.get_fields()}

    old = migrate(BEFORE)
    back = dict(old.get_model("activity", "BackfillRun").objects.values_list("pk", "lanes_state"))
    assert back[running.pk] == one_lane
    assert back[cancelled.pk] == [two_lanes[0], {**two_lanes[1], "heartbeat": cancelled.created_at.isoformat()}]
