"""Getting a lane's next chunk to a worker: published through dispatch, after the chunk's commit.

The lanes' rows, not the broker, are what a run depends on: a publish that fails is logged and noted on the run and
the lane, and resume_stale_backfills (beat) re-enqueues the lane from its committed cursor once it looks stalled.
"""

from __future__ import annotations

import logging
from functools import partial

from django.db import transaction

from activity.backfill import state
from dispatch.names import TaskName
from dispatch.publish import PublishFailed, publish

logger = logging.getLogger(__name__)


def schedule_chunk(run_id: int, lane: int, seq: int) -> bool:
    """Publish chunk `seq` of the lane now; False (logged, noted on the run) when the broker did not take it."""
    try:
        publish(TaskName.RUN_BACKFILL_CHUNK, args=(run_id, lane, seq))
    except PublishFailed as exc:
        logger.warning(
            "backfill #%s lane %s: enqueue of chunk %s failed (%s); resume_stale_backfills re-enqueues it",
            run_id,
            lane,
            seq,
            exc,
        )
        state.note_error(
            run_id, lane, f"enqueue of lane {lane} chunk {seq} failed ({exc}); resume_stale_backfills re-enqueues it"
        )
        return False
    return True


def schedule_on_commit(run_id: int, lane: int, seq: int) -> None:
    """Publish once the current transaction commits: a worker must never see a chunk its lane row does not allow
    yet, and a rolled-back chunk enqueues nothing."""
    transaction.on_commit(partial(schedule_chunk, run_id, lane, seq))
