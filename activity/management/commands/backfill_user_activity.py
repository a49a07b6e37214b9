"""`manage.py backfill_user_activity [--dry-run] [--batch-size N] [--source LABEL ...] [--lanes N] [--wait]`.

Starts a backfill run through the same service as the admin's "Start backfill" form; the workers run its chunks
(queue `maintenance`). `--wait` follows the run's committed progress until it ends: a progress bar redrawn in place
on a terminal, one plain line per step when the output is a file or a pipe. Quiet by default (the run, its progress,
one summary line); `-v 2` adds the backends, the per-source and per-lane figures and the events by type; `-v 0`
prints nothing but errors.
"""

from __future__ import annotations

import time
from typing import Any, TextIO, cast

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from activity import backfill
from activity.models import BackfillRun
from activity.sources import SOURCES
from dispatch.names import Queue


class ProgressDisplay:
    """One run's progress on `stream`. On a terminal, a tqdm bar over the run's rows, redrawn in place; otherwise
    (a log file, a pipe, CI) one plain line per step, a step being a change in the committed progress. tqdm itself
    would either print nothing off a terminal (`disable=None`) or write its carriage-return redraws into the file."""

    def __init__(self, stream: TextIO, *, tty: bool | None = None) -> None:
        self.stream = stream
        self.tty = bool(stream.isatty()) if tty is None else tty
        self.bar: tqdm | None = None
        self._last: tuple | None = None

    def step(self, p: backfill.Progress) -> None:
        state = (p.rows_done, p.events, p.status)
        if state == self._last:
            return
        self._last = state
        if not self.tty:
            self.stream.write(progress_line(p) + "\n")
            self.stream.flush()
            return
        if self.bar is None:
            self.bar = tqdm(
                total=p.rows_total,
                unit="rows",
                desc=f"{kind_of_progress(p)} #{p.run_id}",
                file=self.stream,
                dynamic_ncols=True,
                mininterval=0,
                disable=False,
            )
        self.bar.total = max(p.rows_total, p.rows_done)
        self.bar.n = p.rows_done
        verb = "would create" if p.dry_run else "events"
        self.bar.set_postfix_str(f"{verb} {p.events}, {p.events_per_second:,.0f} ev/s, {p.status}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress_line(p: backfill.Progress) -> str:
    verb = "would create" if p.dry_run else "events"
    return (
        f"{kind_of_progress(p)} #{p.run_id} {p.percent:5.1f}%  rows {p.rows_done}/{p.rows_total}  {verb} {p.events}  "
        f"{p.events_per_second:,.0f} ev/s  ETA {backfill.format_duration(p.eta_seconds)}  [{p.status}]"
    )


def kind_of_progress(p: backfill.Progress) -> str:
    return "dry run" if p.dry_run else "backfill"


class Command(BaseCommand):
    help = (
        "Record the events of existing source rows (history) into the activity ledger, chunk by chunk, on the workers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="write nothing; report how many events would be created"
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help=f"source rows per chunk (1..{settings.BACKFILL_MAX_BATCH_SIZE}, "
            f"default {settings.BACKFILL_DEFAULT_BATCH_SIZE})",
        )
        parser.add_argument(
            "--source",
            action="append",
            dest="sources",
            metavar="LABEL",
            choices=list(SOURCES),
            help="a source to backfill (repeatable; default all): " + ", ".join(SOURCES),
        )
        parser.add_argument(
            "--lanes",
            type=int,
            default=1,
            help=f"parallel chains over disjoint key ranges, one worker process each (1..{backfill.MAX_LANES})",
        )
        parser.add_argument("--wait", action="store_true", help="follow the run's progress until it ends")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between progress reads with --wait")

    def handle(
        self,
        *args: Any,
        dry_run: bool,
        batch_size: int | None,
        sources: list[str] | None,
        lanes: int,
        wait: bool,
        interval: float,
        verbosity: int = 1,
        **options: Any,
    ) -> None:
        self.verbosity = verbosity
        self._say(2, _backends())
        try:
            run = backfill.start_backfill(sources, dry_run=dry_run, batch_size=batch_size, lanes=lanes)
        except backfill.BackfillError as exc:
            raise CommandError(str(exc)) from exc
        self._say(
            1,
            f"{kind_of(run)} #{run.pk} started: {', '.join(run.sources)}; {run.rows_total} source rows; "
            f"batch size {run.batch_size}; {run.lanes} lane(s); chunks on queue {Queue.MAINTENANCE}",
        )
        if not wait:
            self._say(1, "follow it in the admin, or with --wait")
            return
        run = self._follow(run.pk, interval)
        self._summary(run)

    def _say(self, level: int, text: str) -> None:
        if self.verbosity >= level:
            self.stdout.write(text)

    def _follow(self, run_id: int, interval: float) -> BackfillRun:
        # tqdm redraws with carriage returns: it writes to the raw stream, not through OutputWrapper (which would
        # end every write with a newline).
        display = ProgressDisplay(cast(TextIO, self.stdout._out)) if self.verbosity >= 1 else None
        try:
            while True:
                run = BackfillRun.objects.get(pk=run_id)
                if display is not None:
                    display.step(backfill.progress_of(run))
                if not run.is_active:
                    return run
                time.sleep(interval)
        except KeyboardInterrupt:
            raise CommandError(f"stopped following; run #{run_id} goes on (cancel it in the admin)") from None
        finally:
            if display is not None:
                display.close()

    def _summary(self, run: BackfillRun) -> None:
        p = backfill.progress_of(run)
        what = "would create" if run.dry_run else "created"
        for s in p.sources:
            self._say(2, f"  {s.label:<32} rows {s.done:>9}  {what} {s.events:>9}")
        for lane in p.lanes:
            self._say(
                2, f"  lane {lane.lane}: {lane.status}, {lane.chunks} chunks, rows {lane.rows}, {what} {lane.events}"
            )
        if p.by_type:
            self._say(2, "  by event type: " + ", ".join(f"{t} {n}" for t, n in p.by_type.items()))
        took = backfill.format_duration(p.elapsed_seconds)
        if run.status == BackfillRun.Status.SUCCEEDED:
            what = "would be created (dry run: nothing written)" if run.dry_run else "created"
            self._say(
                1,
                self.style.SUCCESS(
                    f"{kind_of(run)} #{run.pk} succeeded in {took}: {run.rows_done} rows, "
                    f"{run.events_created} events {what}, "
                    f"{run.rate:,.0f} events/s"
                ),
            )
        elif run.status == BackfillRun.Status.CANCELLED:
            self._say(1, self.style.WARNING(f"{kind_of(run)} #{run.pk} was cancelled after {run.rows_done} rows"))
        else:
            raise CommandError(
                f"{kind_of(run)} #{run.pk} {run.status}: {run.last_error.splitlines()[0] if run.last_error else ''}"
            )


def kind_of(run: BackfillRun) -> str:
    return "dry run" if run.dry_run else "backfill"


def _backends() -> str:
    return settings.BACKENDS_DESCRIPTION
