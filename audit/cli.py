"""Argument types shared by the audit commands."""

from __future__ import annotations

import datetime as dt
from argparse import ArgumentTypeError


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def moment(value: str) -> dt.datetime:
    """An ISO date (midnight UTC) or date-time (UTC when it names no zone)."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ArgumentTypeError(
            f"expected a date like 2026-12-01 or 2026-12-01T03:00:00+00:00, got {value!r}"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
