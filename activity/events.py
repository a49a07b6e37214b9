"""A not-yet-recorded event and the validation every event passes before anything is written."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from operator import itemgetter
from types import MappingProxyType
from typing import Any, NamedTuple

from django.conf import settings

from activity.event_types import COIN_EVENTS, PLACEMENT_AMOUNT_EVENTS, EventType, Visibility, default_visibility

_EVENT_TYPES = frozenset(EventType.values)
# Compact, deterministic JSON. One encoder for every call: json.dumps with options builds a new one each time, which
# was a third of the cost of encoding a match's metadata.
_JSON = json.JSONEncoder(separators=(",", ":"), allow_nan=False, sort_keys=True)
_VISIBILITIES = frozenset(Visibility.values)
NO_METADATA: Mapping[str, Any] = MappingProxyType({})


class InvalidEventError(ValueError):
    """An event that must not enter the ledger; the message says which field and why."""


class NewEvent(NamedTuple):
    """An event a derivation implies. A named tuple, not a frozen dataclass: a backfill derives millions, and a frozen
    dataclass's __init__ (a setattr per field) cost three times as much. Change a copy with `_replace`."""

    user_id: int
    event_type: str
    timestamp: datetime
    source_model: str
    source_id: int
    metadata: Mapping[str, Any] = NO_METADATA  # read-only: one object shared by every event without metadata
    amount: int | None = None
    seq: int = 1
    visibility: str = ""
    # The tournament's game and season (tournament events only): the per-game / per-season projections' keys.
    game: str | None = None
    season: int | None = None

    @property
    def key(self) -> tuple[str, int, int, str, int]:
        """The idempotency key, as the database's unique constraint sees it: (source_model, source_id, user_id,
        event_type, seq), picked by position in C."""
        return _KEY(self)

    def resolved_visibility(self) -> str:
        return self.visibility or default_visibility(self.event_type)


_KEY = itemgetter(3, 4, 0, 1, 7)


def _where(event: NewEvent) -> str:
    return f"{event.event_type} for user {event.user_id} from {event.source_model}:{event.source_id}"


def validate(event: NewEvent) -> None:
    """Check every field but the metadata; raises InvalidEventError. (The message's context is built only on
    failure: it was a fifth of the validation's cost per event.)"""
    # One unpacking, then locals: named-tuple attribute access is slower than a local, and this runs per event.
    user_id, event_type, timestamp, source_model, source_id, _metadata, amount, seq, visibility, game, season = event
    if event_type not in _EVENT_TYPES:
        raise InvalidEventError(f"Unknown event type {event_type!r} ({_where(event)}).")
    if not isinstance(user_id, int) or user_id <= 0:
        raise InvalidEventError(f"Invalid user id {user_id!r} ({_where(event)}).")
    if not isinstance(source_id, int) or not source_model:
        raise InvalidEventError(f"Invalid source {source_model!r}:{source_id!r} ({_where(event)}).")
    if not isinstance(timestamp, datetime) or timestamp.tzinfo is None:
        raise InvalidEventError(f"Timestamp must be an aware datetime, got {timestamp!r} ({_where(event)}).")
    if not isinstance(seq, int) or seq < 1:
        raise InvalidEventError(f"seq must be a positive integer ({_where(event)}).")
    if event_type in COIN_EVENTS:
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise InvalidEventError(f"A coin event needs a positive integer amount, got {amount!r} ({_where(event)}).")
    elif event_type in PLACEMENT_AMOUNT_EVENTS:
        if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0):
            raise InvalidEventError(
                f"A placement's amount is a positive integer or none, got {amount!r} ({_where(event)})."
            )
    elif amount is not None:
        raise InvalidEventError(f"Only coin and placement events carry an amount ({_where(event)}).")
    if game is not None and (not isinstance(game, str) or not 0 < len(game) <= 50):
        raise InvalidEventError(f"game must be a string of 1-50 characters, got {game!r} ({_where(event)}).")
    if season is not None and (game is None or not isinstance(season, int) or not 0 <= season <= 32767):
        raise InvalidEventError(f"season must be a non-negative integer with a game, got {season!r} ({_where(event)}).")
    if visibility and visibility not in _VISIBILITIES:
        raise InvalidEventError(f"Unknown visibility {visibility!r} ({_where(event)}).")


def encode_metadata(event: NewEvent) -> str:
    """Validate the event and return its metadata as compact JSON; raises InvalidEventError."""
    validate(event)
    if not isinstance(event.metadata, Mapping) or not all(isinstance(k, str) for k in event.metadata):
        raise InvalidEventError(f"Metadata must be an object with string keys ({_where(event)}).")
    try:
        metadata = event.metadata
        encoded = _JSON.encode(metadata if type(metadata) is dict else dict(metadata))  # the encoder takes dicts
    except (TypeError, ValueError) as exc:
        raise InvalidEventError(f"Metadata is not JSON-serialisable: {exc} ({_where(event)}).") from None
    limit = settings.ACTIVITY_METADATA_MAX_BYTES
    if (len(encoded) if encoded.isascii() else len(encoded.encode())) > limit:
        raise InvalidEventError(
            f"Metadata is {len(encoded.encode())} bytes, above the {limit}-byte bound ({_where(event)})."
        )
    return encoded
