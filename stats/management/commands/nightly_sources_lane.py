"""One lane of the nightly sources -> ledger pass, in a process of its own (stats.nightly_lanes starts it).

Reads its LaneWork as JSON on stdin; writes `progress ...` lines and one `result {...}` line (its LaneOutcome) on
stdout. Stops at its next chunk when the process named by PARENT_PID (its parent) has gone. Not for operators:
`reconcile_user_stats` runs the whole pass.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from stats.nightly_lanes import PROGRESS, RESULT, LaneWork, run_lane


class Command(BaseCommand):
    help = "Internal: one lane of the nightly sources -> ledger pass (work on stdin, findings on stdout)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("parent_pid", type=int)

    def handle(self, *args, parent_pid: int, **options) -> None:
        work = LaneWork.from_json(sys.stdin.read())

        def say(line: str) -> None:
            sys.stdout.write(PROGRESS + line.replace("\n", " ") + "\n")
            sys.stdout.flush()

        outcome = run_lane(work, say, parent=parent_pid)
        sys.stdout.write(RESULT + outcome.to_json() + "\n")
        sys.stdout.flush()
