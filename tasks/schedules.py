"""The periodic tasks, as data in django-celery-beat's tables (beat runs with its DatabaseScheduler).

`ensure_schedules` is the idempotent deploy step (`python manage.py setup_schedules`, in the Procfile's release
phase). It creates what is missing and keeps the code-owned fields of each entry (task, queue, description) in step
with this file. What an operator may tune in the admin - the schedule, enabled, arguments, expiry - is set when the
entry is created and left alone afterwards, unless `reset` asks to restore the defaults. A run with nothing to do
writes nothing (not even beat's change marker), so a second run changes no row.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field

from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from dispatch.names import Queue, TaskName


@dataclass(frozen=True)
class Every:
    minutes: int


@dataclass(frozen=True)
class Cron:
    minute: str
    hour: str
    day_of_week: str = "*"
    day_of_month: str = "*"
    month_of_year: str = "*"
    timezone: str = "UTC"


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    when: Every | Cron
    queue: str
    description: str
    kwargs: dict = field(default_factory=dict)
    # A run not started within this many seconds is dropped: the next one is on its way (a backlog of sweeps after
    # a worker outage would only repeat the same work).
    expire_seconds: int | None = None


SCHEDULES: tuple[Schedule, ...] = (
    Schedule(
        "activity: catch-up sweep",
        TaskName.CATCH_UP,
        Every(1),
        Queue.EVENTS,
        "Re-derive recently changed source rows and record the events whose live task was lost.",
        expire_seconds=55,
    ),
    Schedule(
        "activity: resume stalled backfills",
        TaskName.RESUME_STALE_BACKFILLS,
        Every(1),
        Queue.MAINTENANCE,
        "Re-enqueue backfill runs whose worker died, from their last committed cursor.",
        expire_seconds=55,
    ),
    Schedule(
        "activity: retry poison rows",
        TaskName.RETRY_POISON_ROWS,
        Every(1),
        Queue.MAINTENANCE,
        "Record again the source rows set aside as poison rows whose backoff has expired (see Poison rows).",
        expire_seconds=55,
    ),
    Schedule(
        "stats: recompute stale users",
        TaskName.RECOMPUTE_STALE,
        Every(5),
        Queue.MAINTENANCE,
        "Recompute the stats of users marked stale (backfill, erasure, admin) and refresh cached leaderboards.",
        expire_seconds=290,
    ),
    Schedule(
        "stats: nightly reconciliation",
        TaskName.RECONCILE_STATS,
        Cron(minute="0", hour="3"),
        Queue.MAINTENANCE,
        "03:00 UTC: record events missing from the ledger, compare every user's stats with the "
        "ledger and repair the drift (see ReconciliationRun).",
        kwargs={"fix": True, "trigger": "beat"},
        expire_seconds=6 * 3600,
    ),
    Schedule(
        "audit: nightly chain verification",
        TaskName.VERIFY_AUDIT_CHAIN,
        Cron(minute="30", hour="2"),
        Queue.MAINTENANCE,
        "02:30 UTC: re-compute the audit trail's SHA-256 chain (audit_verify_integrity); the audit_verify_* "
        "metrics and the AuditChainBroken alert report the outcome.",
        expire_seconds=6 * 3600,
    ),
)

CODE_OWNED = ("task", "queue", "exchange", "routing_key", "description")
OPERATOR_OWNED = ("interval_id", "crontab_id", "enabled", "args", "kwargs", "expire_seconds")


class UnknownTaskError(LookupError):
    pass


@dataclass(frozen=True)
class Outcome:
    name: str
    action: str  # created, updated, unchanged
    changed: tuple[str, ...]
    task: str
    queue: str


def ensure_schedules(*, reset: bool = False, schedules: tuple[Schedule, ...] | None = None) -> list[Outcome]:
    """Create or update the periodic tasks (default: SCHEDULES); returns what happened to each. All or nothing."""
    schedules = SCHEDULES if schedules is None else schedules
    for schedule in schedules:
        _check_task_exists(schedule.task)
    outcomes = []
    with transaction.atomic():
        for schedule in schedules:
            outcomes.append(_ensure(schedule, reset))
    return outcomes


def _ensure(schedule: Schedule, reset: bool) -> Outcome:
    interval = crontab = None
    if isinstance(schedule.when, Every):
        interval = _get_or_create(IntervalSchedule, every=schedule.when.minutes, period=IntervalSchedule.MINUTES)
    else:
        when = schedule.when
        crontab = _get_or_create(
            CrontabSchedule,
            minute=when.minute,
            hour=when.hour,
            day_of_week=when.day_of_week,
            day_of_month=when.day_of_month,
            month_of_year=when.month_of_year,
            timezone=when.timezone,
        )
    wanted_code = {
        "task": schedule.task,
        "queue": schedule.queue,
        "exchange": None,
        "routing_key": None,
        "description": schedule.description,
    }
    wanted_operator = {
        "interval_id": interval.pk if interval else None,
        "crontab_id": crontab.pk if crontab else None,
        "enabled": True,
        "args": "[]",
        "kwargs": json.dumps(schedule.kwargs, sort_keys=True),
        "expire_seconds": schedule.expire_seconds,
    }
    task = PeriodicTask.objects.select_for_update().filter(name=schedule.name).first()
    if task is None:
        PeriodicTask.objects.create(name=schedule.name, **wanted_code, **wanted_operator)
        return Outcome(schedule.name, "created", (), schedule.task, schedule.queue)
    wanted = {**wanted_code, **(wanted_operator if reset else {})}
    changed = tuple(name for name, value in wanted.items() if _stored(task, name) != value)
    if not changed:
        return Outcome(schedule.name, "unchanged", (), schedule.task, schedule.queue)
    for name in changed:
        setattr(task, name, wanted[name])
    task.save()  # PeriodicTask.save also bumps beat's change marker, so a running beat reloads the schedule
    return Outcome(schedule.name, "updated", changed, schedule.task, schedule.queue)


def _stored(task: PeriodicTask, name: str) -> object:
    value = getattr(task, name)
    if name in ("args", "kwargs"):
        try:
            return json.dumps(json.loads(value or ("[]" if name == "args" else "{}")), sort_keys=True)
        except ValueError:
            return value
    return value


def _get_or_create(model, **fields):
    # get_or_create would raise on duplicates an operator may have made in the admin; any one of them will do.
    found = model.objects.filter(**fields).order_by("pk").first()
    return found or model.objects.create(**fields)


def _check_task_exists(name: str) -> None:
    """Refuse to schedule a task name no module defines (a typo would be a silent no-op in beat)."""
    module_name, _, attr = name.rpartition(".")
    try:
        task = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        raise UnknownTaskError(f"no Celery task named {name!r} (module {module_name!r} has no {attr!r})") from None
    if getattr(task, "name", None) != name:
        raise UnknownTaskError(f"{module_name}.{attr} is not the Celery task {name!r}")
