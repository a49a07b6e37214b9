"""The suite's teardown flush retries a deadlock with the session worker (tests/conftest.py), and only that."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError
from django.db import OperationalError

from tests.conftest import FLUSH_ATTEMPTS, flush_retrying_deadlocks


def failing_flush(cause: Exception, failures: int) -> tuple[list[int], object]:
    calls: list[int] = []

    def flush(_self: object) -> None:
        calls.append(1)
        if len(calls) <= failures:
            raise CommandError("Database test_x couldn't be flushed.") from cause

    return calls, flush


def test_a_flush_aborted_as_a_deadlock_is_flushed_again() -> None:
    calls, flush = failing_flush(OperationalError("deadlock detected; DETAIL: Process 1 waits for ..."), failures=2)
    flush_retrying_deadlocks(flush)(object())  # type: ignore[arg-type]
    assert len(calls) == 3


def test_a_deadlock_every_time_still_fails_the_teardown() -> None:
    calls, flush = failing_flush(OperationalError("deadlock detected"), failures=FLUSH_ATTEMPTS)
    with pytest.raises(CommandError):
        flush_retrying_deadlocks(flush)(object())  # type: ignore[arg-type]
    assert len(calls) == FLUSH_ATTEMPTS


def test_any_other_flush_error_is_not_retried() -> None:
    calls, flush = failing_flush(OperationalError("relation does not exist"), failures=1)
    with pytest.raises(CommandError):
        flush_retrying_deadlocks(flush)(object())  # type: ignore[arg-type]
    assert len(calls) == 1
