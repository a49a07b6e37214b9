"""Batch mode's Redis push, moved off the request thread: the request hands "label:pk" to an in-process list and one
sender thread per process pushes everything handed off since its last push, in one pipelined round trip.

Why (bench/request_path.py, 4 threads committing at once): the push's own CPU is ~0.1-0.2 ms, but its wall time has a
p99 of ~5 ms. With other threads running Python, every blocking socket call gives the GIL away, and getting it back
waits for the holder to block or for the switch interval (5 ms) to run out. A hand-off is a list append and an event
set, neither of which releases the GIL, so the request no longer pays those waits; the sender thread pays them, off
the request.

What an in-process list can lose: the entries of a process killed between a hand-off and its push (milliseconds),
the same window as a process killed between its commit and the after-commit callback. The catch-up sweep records
them (the source tables are the outbox). A process exiting normally pushes what is left (atexit); a forked child
starts with an empty list and its own thread.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

Deliver = Callable[[list[tuple[str, int]]], None]


class Sender:
    """Hands (label, pk) pairs to `deliver`, called with a list of them, from one daemon thread started on the first
    hand-off. `deliver` owns failure handling (logging, metrics, the broker pause); it should not raise."""

    def __init__(self, deliver: Deliver, *, name: str, gather_seconds: float = 0.0) -> None:
        self._deliver = deliver
        self._name = name
        # After a wake-up, wait this long before taking the entries: what is handed off meanwhile goes in the same
        # push, so under load the thread takes the GIL for fewer rounds (each round's Python - the pipeline, its
        # reply - is what the committing threads wait behind).
        self._gather = gather_seconds
        self._reset()
        os.register_at_fork(after_in_child=self._reset)
        atexit.register(self.flush)

    def _reset(self) -> None:
        # A forked child must not inherit the parent's entries (the parent pushes them) nor its locks' state.
        self._items: list[tuple[str, int]] = []
        self._lock = threading.Lock()  # guards _items and _thread: held for an append or a swap, never across I/O
        self._delivering = threading.Lock()  # one delivery at a time (the thread, flush() from another thread)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def hand_off(self, label: str, pk: int) -> None:
        """Queue one entry for the sender thread; no I/O here."""
        with self._lock:
            self._items.append((label, pk))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self._wake.set()

    def pending(self) -> int:
        """Entries handed off and not yet taken by a delivery."""
        with self._lock:
            return len(self._items)

    def flush(self) -> int:
        """Deliver everything handed off so far, in the calling thread, after any delivery under way; returns how
        many were delivered. The sender thread's loop, process exit, and a caller that must know the push is done."""
        with self._delivering:
            with self._lock:
                items, self._items = self._items, []
            if items:
                self._deliver(items)
            return len(items)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._gather:
                time.sleep(self._gather)
            self._wake.clear()  # before the swap in flush(): a hand-off after this point wakes the next round
            try:
                self.flush()
            except Exception:  # a bug in deliver must not stop the thread: the next entries still go out
                logger.exception(
                    "%s: delivering handed-off entries failed; the catch-up sweep records them", self._name
                )
