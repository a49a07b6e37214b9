"""Request context for audit rows: a request id (echoed as X-Request-ID) and the client's network, never its address.

RequestContextMiddleware keeps the current request's context in a context variable, so a service deep below a view
(a credit, an erasure) records it without the request being passed down.
"""

from __future__ import annotations

import contextvars
import ipaddress
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept only when it is a plain token; anything else (spaces, markup, 200 characters) is replaced.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    client_network: str
    user_id: int | None = None
    user_is_staff: bool = False


# The request itself, read when an event is recorded: by then authentication has run, wherever the middleware sits.
_current: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("audit_request", default=None)


def current_request_context() -> RequestContext | None:
    request = _current.get()
    return None if request is None else context_of(request)


def truncate_address(address: str | None) -> str:
    """The client's network: IPv4 to its /24, IPv6 to its /48 ("" when there is no valid address)."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def request_id_of(request: HttpRequest) -> str:
    """The id this request carries in the audit trail (set by the middleware; taken from the header otherwise)."""
    existing = getattr(request, "request_id", None)
    if existing:
        return existing
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    return offered if _VALID_REQUEST_ID.match(offered) else uuid.uuid4().hex


def context_of(request: HttpRequest) -> RequestContext:
    # REMOTE_ADDR: the peer as the WSGI server saw it. X-Forwarded-For is not trusted here (any client can send it).
    user = getattr(request, "user", None)
    authenticated = bool(user is not None and user.is_authenticated)
    return RequestContext(
        request_id=request_id_of(request),
        client_network=truncate_address(request.META.get("REMOTE_ADDR")),
        user_id=user.pk if authenticated and user is not None else None,
        user_is_staff=bool(authenticated and user is not None and user.is_staff),
    )


class RequestContextMiddleware:
    """Gives every request an id (the caller's X-Request-ID when valid, else a new one) and echoes it back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = request_id_of(request)  # type: ignore[attr-defined]
        token = _current.set(request)
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)
        response[REQUEST_ID_HEADER] = request.request_id  # type: ignore[attr-defined]
        return response
