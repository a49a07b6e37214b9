"""The page envelope of every cursor-paginated API list: results, next_cursor / next (the next page's URL) and
previous_cursor / previous (null on the first page)."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.utils.urls import replace_query_param

from web.api import serializers as s


def next_link(request: Request, cursor: str | None) -> str | None:
    return replace_query_param(request.build_absolute_uri(), "cursor", cursor) if cursor else None


def page_document(request: Request, page, item=s.event_data) -> dict:
    previous = getattr(page, "previous_cursor", None)
    return {
        "results": [item(e) for e in page.items],
        "next_cursor": page.next_cursor,
        "next": next_link(request, page.next_cursor),
        "previous_cursor": previous,
        "previous": next_link(request, previous),
    }
