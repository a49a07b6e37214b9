"""Redaction at write: personal data never reaches the audit table.

A key whose name is forbidden (settings: the defaults below plus AUDIT_FORBIDDEN_FIELDS) has its value replaced by
REDACTED at any depth of the JSON; an e-mail address inside any string value is replaced too. The result is also made
canonical for hashing: only dict/list/str/int/bool/None survive (a float or Decimal becomes its str, a date its ISO
form), so what PostgreSQL's jsonb gives back is exactly what was hashed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.conf import settings

REDACTED = "[redacted]"

# Exact key names (case-insensitive) ...
FORBIDDEN_FIELDS: frozenset[str] = frozenset(
    {
        "password",
        "password1",
        "password2",
        "email",
        "first_name",
        "last_name",
        "full_name",
        "display_name",
        "username",
        "real_name",
        "address",
        "street",
        "postal_code",
        "zip_code",
        "phone",
        "phone_number",
        "ip",
        "ip_address",
        "remote_addr",
        "date_of_birth",
        "birth_date",
        "session_key",
        "csrftoken",
    }
)
# ... and parts that make any key forbidden wherever they appear in it ("new_password", "api_token", "email_hash").
FORBIDDEN_PARTS: tuple[str, ...] = ("password", "passwd", "token", "secret", "email", "api_key", "apikey", "cookie")

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
MAX_DEPTH = 20


def forbidden_fields() -> frozenset[str]:
    extra = getattr(settings, "AUDIT_FORBIDDEN_FIELDS", ())
    return FORBIDDEN_FIELDS | {str(name).lower() for name in extra}


def is_forbidden(key: str, names: frozenset[str] | None = None) -> bool:
    lowered = key.lower()
    return lowered in (names if names is not None else forbidden_fields()) or any(p in lowered for p in FORBIDDEN_PARTS)


def redact(value: Any) -> Any:
    """A JSON-safe, canonical copy of `value` with every forbidden field's value replaced by REDACTED."""
    return _clean(value, forbidden_fields(), 0)


def _clean(value: Any, names: frozenset[str], depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ValueError(f"audit changes nest deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return EMAIL.sub(REDACTED, value.replace("\x00", ""))  # jsonb cannot store NUL
    if isinstance(value, float | Decimal):
        return str(value)  # jsonb would re-spell 1e20 as 100000000000000000000 and break the hash
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            name = _clean(str(key), names, depth + 1)
            out[name] = REDACTED if is_forbidden(str(key), names) else _clean(item, names, depth + 1)
        return out
    if isinstance(value, Iterable) and not isinstance(value, bytes | bytearray):
        return [_clean(item, names, depth + 1) for item in value]
    return _clean(str(value), names, depth + 1)
