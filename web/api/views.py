"""JSON API over the read-side selectors. Views parse and validate input, call one selector, serialize the result.

Authentication: session (the site's login) or HTTP Basic. Reads are open to anyone; the selectors apply the
privacy rules for the requester, and the economy and export endpoints refuse anyone but the player and staff
(401 when anonymous, 403 otherwise). Errors are JSON {"error", "detail"} (web/api/errors.py).
"""

from __future__ import annotations

import re
from dataclasses import asdict

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from activity.privacy import relation_between
from activity.selectors.errors import InvalidQueryError, SubjectNotFound
from activity.selectors.profiles import is_possible_username, profile_by_id, profile_by_username
from activity.selectors.timeline import parse_types
from activity.selectors.tournament_history import tournament_history
from esports.profiles.public_ids import looks_like_public_id
from esports.profiles.selectors import public_ids_of, user_id_for_public_id
from stats.selectors.economy import economy_summary
from stats.selectors.export import user_export
from stats.selectors.first_pages import match_history_page, timeline_page
from stats.selectors.leaderboards import BOARD_TITLES, Board, leaderboard, parse_board
from stats.selectors.lifetime import lifetime_stats
from web.api import serializers as s
from web.money import transaction_row
from web.views import export_with_public_id

_USER_ID = re.compile(r"^[1-9][0-9]{0,18}$")
_MAX_ID = 2**63 - 1
_ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="Bad parameter, id or cursor."),
    404: OpenApiResponse(s.ErrorSerializer, description="No such player."),
}
_PRIVATE_ERRORS = {
    **_ERRORS,
    401: OpenApiResponse(s.ErrorSerializer, description="Not signed in."),
    403: OpenApiResponse(s.ErrorSerializer, description="Only the player and staff may see this."),
}
_USER_ID_PARAM = OpenApiParameter(
    "user_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    pattern=r"^([1-9][0-9]{0,18}|[Dd][Cc]-[0-9]{2}-[0-9]{6,10})$",
    description="The player: their public ID (`DC-YY-NNNNNN`, any letter case; the shareable identity, e.g. "
    "`DC-26-000042`) or their numeric user id. An unknown or malformed public ID is a 404.",
)


class InvalidUserIdError(InvalidQueryError):
    code = "invalid_user_id"


def parse_user_id(raw: str) -> int:
    if not _USER_ID.match(raw or "") or int(raw) > _MAX_ID:
        raise InvalidUserIdError(f"User id must be a positive integer, got {raw[:40]!r}.")
    return int(raw)


def _query(request: Request, serializer_class) -> dict:
    params = serializer_class(data=request.query_params)
    params.is_valid(raise_exception=True)
    return params.validated_data


def _next_link(request: Request, cursor: str | None) -> str | None:
    return replace_query_param(request.build_absolute_uri(), "cursor", cursor) if cursor else None


def _page(request: Request, page, item=s.event_data) -> dict:
    return {
        "results": [item(e) for e in page.items],
        "next_cursor": page.next_cursor,
        "next": _next_link(request, page.next_cursor),
    }


def resolve_user_id(raw: str) -> int:
    """The user id a path segment names: a public ID (DC-...) or a numeric id; raises SubjectNotFound or 400."""
    if looks_like_public_id(raw or ""):
        user_id = user_id_for_public_id(raw)
        if user_id is None:  # malformed or unknown: nobody has it, the same answer as the pages give
            raise SubjectNotFound("No such player.")
        return user_id
    return parse_user_id(raw)


class SubjectView(APIView):
    """A view about one player, addressed by public ID or user id."""

    def subject(self, request: Request, user_id: str, *, with_counts: bool = False):
        profile = profile_by_id(resolve_user_id(user_id), request.user, with_counts=with_counts)
        return profile, relation_between(request.user, profile)


