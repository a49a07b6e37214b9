"""Backfill lanes become rows (activity.BackfillLane) instead of the BackfillRun.lanes_state JSON list.

The data step moves every run's JSON lane states into rows and back (the migration is reversible). The JSON kept no
per-lane counts: a one-lane run's lane takes the run's counts; the lanes of a multi-lane run start their counts at 0.
"""

from __future__ import annotations

from datetime import datetime

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

ENDED = ("succeeded", "failed", "cancelled")


def lane_fields(run, state: dict) -> dict:
    """A BackfillLane's fields from one entry of the old `lanes_state` list of `run`."""
    seq = int(state.get("seq") or 0)
    if state.get("finished") or run.status == "succeeded":
        status = "done"
    elif run.status in ENDED:
        status = "stopped"
    else:
        status = "running" if seq else "queued"
    heartbeat = state.get("heartbeat")
    alone = run.lanes == 1
    return {
        "status": status,
        "source": state.get("source") or (run.sources[0] if run.sources else ""),
        "cursor": int(state.get("cursor") or 0),
        "chunks_done": seq,
        "rows_done": run.rows_done if alone else 0,
        "events_created": run.events_created if alone else 0,
        "started_at": run.started_at if seq else None,
        "updated_at": datetime.fromisoformat(heartbeat) if heartbeat else run.created_at,
        "finished_at": run.finished_at if status in ("done", "stopped") else None,
    }


def lanes_to_rows(apps, schema_editor) -> None:
    BackfillRun = apps.get_model("activity", "BackfillRun")
    BackfillLane = apps.get_model("activity", "BackfillLane")
    rows = [
        BackfillLane(run=run, lane=lane, **lane_fields(run, state))
        for run in BackfillRun.objects.order_by("pk").iterator()
        for lane, state in enumerate(run.lanes_state or [])
    ]
    BackfillLane.objects.bulk_create(rows, batch_size=500)


def rows_to_lanes(apps, schema_editor) -> None:
    BackfillRun = apps.get_model("activity", "BackfillRun")
    BackfillLane = apps.get_model("activity", "BackfillLane")
    for run in BackfillRun.objects.order_by("pk").iterator():
        run.lanes_state = [
            {
                "source": row.source,
                "cursor": row.cursor,
                "seq": row.chunks_done,
                "finished": row.status == "done",
                "heartbeat": row.updated_at.isoformat(),
            }
            for row in BackfillLane.objects.filter(run=run).order_by("lane")
        ]
        run.save(update_fields=["lanes_state"])


class Migration(migrations.Migration):
    dependencies = [
        ("activity", "0007_poison_rows_and_sweep_resume"),
    ]

    operations = [
        migrations.CreateModel(
            name="BackfillLane",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("lane", models.PositiveSmallIntegerField()),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("queued", "Queued"),
                            ("running", "Running"),
                            ("done", "Done"),
                            ("failed", "Failed"),
                            ("stopped", "Stopped"),
                        ],
                        default="queued",
                        max_length=10,
                    ),
                ),
                (
                    "source",
                    models.CharField(help_text="The source the lane walks now (or walked last).", max_length=40),
                ),
                (
                    "cursor",
                    models.BigIntegerField(default=0, help_text="Last committed primary key of `source` in this lane."),
                ),
                (
                    "chunks_done",
                    models.PositiveIntegerField(default=0, help_text="Chunks committed; the next chunk task's number."),
                ),
                (
                    "rows_done",
                    models.BigIntegerField(default=0, help_text="Source rows scanned, all sources together."),
                ),
                (
                    "events_created",
                    models.BigIntegerField(
                        default=0, help_text="Events inserted (for a dry run: events that would be)."
                    ),
                ),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                (
                    "updated_at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, help_text="Last committed chunk or resume (the stale check)."
                    ),
                ),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("last_error", models.TextField(blank=True)),
                (
                    "run",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="lane_rows", to="activity.backfillrun"
                    ),
                ),
            ],
            options={
                "ordering": ("run_id", "lane"),
                "constraints": [models.UniqueConstraint(fields=("run", "lane"), name="backfill_lane_unique")],
            },
        ),
        migrations.RunPython(lanes_to_rows, rows_to_lanes),
        migrations.RemoveField(
            model_name="backfillrun",
            name="lanes_state",
        ),
    ]
