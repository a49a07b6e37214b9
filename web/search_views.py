"""The player search page /players/?q= (esports.profiles.search does the finding and ranking)."""

from __future__ import annotations

from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from esports.profiles.search import InvalidSearchError, search_players


@require_GET
def search_page(request):
    raw = request.GET.get("q", "")
    page, error = None, None
    if raw.strip():
        try:
            page = search_players(raw, cursor=request.GET.get("cursor"))
        except InvalidSearchError as exc:
            error = str(exc)

    def link(cursor: str | None) -> str | None:
        return f"{request.path}?{urlencode({'q': raw, 'cursor': cursor})}" if cursor else None

    return render(
        request,
        "web/search.html",
        {
            "q": raw,
            "error": error,
            "hits": page.results if page else None,
            "next_url": link(page.next_cursor) if page else None,
            "previous_url": link(page.previous_cursor) if page else None,
        },
        status=400 if error else 200,
    )
