"""The rating endpoints (issue 17): a player's rating history in one game (cursor pages) and the per-game rating
leaderboard; plus the pieces the stats and match endpoints add (a player's ratings, each match row's change)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from esports.profiles.selectors import public_ids_of
from stats.ratings.selectors import (
    BOARD_DEFAULT_LIMIT,
    BOARD_MAX_LIMIT,
    rating_history,
    rating_leaderboard,
)
from web.api import serializers as s
from web.api.paging import next_link
from web.api.views import _ERRORS, _PRIVATE_ERRORS, _USER_ID_PARAM, SubjectView, _query

_GAME_PARAM = OpenApiParameter("game", OpenApiTypes.STR, OpenApiParameter.PATH, description="The game.")


class RatingHistoryEntrySerializer(serializers.Serializer):
    match_id = serializers.IntegerField()
    at = serializers.DateTimeField()
    before = serializers.FloatField()
    after = serializers.FloatField()
    change = serializers.FloatField()


class RatingHistoryPageSerializer(s._PageFields):
    game = serializers.CharField()
    results = RatingHistoryEntrySerializer(many=True)


class RatingBoardQuery(serializers.Serializer):
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=BOARD_MAX_LIMIT, default=BOARD_DEFAULT_LIMIT
    )
    min_matches = serializers.IntegerField(
        required=False, min_value=1, max_value=100_000, default=1, help_text="Minimum rated matches to be ranked."
    )


class RatingBoardEntrySerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    user_id = serializers.IntegerField()
    public_id = serializers.CharField(allow_null=True)
    rating = serializers.FloatField()
    peak = serializers.FloatField()
    matches_rated = serializers.IntegerField()


class RatingBoardSerializer(serializers.Serializer):
    game = serializers.CharField()
    min_matches = serializers.IntegerField()
    results = RatingBoardEntrySerializer(many=True)


class UserRatingHistoryView(SubjectView):
    @extend_schema(
        summary="Rating history in one game",
        description="The player's rated matches, newest first in rating order (20 per page by default). 403 when "
        "the player hides their match history from the requester.",
        parameters=[_USER_ID_PARAM, _GAME_PARAM, s.PageQuery],
        responses={200: RatingHistoryPageSerializer, **_PRIVATE_ERRORS},
    )
    def get(self, request: Request, user_id: str, game: str) -> Response:
        _profile, relation = self.subject(request, user_id)
        params = _query(request, s.PageQuery)
        page = rating_history(relation, game[:50], cursor=params.get("cursor"), limit=params.get("limit"))
        document = {
            "game": game[:50],
            "results": [
                {"match_id": h.match_id, "at": h.at, "before": h.before, "after": h.after, "change": h.after - h.before}
                for h in page.items
            ],
            "next_cursor": page.next_cursor,
            "next": next_link(request, page.next_cursor),
        }
        return Response(RatingHistoryPageSerializer(document).data)


class RatingLeaderboardView(APIView):
    @extend_schema(
        summary="Rating leaderboard of a game",
        description="Highest Elo ratings of one game among players with at least `min_matches` rated matches.",
        parameters=[_GAME_PARAM, RatingBoardQuery],
        responses={200: RatingBoardSerializer, 400: _ERRORS[400]},
    )
    def get(self, request: Request, game: str) -> Response:
        params = _query(request, RatingBoardQuery)
        entries = rating_leaderboard(game[:50], min_matches=params["min_matches"], limit=params["limit"])
        public_ids = public_ids_of(e.user_id for e in entries)
        results = [
            {
                "rank": e.rank,
                "user_id": e.user_id,
                "public_id": public_ids.get(e.user_id),
                "rating": e.rating,
                "peak": e.peak,
                "matches_rated": e.matches_rated,
            }
            for e in entries
        ]
        document = {"game": game[:50], "min_matches": params["min_matches"], "results": results}
        return Response(RatingBoardSerializer(document).data)
