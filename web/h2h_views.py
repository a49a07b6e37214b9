"""The head-to-head page /h2h/<player>/<player>/ (public ID or username each); the rule of what it shows lives in
activity.selectors.head_to_head."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET

from activity.privacy import relation_between
from activity.selectors.head_to_head import head_to_head
from web.players import player_by_reference, player_name
from web.presenters import describe_event
from web.views import _next_url, read_errors


@require_GET
@read_errors
def h2h_page(request, a: str, b: str):
    profile_a = player_by_reference(a, request.user)
    profile_b = player_by_reference(b, request.user)
    result = head_to_head(
        relation_between(request.user, profile_a),
        relation_between(request.user, profile_b),
        cursor=request.GET.get("cursor"),
    )
    page = result.matches
    return render(
        request,
        "web/h2h.html",
        {
            "a": profile_a,
            "b": profile_b,
            "a_name": player_name(profile_a),
            "b_name": player_name(profile_b),
            "h2h": result,
            "by_game": sorted(result.by_game.items()),
            "entries": [{"event": e, "view": describe_event(e)} for e in page.items] if page else None,
            "next_url": _next_url(request, page.next_cursor) if page else None,
            "first_page": not request.GET.get("cursor"),
        },
    )
