"""Helpers shared by the ledger and stats tests: reading a user's ledger and counters, recording source rows through
the one service (also right after each commit, in place of the worker: `record_inline`), muting the receivers of
tests that drive the services themselves, and waiting for the real worker."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import pytest
from celery.signals import before_task_publish, task_postrun
from django.db import connection
from django.db.models import Model

from activity.append import AppendResult
from activity.models import UserActivity
from activity.recording import record_events_for
from dispatch.names import TaskName
from stats.counters import COUNTER_FIELDS
from stats.models import UserProfileStats
from tasks import enqueue
from tasks.recording import record_team_entries
from tests.conftest import wait_until

RECORD_TASK = TaskName.RECORD_SOURCE_CHANGE.value
DRAIN_TASK = TaskName.DRAIN_PENDING.value
RECORDING_TASKS = frozenset({RECORD_TASK, DRAIN_TASK, TaskName.RECORD_TEAM_ENTRIES.value})
LEDGER_TABLE = UserActivity._meta.db_table
STATS_TABLE = UserProfileStats._meta.db_table


def uid(user_or_id) -> int:
    return user_or_id if isinstance(user_or_id, int) else user_or_id.pk


def record(*rows) -> AppendResult:
    """Record source rows (model instances, all of one table) through record_events_for, as the task does."""
    label = rows[0]._meta.label_lower
    return record_events_for(label, [r.pk for r in rows])


def ledger_counts(user) -> Counter:
    """event_type -> number of ledger rows of the user."""
    return Counter(UserActivity.objects.filter(user_id=uid(user)).values_list("event_type", flat=True))


def ledger_rows_of(
    source: Model | str, source_id: int | None = None, *, fields: Sequence[str] = ("user_id", "event_type")
) -> list:
    """The ledger rows recorded for one source row, sorted: `fields` as tuples, or bare values for a single field. The
    source is a model instance, or its label and id (a deleted instance has lost its pk, its ledger rows have not)."""
    if isinstance(source, str):
        assert source_id is not None, "a source named by its label needs its id"
        label, pk = source, source_id
    else:
        label, pk = source._meta.label_lower, source.pk
    rows = UserActivity.objects.filter(source_model=label, source_id=pk)
    return sorted(rows.values_list(*fields, flat=True) if len(fields) == 1 else rows.values_list(*fields))


def counters(user) -> dict[str, int]:
    """The user's projected counters (all zero when the user has no stats row yet)."""
    row = UserProfileStats.objects.filter(profile_id=uid(user)).values(*COUNTER_FIELDS).first()
    return row or dict.fromkeys(COUNTER_FIELDS, 0)


def nonzero(values: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in values.items() if v}


def all_counters() -> dict[int, dict[str, int]]:
    return {row.pop("profile_id"): row for row in UserProfileStats.objects.values("profile_id", *COUNTER_FIELDS)}


def run_in_threads(n: int, target: Callable[[int], None], timeout: float = 120) -> list[BaseException]:
    """Run target(i) for i in range(n) in n threads released together; each thread closes its own database
    connection. Returns the exceptions raised (empty when all succeeded); fails if a thread hangs."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            target(i)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    hung = [t.name for t in threads if t.is_alive()]
    assert not hung, f"threads still running after {timeout}s (deadlock?): {hung}"
    return errors


def record_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receivers' after-commit hooks record in this process, through the services the worker's tasks call,
    instead of publishing: for tests of the live derivation that need no broker or worker. Errors propagate (a test
    must see them; production's enqueue never raises)."""
    monkeypatch.setattr("tasks.receivers.enqueue_source_change", lambda label, pk: record_events_for(label, [pk]))
    monkeypatch.setattr(
        "tasks.receivers.enqueue_team_entries",
        lambda team_id, joined_at, left_at: record_team_entries.run(
            team_id, enqueue._iso(joined_at), enqueue._iso(left_at) if left_at else None
        ),
    )


@pytest.fixture
def enqueued(monkeypatch) -> list[tuple[str, int]]:
    """Mute the receivers' enqueues and collect the source changes they would have sent, for tests that call the
    services themselves with committed data (transactional_db): nothing reaches the shared Redis queue."""
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr("tasks.receivers.enqueue_source_change", lambda label, pk: calls.append((label, pk)))
    monkeypatch.setattr("tasks.receivers.enqueue_team_entries", lambda team_id, joined_at, left_at: True)
    return calls


class TaskTracker:
    """Counts recording task publishes (this process) and finished runs (the live worker's thread): per-row
    record_source_change tasks and, in batch mode, drain_pending tasks (a drain publishes its successor itself).

    A retry publishes the same task id again and its first run finishes in state RETRY, so "every published id has
    finished as often as it was published" means the worker has nothing of ours left to do.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.published: Counter = Counter()
        self.finished: Counter = Counter()
        self.runs: list[tuple[str, tuple, str, object]] = []  # (task id, args, state, return value)

    def _on_publish(self, sender=None, headers=None, **kwargs) -> None:
        if sender in RECORDING_TASKS:
            with self._lock:
                self.published[headers["id"]] += 1

    def _on_postrun(self, sender=None, task_id=None, args=None, state=None, retval=None, **kwargs) -> None:
        if getattr(sender, "name", None) in RECORDING_TASKS:
            with self._lock:
                self.finished[task_id] += 1
                self.runs.append((task_id, tuple(args or ()), state, retval))

    def __enter__(self) -> TaskTracker:
        before_task_publish.connect(self._on_publish, weak=False)
        task_postrun.connect(self._on_postrun, weak=False)
        return self

    def __exit__(self, *exc) -> None:
        before_task_publish.disconnect(self._on_publish)
        task_postrun.disconnect(self._on_postrun)

    def idle(self) -> bool:
        with self._lock:
            return bool(self.published) and all(self.finished[t] >= n for t, n in self.published.items())

    def wait_idle(self, timeout: float = 30) -> None:
        from tasks.enqueue import flush_handed_off

        flush_handed_off()  # batch mode pushes (and publishes its drains) on a sender thread: let it finish first
        wait_until(self.idle, timeout=timeout, message="the worker to finish every published recording task")

    def states(self) -> list[str]:
        with self._lock:
            return [state for _, _, state, _ in self.runs]


@pytest.fixture
def tracker() -> Iterable[TaskTracker]:
    with TaskTracker() as t:
        yield t
