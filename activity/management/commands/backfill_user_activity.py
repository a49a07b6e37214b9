"""`manage.py backfill_user_activity [--dry-run] [--batch-size N] [--source LABEL ...] [--wait]`.

Starts a backfill run through the same service as the admin's "Start backfill" form. With a broker the chunks run on
the workers (queue `maintenance`) and --wait follows the run's committed progress. On the embedded default (no
broker) the chunks run here, one after another, and the progress is printed as they commit.
"""
from __future__ import annotations

import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from activity import backfill
from activity.models import BackfillRun
from activity.sources import SOURCES

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Record the events of existing source rows (history) into the activity ledger, chunk by chunk."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="write nothing; report how many events would be created")
        parser.add_argument("--batch-size", type=int, default=None,
                            help=f"source rows per chunk (1..{settings.BACKFILL_MAX_BATCH_SIZE}, default {settings.BACKFILL_DEFAULT_BATCH_SIZE})")
        parser.add_argument("--source", action="append", dest="sources", metavar="LABEL", choices=list(SOURCES),
                            help="a source to backfill (repeatable; default all): " + ", ".join(SOURCES))
        parser.add_argument("--lanes", type=int, default=1,
                            help=f"parallel chains over disjoint key ranges, one worker process each (1..{backfill.MAX_LANES})")
        parser.add_argument("--wait", action="store_true", help="follow the run's progress until it ends")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between progress lines with --wait")

    def handle(self, *args, dry_run: bool, batch_size: int | None, sources: list[str] | None, lanes: int, wait: bool,
               interval: float, **options) -> None:
        self.stdout.write(_backends())
        in_process = backfill.runs_in_process()
        try:
            # In process the command drives the chain itself so it can print each chunk; with a broker the service
            # enqueues the first chunk and the workers carry on.
            run = backfill.start_backfill(sources, dry_run=dry_run, batch_size=batch_size, lanes=lanes,
                                          enqueue=not in_process)
        except backfill.BackfillError as exc:
            raise CommandError(str(exc)) from exc
        kind = "dry run" if run.dry_run else "backfill"
        self.stdout.write(f"{kind} #{run.pk} started: {', '.join(run.sources)}; {run.rows_total} source rows; "
                          f"batch size {run.batch_size}; {run.lanes} lane(s)")
        self._last_line = 0.0
        if in_process:
            run = backfill.drive_inline(run.pk, on_chunk=self._show if wait else None)
        elif wait:
            run = self._follow(run.pk, interval)
        else:
            self.stdout.write(f"running on the workers (queue {backfill.QUEUE}); follow it in the admin or with --wait")
            return
        self._show(run, force=True)
        self._summary(run)

    def _follow(self, run_id: int, interval: float) -> BackfillRun:
        try:
            while True:
                run = BackfillRun.objects.get(pk=run_id)
                self._show(run, force=True)
                if not run.is_active:
                    return run
                time.sleep(interval)
        except KeyboardInterrupt:
            raise CommandError(f"stopped following; run #{run_id} goes on (cancel it in the admin)") from None

    def _show(self, run: BackfillRun, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_line < 0.5 and run.is_active:
            return
        self._last_line = now
        p = backfill.progress_of(run)
        filled = int(BAR_WIDTH * p.percent / 100)
        verb = "would create" if p.dry_run else "events"
        line = (f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {p.percent:5.1f}%  rows {p.rows_done}/{p.rows_total}  "
                f"{verb} {p.events}  {p.events_per_second:,.0f} ev/s  ETA {backfill.format_duration(p.eta_seconds)}  "
                f"[{p.status}]")
        if sys.stdout.isatty() and run.is_active:
            self.stdout.write("\r" + line, ending="")
        else:
            self.stdout.write(line)

    def _summary(self, run: BackfillRun) -> None:
        p = backfill.progress_of(run)
        for s in p.sources:
            what = "would create" if run.dry_run else "created"
            self.stdout.write(f"  {s.label:<32} rows {s.done:>9}  {what} {s.events:>9}")
        if p.by_type:
            self.stdout.write("  by event type: " + ", ".join(f"{t} {n}" for t, n in p.by_type.items()))
        took = backfill.format_duration(p.elapsed_seconds)
        if run.status == BackfillRun.Status.SUCCEEDED:
            what = "would be created (dry run: nothing written)" if run.dry_run else "created"
            self.stdout.write(self.style.SUCCESS(
                f"{kind_of(run)} #{run.pk} succeeded in {took}: {run.rows_done} rows, {run.events_created} events {what}, "
                f"{run.rate:,.0f} events/s"))
        elif run.status == BackfillRun.Status.CANCELLED:
            self.stdout.write(self.style.WARNING(f"{kind_of(run)} #{run.pk} was cancelled after {run.rows_done} rows"))
        else:
            raise CommandError(f"{kind_of(run)} #{run.pk} {run.status}: {run.last_error.splitlines()[0] if run.last_error else ''}")


def kind_of(run: BackfillRun) -> str:
    return "dry run" if run.dry_run else "backfill"


def _backends() -> str:
    db = settings.DATABASES["default"]
    tasks = "in-process (embedded default)" if backfill.runs_in_process() else "Celery workers via the Redis broker"
    return f"database: postgresql ({db['NAME']}); tasks: {tasks}"
