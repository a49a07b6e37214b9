"""The nightly sources -> ledger pass in lanes: its work split over processes, so deriving rows uses every core.

Re-deriving a source row is Python work (loading, the rules, planning), which one process does on one core whatever
its threads: beside it the reconciliation's other passes wait on PostgreSQL, and the ratings check folds in Python
too. So the pass's chunks - the changed rows and their dependents in chunks of `batch_size`, and the rolling slice's
blocks - are dealt round-robin to RECONCILE_LANES lanes: lane 1 runs in the calling thread, each other lane in a
child process (`manage.py nightly_sources_lane`, its work as JSON on stdin from a file, its progress and findings
as lines on stdout). The lanes share nothing but the database, and every chunk goes through the one append path
(isolate_and_record: idempotent, its rows' advisory locks, poison rows set aside), so they may run in any order.

A child that fails fails the pass (and so the run, which stays unsuccessful: its change-log claims stay for the next
one); a child whose parent died stops at its next chunk. Inside an atomic block (a caller's transaction, a test's)
every lane runs in the calling thread, one after another: a child could not see that transaction's rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from activity.orphans import orphaned_source_ids
from activity.poison import isolate_and_record
from activity.sources import SOURCES, SourceKind
from stats.rolling_slice import IdSlice

Progress = Callable[[str], None]
PROGRESS, RESULT = "progress ", "result "  # a child's stdout lines


class LaneFailed(RuntimeError):
    """A child lane exited without its findings."""


@dataclass
class LabelWork:
    """One source's share of a lane: chunks of targeted rows and slice blocks [lo, hi); `changed` and `dependents`
    (every lane gets all of them) keep a slice row that is targeted anyway from being derived twice."""

    chunks: list[list[int]] = field(default_factory=list)
    blocks: list[list[int]] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    dependents: list[int] = field(default_factory=list)


@dataclass
class LaneWork:
    lane: int  # 0-based
    lanes: int
    slice_index: int
    slice_count: int
    fix: bool
    batch_size: int
    labels: dict[str, LabelWork] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> LaneWork:
        data = json.loads(text)
        data["labels"] = {label: LabelWork(**work) for label, work in data["labels"].items()}
        return cls(**data)


@dataclass
class LaneOutcome:
    missing: dict[str, Counter] = field(default_factory=dict)  # label -> event type -> events (would be) recorded
    poison: Counter = field(default_factory=Counter)  # label -> rows set aside
    in_slice: Counter = field(default_factory=Counter)  # label -> slice rows derived

    def add(self, other: LaneOutcome) -> None:
        for label, found in other.missing.items():
            self.missing.setdefault(label, Counter()).update(found)
        self.poison.update(other.poison)
        self.in_slice.update(other.in_slice)

    def to_json(self) -> str:
        return json.dumps({"missing": self.missing, "poison": self.poison, "in_slice": self.in_slice})

    @classmethod
    def from_json(cls, text: str) -> LaneOutcome:
        data = json.loads(text)
        return cls(
            {label: Counter(found) for label, found in data["missing"].items()},
            Counter(data["poison"]),
            Counter(data["in_slice"]),
        )


def deal(
    id_slice: IdSlice,
    work: dict[str, tuple[set[int], set[int], list[tuple[int, int]]]],
    *,
    lanes: int,
    fix: bool,
    batch_size: int,
) -> list[LaneWork]:
    """label -> (changed ids, dependent ids, slice blocks) dealt round-robin into `lanes` lanes: chunk k and block k
    of every source to lane k mod lanes."""
    dealt = [LaneWork(k, lanes, id_slice.index, id_slice.count, fix, batch_size) for k in range(lanes)]
    for label, (changed, extra, blocks) in work.items():
        targeted = sorted(changed | extra)
        shares = [LabelWork(changed=sorted(changed), dependents=sorted(extra)) for _ in range(lanes)]
        for k, start in enumerate(range(0, len(targeted), batch_size)):
            shares[k % lanes].chunks.append(targeted[start : start + batch_size])
        for k, (lo, hi) in enumerate(blocks):
            shares[k % lanes].blocks.append([lo, hi])
        for lane, share in zip(dealt, shares, strict=True):
            lane.labels[label] = share
    return dealt


def run_lanes(lanes: Sequence[LaneWork], progress: Progress) -> LaneOutcome:
    """Every lane's work: the first here, the others in child processes meanwhile (all here inside an atomic
    block); their findings added up."""
    total = LaneOutcome()
    if connection.in_atomic_block or len(lanes) == 1:
        for lane in lanes:
            total.add(run_lane(lane, progress))
        return total
    children = [_Child(lane, progress) for lane in lanes[1:]]
    try:
        total.add(run_lane(lanes[0], progress))
        for child in children:
            total.add(child.outcome())
    finally:
        for child in children:
            child.stop()
    return total


def run_lane(work: LaneWork, progress: Progress, *, parent: int | None = None) -> LaneOutcome:
    """One lane's chunks, source by source. `parent`: stop when the process that started this one has gone."""
    outcome = LaneOutcome()
    for label, share in work.labels.items():
        kind = SOURCES[label]
        found: Counter = Counter()
        changed, skip = set(share.changed), set(share.changed) | set(share.dependents)
        for ids in share.chunks:
            _check_parent(parent)
            found.update(_record(label, ids, work.fix, outcome.poison))
        for lo, hi in share.blocks:
            _check_parent(parent)
            fresh = [i for i in _ids_between(kind, lo, hi) if i not in skip]  # each row derived once per run
            outcome.in_slice[label] += len(fresh)
            found.update(_record(label, fresh, work.fix, outcome.poison))
            if kind.recorded_types:  # deletions the log cannot show (before it existed, TRUNCATE): the orphans
                for gone in orphaned_source_ids(label, lo - 1, hi - 1, chunk=work.batch_size):
                    found.update(_record(label, [i for i in gone if i not in changed], work.fix, outcome.poison))
        outcome.missing[label] = found
        if work.lanes > 1:
            progress(
                f"sources -> ledger (nightly, slice {work.slice_index + 1}/{work.slice_count}, lane {work.lane + 1}/"
                f"{work.lanes}): {label}: {sum(len(c) for c in share.chunks)} changed or dependent, "
                f"{outcome.in_slice[label]} in the slice; {sum(found.values())} event(s) "
                + ("recorded" if work.fix else "missing")
            )
    return outcome


