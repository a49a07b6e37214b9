"""Thin tasks of the `maintenance` queue for the projection: reconciliation and the stale-stats recompute job."""

from __future__ import annotations

import logging

from celery import shared_task

from dispatch.names import TaskName
from stats.ratings.pending import replay_pending_games
from stats.reconcile import ReconciliationAlreadyRunning, ReconciliationError, run_reconciliation
from stats.stale import recompute_stale_stats

logger = logging.getLogger(__name__)


@shared_task(
    name=TaskName.RECONCILE_STATS,
    # Both limits stay below the broker's visibility timeout (3600 s): a run still going when the message becomes
    # visible again would be delivered to a second worker.
    soft_time_limit=3240,
    time_limit=3300,
    acks_late=True,
    ignore_result=True,
)
def reconcile_stats(
    fix: bool = True, user_id: int | None = None, skip_sources: bool = False, trigger: str = "beat"
) -> dict:
    """Nightly (beat, repair on) or on demand (admin): both passes; the run is stored as a ReconciliationRun."""
    try:
        run = run_reconciliation(
            fix=bool(fix),
            user_id=None if user_id is None else int(user_id),
            skip_sources=bool(skip_sources),
            trigger=str(trigger),
        )
    except ReconciliationAlreadyRunning as exc:
        logger.warning("reconcile_stats skipped: %s", exc)
        return {"skipped": str(exc)}
    except (ReconciliationError, TypeError, ValueError) as exc:
        # Retrying cannot fix bad arguments: log and drop.
        logger.error("dropped reconcile_stats(fix=%r, user_id=%r): %s", fix, user_id, exc)
        return {"error": str(exc)}
    return {
        "run": run.pk,
        "users_checked": run.users_checked,
        "users_drifted": run.users_drifted,
        "users_fixed": run.users_fixed,
        "missing_events": run.missing_events_total,
    }


@shared_task(name=TaskName.RECOMPUTE_STALE, acks_late=True, ignore_result=True)
def recompute_stale() -> dict:
    """Every few minutes (beat): recompute the users marked stale and refresh the derived figures."""
    report = recompute_stale_stats()
    return {
        "users_recomputed": report.users_recomputed,
        "marks_cleared": report.marks_cleared,
        "duration_seconds": report.duration_seconds,
    }


@shared_task(name=TaskName.REPLAY_RATINGS, acks_late=True, ignore_result=True)
def replay_ratings() -> list[dict]:
    """Every minute (beat), and after a recording that marked a game: carry out the pending rating replays."""
    return [{"game": r.game, "ran": r.ran, "matches": r.matches, "seconds": r.seconds} for r in replay_pending_games()]
