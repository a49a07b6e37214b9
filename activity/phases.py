"""Where a recording's time goes: named phases of the append path, timed only while a caller collects them.

The backfill benchmark wraps chunks in `collecting()` to print a breakdown (load, derive, insert, counters, ...);
outside it, `phase()` costs one thread-local lookup. Phases are exclusive: time spent in a phase nested inside
another is charged to the inner one only, so the phases of one chunk add up to at most its wall time. Each phase
gets its wall time and this thread's CPU time (the rest of the wall time is waiting: for PostgreSQL, or for a CPU
on a busy machine). Work a helper thread did at the same time (activity.overlapped) is charged beside, under names
starting with BESIDE, which do not count towards the wall time.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from time import perf_counter, thread_time


@dataclass
class PhaseTimes:
    wall: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    cpu: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))


class _State(threading.local):
    def __init__(self) -> None:
        self.collectors: list[PhaseTimes] = []
        self.stack: list[str] = []
        self.wall = 0.0
        self.cpu = 0.0


_state = _State()


@contextmanager
def collecting() -> Iterator[PhaseTimes]:
    """Seconds per phase of everything this thread records inside the block."""
    times = PhaseTimes()
    _state.collectors.append(times)
    try:
        yield times
    finally:
        _state.collectors.remove(times)


def _charge() -> None:
    wall, cpu = perf_counter(), thread_time()
    if _state.stack:
        name = _state.stack[-1]
        for times in _state.collectors:
            times.wall[name] += wall - _state.wall
            times.cpu[name] += cpu - _state.cpu
    _state.wall, _state.cpu = wall, cpu


# Prefix of the phases a helper thread ran while this thread went on: they overlap this thread's own phases.
BESIDE = "beside: "


def is_collecting() -> bool:
    return bool(_state.collectors)


def charge_beside(times: PhaseTimes) -> None:
    """Add phases another thread collected (while this one went on) to this thread's collectors, each name prefixed
    with BESIDE."""
    for collector in _state.collectors:
        for name, seconds in times.wall.items():
            collector.wall[BESIDE + name] += seconds
            collector.cpu[BESIDE + name] += times.cpu[name]


@contextmanager
def phase(name: str) -> Iterator[None]:
    if not _state.collectors:
        yield
        return
    _charge()
    _state.stack.append(name)
    try:
        yield
    finally:
        _charge()
        _state.stack.pop()