def _profile_document(request: Request, profile, relation) -> dict:
    uid = profile.pk
    # Links carry the public ID, the shareable identity (the user id only for a profile the backfill has not reached).
    key = profile.public_id or uid

    def link(name: str) -> str:
        return request.build_absolute_uri(reverse(name, args=[key]))

    page = (
        reverse("web:public-profile", args=[profile.public_id])
        if profile.public_id
        else reverse("web:profile", args=[profile.user.get_username()])
    )
    links = {
        "self": link("api:user"),
        "stats": link("api:user-stats"),
        "activity": link("api:user-activity"),
        "matches": link("api:user-matches"),
        "tournaments": link("api:user-tournaments"),
        "page": request.build_absolute_uri(page),
    }
    if relation.can_see_economy:
        links.update(economy=link("api:user-economy"), export=link("api:user-export"))
    return {
        "id": uid,
        "public_id": profile.public_id,
        "username": profile.user.get_username(),
        "display_name": profile.display_name,
        "member_since": profile.created_at,
        "followers_count": profile.followers_count,
        "following_count": profile.following_count,
        "viewer": relation.viewer_class.value,
        "match_history_visible": relation.can_see_match_history,
        "tournament_participation_visible": relation.can_see_tournament_participation,
        "economy_visible": relation.can_see_economy,
        "links": links,
    }


class UserView(SubjectView):
    @extend_schema(
        summary="A player's profile", parameters=[_USER_ID_PARAM], responses={200: s.ProfileSerializer, **_ERRORS}
    )
    def get(self, request: Request, user_id: str) -> Response:
        profile, relation = self.subject(request, user_id, with_counts=True)
        return Response(s.ProfileSerializer(_profile_document(request, profile, relation)).data)


