"""Run a piece of work in a thread of its own while the caller's block runs: the reconciliation's two passes.

The thread has its own database connection (Django's connections are per thread), closed when the work ends. Inside
an atomic block (a caller's transaction, or a test's) the work runs first, in the caller's thread and transaction,
instead: another connection could not see what that transaction wrote. The block's exception, if any, wins;
otherwise the work's is raised after the block. The thread is always joined before the block is left, so nothing
the work does outlives its caller (a run lock released while its sources pass still runs).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection, connections


@contextmanager
def alongside(work: Callable[[], object] | None) -> Iterator[None]:
    if work is None:
        yield
        return
    if connection.in_atomic_block:
        work()
        yield
        return
    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, raised there
            failure.append(exc)
        finally:
            connections.close_all()  # this thread's connections only

    thread = threading.Thread(target=run, name="alongside", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
    if failure:
        raise failure[0]
