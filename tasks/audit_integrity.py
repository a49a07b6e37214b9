"""Thin task of the `maintenance` queue: the nightly verification of the audit trail's hash chain."""

from __future__ import annotations

import logging

from celery import shared_task

from audit.verify import run_verification
from dispatch.names import TaskName

logger = logging.getLogger(__name__)


@shared_task(
    name=TaskName.VERIFY_AUDIT_CHAIN, acks_late=True, ignore_result=True, soft_time_limit=3240, time_limit=3300
)
def verify_audit_chain() -> dict:
    """Nightly (beat): re-compute the whole chain; the outcome is in the audit_verify_* metrics and the log."""
    report = run_verification()
    if report.problem is not None:
        logger.error("audit chain broken at row %s: %s", report.problem.row_id, report.problem.message)
    return {"ok": report.ok, "rows_checked": report.rows_checked, "duration_seconds": report.duration_seconds}
