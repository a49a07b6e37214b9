"""The following feed page, follow / unfollow on the profile page, and the follower / following lists.

Thin views as in web/views.py: the feed selector applies every privacy rule, the follows service every write rule.
The feed is for a signed-in viewer only (anonymous: to the login page). Follow and unfollow are POST forms protected by
Django's CSRF middleware; they redirect back to the profile they were sent from.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from activity.selectors.feed import feed, parse_types
from activity.selectors.follows import followers, following
from activity.selectors.profiles import profile_by_username
from esports.profiles.follows import FollowError
from esports.profiles.follows import follow as follow_player
from esports.profiles.follows import unfollow as unfollow_player
from web.presenters import describe_event
from web.views import _context, _next_url, _subject, read_errors


def feed_entries(items) -> list[dict]:
    """Feed events as the shared event list renders them, each with the player it is about."""
    return [
        {
            "event": e,
            "view": describe_event(e),
            "player": {"public_id": e.player_public_id, "name": e.player_display_name or e.player_username},
            "player_url": reverse("web:public-profile", args=[e.player_public_id])
            if e.player_public_id
            else reverse("web:profile", args=[e.player_username]),
        }
        for e in items
    ]


def _filtered_url(request, **params) -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{request.path}?{query}" if query else request.path


@require_GET
@login_required
@read_errors
def feed_page(request):
    types_raw = request.GET.get("types", "").strip()
    game = request.GET.get("game", "").strip() or None
    page = feed(request.user.pk, cursor=request.GET.get("cursor"), types=parse_types(types_raw), game=game)
    return render(
        request,
        "web/following_feed.html",
        {
            "entries": feed_entries(page.items),
            "next_url": _next_url(request, page.next_cursor, types=types_raw, game=game),
            "newest_url": _filtered_url(request, types=types_raw, game=game),
            "first_page": not request.GET.get("cursor"),
            "game": game or "",
            "types": types_raw,
        },
    )


def _follow_action(request, username: str, *, start: bool):
    profile = profile_by_username(username, request.user)
    try:
        if start:
            follow_player(follower_id=request.user.pk, followee_id=profile.pk)
        else:
            unfollow_player(follower_id=request.user.pk, followee_id=profile.pk)
    except FollowError as exc:
        return render(
            request, "web/error.html", {"status": 400, "title": "Cannot follow", "message": str(exc)}, status=400
        )
    return HttpResponseRedirect(reverse("web:profile", args=[profile.user.get_username()]))


@require_POST
@login_required
@read_errors
def follow_view(request, username: str):
    return _follow_action(request, username, start=True)


@require_POST
@login_required
@read_errors
def unfollow_view(request, username: str):
    return _follow_action(request, username, start=False)


def _people(follows, side: str) -> list[dict]:
    people = []
    for f in follows:
        user = getattr(f, side)
        people.append({"user": user, "profile": user.profile, "since": f.created_at})
    return people


@require_GET
@read_errors
def followers_page(request, username: str):
    return _list_page(request, username, "followers")


@require_GET
@read_errors
def following_page(request, username: str):
    return _list_page(request, username, "following")


def _list_page(request, username: str, which: str):
    profile, relation = _subject(request, username)
    if which == "followers":
        page, side = followers(profile.pk, cursor=request.GET.get("cursor")), "follower"
    else:
        page, side = following(profile.pk, cursor=request.GET.get("cursor")), "followee"
    return render(
        request,
        "web/follow_list.html",
        _context(
            request,
            profile,
            relation,
            which=which,
            people=_people(page.items, side),
            next_url=_next_url(request, page.next_cursor),
            first_page=not request.GET.get("cursor"),
        ),
    )