class UserLookupView(APIView):
    @extend_schema(
        summary="Find a player by username",
        parameters=[s.UsernameQuery],
        responses={200: s.ProfileSerializer, **_ERRORS},
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("username", "")
        if raw and not is_possible_username(raw):  # a NUL or control character names nobody: 404, as on the pages
            raise SubjectNotFound("No such player.")
        username = _query(request, s.UsernameQuery)["username"]
        profile = profile_by_username(username, request.user, with_counts=True)
        relation = relation_between(request.user, profile)
        return Response(s.ProfileSerializer(_profile_document(request, profile, relation)).data)


class UserStatsView(SubjectView):
    @extend_schema(
        summary="Lifetime stats",
        description="Aggregate counters are public; spending figures and activity times only for the player and staff.",
        parameters=[_USER_ID_PARAM],
        responses={200: s.StatsSerializer, **_ERRORS},
    )
    def get(self, request: Request, user_id: str) -> Response:
        profile, relation = self.subject(request, user_id)
        return Response(s.StatsSerializer({**lifetime_stats(relation), "public_id": profile.public_id}).data)


class UserActivityView(SubjectView):
    @extend_schema(
        summary="Activity timeline",
        description="Major events, newest first (20 per page by default); `types` shows other event types instead.",
        parameters=[_USER_ID_PARAM, s.TimelineQuery],
        responses={200: s.EventPageSerializer, **_ERRORS},
    )
    def get(self, request: Request, user_id: str) -> Response:
        _profile, relation = self.subject(request, user_id)
        params = _query(request, s.TimelineQuery)
        types = parse_types(params.get("types"))
        page = timeline_page(relation, cursor=params.get("cursor"), limit=params.get("limit"), types=types)
        return Response(s.EventPageSerializer(_page(request, page)).data)


class UserMatchesView(SubjectView):
    @extend_schema(
        summary="Match history",
        description="One entry per match, outcome net of corrections (10 per "
        "page by default). 403 when the player hides their match history from the requester.",
        parameters=[_USER_ID_PARAM, s.MatchQuery],
        responses={200: s.MatchPageSerializer, **_PRIVATE_ERRORS},
    )
    def get(self, request: Request, user_id: str) -> Response:
        _profile, relation = self.subject(request, user_id)
        params = _query(request, s.MatchQuery)
        page = match_history_page(
            relation, cursor=params.get("cursor"), limit=params.get("limit"), game=params.get("game")
        )
        return Response(s.MatchPageSerializer(_page(request, page, s.match_data)).data)


class UserTournamentsView(SubjectView):
    @extend_schema(
        summary="Tournament history",
        description="Registrations, check-ins, completions and official placements (20 per page by default).",
        parameters=[_USER_ID_PARAM, s.PageQuery],
        responses={200: s.TournamentPageSerializer, **_ERRORS},
    )
    def get(self, request: Request, user_id: str) -> Response:
        _profile, relation = self.subject(request, user_id)
        params = _query(request, s.PageQuery)
        page = tournament_history(relation, cursor=params.get("cursor"), limit=params.get("limit"))
        document = {**_page(request, page), "participation_hidden": not relation.can_see_tournament_participation}
        return Response(s.TournamentPageSerializer(document).data)


class UserEconomyView(SubjectView):
    @extend_schema(
        summary="DeltaCoin economy",
        description="The wallet's balance and lifetimes and its transaction history (newest first, 20 per page by "
        "default, reversal links as transaction ids); the player and staff only.",
        parameters=[_USER_ID_PARAM, s.PageQuery],
        responses={200: s.EconomySerializer, **_PRIVATE_ERRORS},
    )
    def get(self, request: Request, user_id: str) -> Response:
        _profile, relation = self.subject(request, user_id)
        params = _query(request, s.PageQuery)
        summary = economy_summary(relation, cursor=params.get("cursor"), limit=params.get("limit"))
        document = {
            "balance": summary.balances.balance,
            "lifetime_earned": summary.balances.lifetime_earned,
            "lifetime_spent": summary.balances.lifetime_spent,
            **_page(request, summary.history, transaction_row),
        }
        return Response(s.EconomySerializer(document).data)


class UserExportView(SubjectView):
    @extend_schema(
        summary="GDPR export",
        description="Every event and the stats of the player, as a JSON download; the player and staff only.",
        parameters=[_USER_ID_PARAM],
        responses={200: s.ExportSerializer, **_PRIVATE_ERRORS},
    )
    def get(self, request: Request, user_id: str) -> Response:
        profile, relation = self.subject(request, user_id)
        document = export_with_public_id(user_export(relation, profile), profile)
        response = Response(document)
        response["Content-Disposition"] = f'attachment; filename="deltacrown-export-{profile.pk}.json"'
        response["Cache-Control"] = "private, no-store"
        return response


class LeaderboardView(APIView):
    @extend_schema(
        summary="Leaderboard",
        description="Top players of a board, overall, for one game or one season of a game, with "
        "deterministic tie-breaking. Cached for up to a minute.",
        parameters=[
            OpenApiParameter("board", OpenApiTypes.STR, OpenApiParameter.PATH, enum=[b.value for b in Board]),
            s.LeaderboardQuery,
        ],
        responses={
            200: s.LeaderboardSerializer,
            400: _ERRORS[400],
            404: OpenApiResponse(s.ErrorSerializer, description="No tournament is played in that game."),
        },
    )
    def get(self, request: Request, board: str) -> Response:
        chosen = parse_board(board)
        params = _query(request, s.LeaderboardQuery)
        game = params.get("game") or None
        season = params.get("season")
        entries = leaderboard(
            chosen, limit=params["limit"], game=game, season=season, min_matches=params["min_matches"]
        )
        public_ids = public_ids_of(e.user_id for e in entries)  # one query; boards are cached without them
        document = {
            "board": chosen.value,
            "title": BOARD_TITLES[chosen],
            "game": game,
            "season": season,
            "min_matches": params["min_matches"] if chosen is Board.WIN_RATE else None,
            "results": [{**asdict(e), "public_id": public_ids.get(e.user_id)} for e in entries],
        }
        return Response(s.LeaderboardSerializer(document).data)
