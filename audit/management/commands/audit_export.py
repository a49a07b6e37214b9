"""`python manage.py audit_export [--user-id N] [--event-type T] [--since DATE] [--limit N] [--output F]`: JSONL."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from django.core.management.base import BaseCommand, CommandParser

from audit.cli import moment, positive_int
from audit.event_types import AuditEventType
from audit.export import jsonl_lines
from project.progress import progress


class Command(BaseCommand):
    help = (
        "Write audit events as JSON lines, in chain order, streamed (constant memory). --user-id: events about or by "
        "that user. Progress goes to stderr when writing to stdout."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user-id", type=positive_int, default=None)
        parser.add_argument("--event-type", choices=AuditEventType.values, default=None)
        parser.add_argument("--since", type=moment, default=None, help="events at/after DATE")
        parser.add_argument("--limit", type=positive_int, default=None)
        parser.add_argument("--output", default="-", help="file to write (default: stdout)")

    def handle(self, *args, **options) -> None:
        lines = jsonl_lines(
            user_id=options["user_id"],
            event_type=options["event_type"],
            since=options["since"],
            limit=options["limit"],
        )
        verbosity, path = options["verbosity"], options["output"]
        if path == "-":
            self._write(lines, lambda line: self.stdout.write(line, ending=""), verbosity)
            return
        with open(path, "w", encoding="utf-8") as output:
            written = self._write(lines, output.write, verbosity)
        if verbosity:
            self.stderr.write(f"{written} event(s) written to {path}")

    def _write(self, lines: Iterator[str], write: Callable[[str], object], verbosity: int) -> int:
        written = 0
        with progress(None, "audit_export", self.stderr, verbosity) as bar:
            for line in lines:
                write(line)
                written += 1
                if written % 10_000 == 0:
                    bar.update(10_000)
        return written
