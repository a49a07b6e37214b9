"""The projection's audit events, built here so each call site in stats/ is one line inside its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from audit.event_types import AuditEventType
from audit.services import AuditItem, actor_from_context, record_audit_event, record_audit_events

if TYPE_CHECKING:
    from stats.models import ReconciliationRun


class DriftedUser(Protocol):
    """stats.reconcile.DriftedUser, as far as its audit event needs it (that module imports this one)."""

    @property
    def user_id(self) -> int: ...
    @property
    def missing_row(self) -> bool: ...
    @property
    def fields(self) -> dict[str, tuple[object, object]]: ...


# A run's trigger -> the system actor named when no staff request is behind it.
_RUN_ACTORS = {
    "beat": "job:reconcile_stats",
    "command": "command:reconcile_user_stats",
    "admin": "task:reconcile_stats",
}


def audit_recomputed(user_ids: Sequence[int]) -> None:
    """stats_recomputed for each user the stale-stats job recomputed."""
    record_audit_events(
        actor=actor_from_context("job:recompute_stale"),
        event_type=AuditEventType.STATS_RECOMPUTED,
        items=[AuditItem(uid, ("stats.userprofilestats", uid), {"trigger": "stale"}) for uid in user_ids],
    )


def audit_drift_repaired(drifted: Sequence[DriftedUser]) -> None:
    """stats_drift_repaired for each repaired user, with each drifted counter's value before and after."""
    record_audit_events(
        actor=actor_from_context("job:reconcile_stats"),
        event_type=AuditEventType.STATS_DRIFT_REPAIRED,
        items=[
            AuditItem(
                d.user_id,
                ("stats.userprofilestats", d.user_id),
                {
                    "missing_row": d.missing_row,
                    "fields": {f: {"before": stats, "after": ledger} for f, (stats, ledger) in d.fields.items()},
                },
            )
            for d in drifted
        ],
    )


def audit_reconciliation_run(run: ReconciliationRun) -> None:
    """reconciliation_run when a run ends (succeeded or failed), with its outcome."""
    record_audit_event(
        actor=actor_from_context(_RUN_ACTORS.get(run.trigger, "job:reconcile_stats")),
        event_type=AuditEventType.RECONCILIATION_RUN,
        subject_user_id=run.scope_user_id,
        obj=run,
        changes={
            "status": run.status,
            "trigger": run.trigger,
            "fix": run.fix,
            "scope": run.scope,
            "users_checked": run.users_checked,
            "users_drifted": run.users_drifted,
            "users_fixed": run.users_fixed,
            "missing_events_total": run.missing_events_total,
        },
    )
