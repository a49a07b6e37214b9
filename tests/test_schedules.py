"""Schedules as data: setup_schedules creates exactly the expected periodic tasks, a second run changes no row, an
operator's edits in the admin survive a deploy, and beat's database scheduler reads the entries as intended."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.forms.models import model_to_dict
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks

from tasks.schedules import Every, Schedule, UnknownTaskError, ensure_schedules

EXPECTED = {
    # name: (task, queue, schedule, kwargs)
    "activity: catch-up sweep": ("tasks.sweeps.catch_up", "events", "every 1 minutes", {}),
    "activity: resume stalled backfills": (
        "tasks.maintenance.resume_stale_backfills",
        "maintenance",
        "every 1 minutes",
        {},
    ),
    "activity: retry poison rows": ("tasks.maintenance.retry_poison_rows", "maintenance", "every 1 minutes", {}),
    "stats: recompute stale users": ("tasks.reconciliation.recompute_stale", "maintenance", "every 5 minutes", {}),
    "stats: nightly reconciliation": (
        "tasks.reconciliation.reconcile_stats",
        "maintenance",
        "cron 0 3 * * * UTC",
        {"fix": True, "trigger": "beat"},
    ),
    "audit: nightly chain verification": (
        "tasks.audit_integrity.verify_audit_chain",
        "maintenance",
        "cron 30 2 * * * UTC",
        {},
    ),
}


def describe(task: PeriodicTask) -> tuple:
    if task.interval_id:
        when = f"every {task.interval.every} {task.interval.period}"
    else:
        c = task.crontab
        when = f"cron {c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week} {c.timezone}"
    return task.task, task.queue, when, json.loads(task.kwargs)


def all_rows() -> dict:
    def rows(model):
        return [model_to_dict(obj, fields=[f.name for f in model._meta.fields]) for obj in model.objects.order_by("pk")]

    return {m.__name__: rows(m) for m in (PeriodicTask, IntervalSchedule, CrontabSchedule, PeriodicTasks)}


def test_setup_creates_exactly_the_expected_periodic_tasks(db):
    call_command("setup_schedules")

    tasks = {t.name: describe(t) for t in PeriodicTask.objects.select_related("interval", "crontab")}
    assert tasks == EXPECTED
    assert all(PeriodicTask.objects.values_list("enabled", flat=True))


def test_a_second_run_changes_nothing(db, capsys):
    call_command("setup_schedules")
    before = all_rows()

    call_command("setup_schedules")

    assert all_rows() == before  # same ids, same values, same counts, beat's change marker untouched
    assert capsys.readouterr().out.count("unchanged:") == len(EXPECTED)


def test_operator_edits_survive_a_deploy_and_reset_restores_the_defaults(db):
    call_command("setup_schedules")
    sweep = PeriodicTask.objects.get(name="activity: catch-up sweep")
    sweep.enabled = False
    sweep.interval = IntervalSchedule.objects.create(every=2, period=IntervalSchedule.MINUTES)
    sweep.task = "tasks.sweeps.renamed_by_mistake"  # code-owned: put back by the next run
    sweep.save()

    call_command("setup_schedules")
    sweep.refresh_from_db()
    assert (sweep.enabled, sweep.interval.every, sweep.task) == (False, 2, "tasks.sweeps.catch_up")

    call_command("setup_schedules", "--reset")
    sweep.refresh_from_db()
    assert (sweep.enabled, sweep.interval.every) == (True, 1)


def test_an_unknown_task_name_is_refused_and_nothing_is_written(db):
    bogus = (Schedule("bogus", "tasks.sweeps.no_such_task", Every(1), "events", "typo"),)
    with pytest.raises(UnknownTaskError, match="no_such_task"):
        ensure_schedules(schedules=bogus)
    assert not PeriodicTask.objects.exists()


def test_the_command_reports_an_unknown_task_as_a_command_error(db, monkeypatch):
    monkeypatch.setattr("tasks.schedules.SCHEDULES", (Schedule("x", "tasks.nope.task", Every(1), "events", ""),))
    with pytest.raises(CommandError, match="no Celery task named 'tasks.nope.task'"):
        call_command("setup_schedules")
    assert not PeriodicTask.objects.exists()


def test_beat_reads_the_entries_with_their_queues_and_the_utc_crontab(db, celery_app):
    from django_celery_beat.schedulers import DatabaseScheduler

    call_command("setup_schedules")
    # Beat's own Entry per row (its all_as_schedule only loads crontabs due within a couple of hours).
    by_task = {t.task: DatabaseScheduler.Entry(t, app=celery_app) for t in PeriodicTask.objects.all()}
    assert by_task["tasks.sweeps.catch_up"].options["queue"] == "events"
    assert by_task["tasks.reconciliation.recompute_stale"].options["queue"] == "maintenance"
    nightly = by_task["tasks.reconciliation.reconcile_stats"]
    assert nightly.options["queue"] == "maintenance" and nightly.kwargs == {"fix": True, "trigger": "beat"}
    assert (nightly.schedule.hour, nightly.schedule.minute) == ({3}, {0})
    assert str(nightly.schedule.tz) == "UTC"
