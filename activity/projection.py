"""Subscribers to the ledger, called inside the transaction that inserted the events.

The stats app registers its incremental apply here at start-up, so the ledger never imports the projection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import NamedTuple

from activity.phases import phase


class InsertedEvent(NamedTuple):
    """An event this call really inserted (not one that was already there). A named tuple, not a frozen dataclass:
    one is built per inserted row, and a frozen dataclass's __init__ (a setattr per field) cost three times as
    much - a microsecond per event of a backfill."""

    id: int
    user_id: int
    event_type: str
    amount: int | None
    timestamp: datetime
    game: str | None = None  # tournament events: the per-game / per-season projections' keys
    season: int | None = None
    source_id: int | None = None  # the source row (of the event's source_model) the event was derived from


Projector = Callable[[Sequence[InsertedEvent]], None]
_projectors: list[Projector] = []
_history: ContextVar[bool] = ContextVar("activity.projection.history", default=False)


@contextmanager
def recording_history() -> Iterator[None]:
    """Inside, what is appended is history (a backfill or a reconciliation re-deriving old source rows), not news: a
    projector that acts on news at once (the live rating fold, and the replay a late match starts) leaves the work
    to its scheduled job instead. Counters are projected the same either way."""
    token = _history.set(True)
    try:
        yield
    finally:
        _history.reset(token)


def is_history() -> bool:
    """True inside recording_history()."""
    return _history.get()


def register_projector(projector: Projector) -> None:
    if projector not in _projectors:
        _projectors.append(projector)


def project(inserted: Sequence[InsertedEvent]) -> None:
    if inserted:
        for projector in _projectors:
            with phase(f"{projector.__module__}.{projector.__name__}"):
                projector(inserted)
