"""Player pages: profile, activity timeline, match and tournament history, economy, GDPR export, leaderboards.

Views only translate HTTP to selector calls and back; every privacy rule is applied by the selectors. Bad input is a
400 page, an unknown (or erased) player a 404, a surface the viewer may not see a 403 page; never a 500.
"""

from __future__ import annotations

import json
from functools import wraps

from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from activity.privacy import NotPermitted, ViewerClass, relation_between
from activity.selectors.errors import InvalidQueryError, SubjectNotFound
from activity.selectors.profiles import profile_by_id, profile_by_username
from activity.selectors.timeline import parse_types
from activity.selectors.tournament_rows import tournament_rows
from esports.profiles.selectors import user_id_for_public_id
from stats.ratings.selectors import ratings_of
from stats.selectors.economy import economy_summary
from stats.selectors.export import user_export
from stats.selectors.first_pages import match_history_page, timeline_page
from stats.selectors.leaderboards import BOARD_TITLES, DEFAULT_MIN_MATCHES, Board, leaderboard, parse_board
from stats.selectors.lifetime import lifetime_stats
from web.api.rating_fields import attach_rating_changes
from web.career import FORM_LENGTH, career_charts, rating_charts
from web.money import transaction_row
from web.presenters import describe_event

PROFILE_RECENT = 8
PROFILE_MATCHES = 5