def _record(label: str, ids: Sequence[int], fix: bool, poison: Counter) -> Counter:
    if not ids:
        return Counter()
    outcome = isolate_and_record(label, ids, dry_run=not fix, origin="reconcile")
    if outcome.poisoned:
        poison[label] += len(outcome.poisoned)
    return outcome.result.by_type() if fix else outcome.result.would_insert_by_type


def _ids_between(kind: SourceKind, lo: int, hi: int) -> list[int]:
    """The source's primary keys in [lo, hi), ascending: one range scan of the primary-key index."""
    table, pk = kind.model._meta.db_table, kind.model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "{pk}" FROM "{table}" WHERE "{pk}" >= %s AND "{pk}" < %s ORDER BY 1', [lo, hi])
        return [row[0] for row in cursor.fetchall()]


def _check_parent(parent: int | None) -> None:
    if parent is not None and os.getppid() != parent:
        raise SystemExit("the reconciliation that started this lane has gone")


class _Child:
    """One lane in a child process: its progress lines relayed as they come, its stderr kept in a file for the
    error of a failed lane."""

    def __init__(self, work: LaneWork, progress: Progress) -> None:
        self.work = work
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop(), after the lane ended
        self.result: str | None = None
        # The work from a file, not a pipe: a pipe would hold this thread until the child, still starting Django,
        # reads past the pipe's buffer.
        with tempfile.TemporaryFile("w+") as stdin:
            stdin.write(work.to_json())
            stdin.seek(0)
            self.process = subprocess.Popen(
                [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "nightly_sources_lane", str(os.getpid())],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=self.stderr,
                # The same database (in tests the test database, not the configured one) and the same secret (an
                # embedded run has none in its environment).
                env={**os.environ, "DATABASE_URL": _database_url(), "SECRET_KEY": settings.SECRET_KEY},
                text=True,
            )
        self.reader = threading.Thread(target=self._read, args=(progress,), daemon=True)
        self.reader.start()

    def _read(self, progress: Progress) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(PROGRESS):
                progress(line[len(PROGRESS) :].rstrip("\n"))
            elif line.startswith(RESULT):
                self.result = line[len(RESULT) :]

    def outcome(self) -> LaneOutcome:
        code = self.process.wait()
        self.reader.join()
        if code != 0 or self.result is None:
            self.stderr.seek(0)
            tail = self.stderr.read()[-2000:].decode(errors="replace").strip()
            raise LaneFailed(f"lane {self.work.lane + 1}/{self.work.lanes} exited with {code}: {tail}")
        return LaneOutcome.from_json(self.result)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


def _database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"], safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
