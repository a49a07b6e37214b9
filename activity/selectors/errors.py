"""Errors of the read side that come from what a client asked for (mapped to 4xx by the web layer)."""

from __future__ import annotations


class InvalidQueryError(ValueError):
    """A bad parameter: unknown board, out-of-range page size, malformed filter, invalid cursor (HTTP 400)."""

    code = "invalid_parameter"


class SubjectNotFound(LookupError):
    """No such player, or one this viewer may not look up (an erased or deactivated account) (HTTP 404)."""