def read_errors(view):
    """Map the read side's errors to proper pages."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except SubjectNotFound:
            raise Http404("No such player.") from None
        except InvalidQueryError as exc:
            return render(
                request, "web/error.html", {"status": 400, "title": "Bad request", "message": str(exc)}, status=400
            )
        except NotPermitted as exc:
            return render(
                request, "web/error.html", {"status": 403, "title": "Private", "message": str(exc)}, status=403
            )

    return wrapper


def _entries(items):
    return [{"event": e, "view": describe_event(e)} for e in items]


def _next_url(request, cursor: str | None, **params) -> str | None:
    if cursor is None:
        return None
    query = {k: v for k, v in params.items() if v}
    query["cursor"] = cursor
    return f"{request.path}?{urlencode(query)}"


def _subject(request, username: str):
    # The follower counts of the header come in the same query (two correlated counts on the follow indexes).
    profile = profile_by_username(username, request.user, with_counts=True)
    return profile, relation_between(request.user, profile)


def _context(request, profile, relation, **extra) -> dict:
    return {
        "subject": profile,
        "relation": relation,
        "is_self": relation.viewer_class is ViewerClass.SELF,
        "is_staff_view": relation.viewer_class is ViewerClass.STAFF,
        **extra,
    }


@require_GET
def home(request):
    return HttpResponseRedirect(reverse("web:leaderboards"))


@require_GET
@read_errors
def profile_page(request, username: str):
    profile, relation = _subject(request, username)
    return _profile_overview(request, profile, relation)


@require_GET
@read_errors
def public_profile_page(request, public_id: str):
    """The profile at its shareable address /p/DC-YY-NNNNNN/ (any letter case); unknown or malformed: 404."""
    user_id = user_id_for_public_id(public_id)
    if user_id is None:
        raise SubjectNotFound("No such player.")
    profile = profile_by_id(user_id, request.user, with_counts=True)
    return _profile_overview(request, profile, relation_between(request.user, profile))


def _profile_overview(request, profile, relation):
    stats = lifetime_stats(relation)
    recent = timeline_page(relation, limit=PROFILE_RECENT)
    # One page serves both the latest matches and the recent-form chart (the last FORM_LENGTH results).
    matches = match_history_page(relation, limit=FORM_LENGTH) if relation.can_see_match_history else None
    return render(
        request,
        "web/profile.html",
        _context(
            request,
            profile,
            relation,
            stats=stats,
            recent=_entries(recent.items),
            more_activity=recent.has_more,
            matches=_entries(matches.items[:PROFILE_MATCHES]) if matches else None,
            ratings=ratings_of(profile.pk),
            rating_charts=rating_charts(profile, relation),
            **career_charts(profile, matches.items if matches else None),
        ),
    )


@require_GET
@read_errors
def activity_page(request, username: str):
    profile, relation = _subject(request, username)
    raw_types = request.GET.get("types", "")
    page = timeline_page(relation, cursor=request.GET.get("cursor"), types=parse_types(raw_types))
    return render(
        request,
        "web/activity.html",
        _context(
            request,
            profile,
            relation,
            entries=_entries(page.items),
            next_url=_next_url(request, page.next_cursor, types=raw_types),
            first_page=not request.GET.get("cursor"),
            types=raw_types,
        ),
    )


@require_GET
@read_errors
def matches_page(request, username: str):
    profile, relation = _subject(request, username)
    game = request.GET.get("game", "").strip() or None
    page = None
    if relation.can_see_match_history:
        page = match_history_page(relation, cursor=request.GET.get("cursor"), game=game)
        attach_rating_changes(relation.subject_id, page.items)
    return render(
        request,
        "web/matches.html",
        _context(
            request,
            profile,
            relation,
            game=game or "",
            entries=_entries(page.items) if page else None,
            next_url=_next_url(request, page.next_cursor, game=game) if page else None,
            first_page=not request.GET.get("cursor"),
        ),
    )


@require_GET
@read_errors
def tournaments_page(request, username: str):
    """One row per tournament (finish, W-L, date), filterable by game and season."""
    profile, relation = _subject(request, username)
    game = request.GET.get("game", "").strip() or None
    season = request.GET.get("season", "").strip() or None
    page = tournament_rows(relation, cursor=request.GET.get("cursor"), game=game, season=season)
    return render(
        request,
        "web/tournaments.html",
        _context(
            request,
            profile,
            relation,
            rows=page.items,
            game=game or "",
            season=season or "",
            next_url=_next_url(request, page.next_cursor, game=game, season=season),
            participation_hidden=not relation.can_see_tournament_participation,
            first_page=not request.GET.get("cursor"),
        ),
    )


@require_GET
@read_errors
def economy_page(request, username: str):
    profile, relation = _subject(request, username)
    summary = economy_summary(relation, cursor=request.GET.get("cursor"))
    return render(
        request,
        "web/economy.html",
        _context(
            request,
            profile,
            relation,
            summary=summary,
            transactions=[transaction_row(t) for t in summary.history.items],
            next_url=_next_url(request, summary.history.next_cursor),
            first_page=not request.GET.get("cursor"),
        ),
    )


@require_GET
@read_errors
def export_download(request, username: str):
    profile, relation = _subject(request, username)
    document = export_with_public_id(user_export(relation, profile), profile)
    response = HttpResponse(
        json.dumps(document, indent=2, sort_keys=True, default=str), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="deltacrown-export-{profile.pk}.json"'
    response["Cache-Control"] = "private, no-store"
    return response


def export_with_public_id(document: dict, profile) -> dict:
    """The GDPR export names the player's public ID too (it is theirs, and public)."""
    document.setdefault("profile", {})["public_id"] = profile.public_id
    return document


def _int_param(request, name: str, default: int) -> int:
    raw = request.GET.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidQueryError(f"{name} must be an integer.") from None


@require_GET
@read_errors
def leaderboards_page(request):
    board = parse_board(request.GET.get("board") or Board.TOURNAMENTS_WON)
    game = request.GET.get("game", "").strip() or None
    season = _int_param(request, "season", 0) if request.GET.get("season", "") != "" else None
    min_matches = _int_param(request, "min_matches", DEFAULT_MIN_MATCHES)
    entries = leaderboard(board, game=game, season=season, min_matches=min_matches)
    scope = {**({"game": game} if game else {}), **({"season": season} if season is not None else {})}
    tabs = [
        {
            "board": b,
            "title": BOARD_TITLES[b],
            "active": b is board,
            "url": f"{request.path}?{urlencode({'board': b.value, **scope})}",
        }
        for b in Board
        if not (game and b is Board.TOTAL_EARNED)
    ]
    return render(
        request,
        "web/leaderboards.html",
        {
            "board": board,
            "board_title": BOARD_TITLES[board],
            "tabs": tabs,
            "entries": entries,
            "game": game or "",
            "season": "" if season is None else season,
            "min_matches": min_matches,
            "is_win_rate": board is Board.WIN_RATE,
        },
    )
