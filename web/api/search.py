"""GET /api/users/search/?q=: players by display name or username, ranked (esports.profiles.search)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from esports.profiles.search import MAX_LIMIT, MAX_QUERY_LENGTH, MIN_QUERY_LENGTH, InvalidSearchError, search_players
from web.api import serializers as s
from web.api.errors import error_response
from web.api.paging import next_link


class SearchQuery(serializers.Serializer):
    q = serializers.CharField(
        min_length=MIN_QUERY_LENGTH, max_length=MAX_QUERY_LENGTH, help_text="Part of a display name or username."
    )
    cursor = serializers.CharField(required=False, allow_blank=True, max_length=200)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT)


class SearchHitSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    public_id = serializers.CharField(allow_null=True)
    username = serializers.CharField()
    display_name = serializers.CharField(allow_blank=True)
    match = serializers.ChoiceField(["exact", "prefix", "similar"], help_text="How the name matched (the rank).")
    similarity = serializers.FloatField(help_text="pg_trgm word similarity of the query to the closer name, 0-1.")
    url = serializers.URLField(help_text="The player's API document.")


class SearchPageSerializer(serializers.Serializer):
    results = SearchHitSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    next = serializers.URLField(allow_null=True)
    previous_cursor = serializers.CharField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


_MATCH = {0: "exact", 1: "prefix", 2: "similar"}


class UserSearchView(APIView):
    @extend_schema(
        summary="Find players by name",
        description="Exact names first, then names (or a word of them) starting with the query, then similar names "
        "(misspellings); 20 per page by default.",
        parameters=[SearchQuery],
        responses={200: SearchPageSerializer, 400: OpenApiResponse(s.ErrorSerializer, description="Bad query.")},
    )
    def get(self, request: Request) -> Response:
        params = SearchQuery(data=request.query_params)
        params.is_valid(raise_exception=True)
        q = params.validated_data
        try:
            page = search_players(q["q"], cursor=q.get("cursor"), limit=q.get("limit"))
        except InvalidSearchError as exc:
            return error_response(400, exc.code, str(exc))
        results = [
            {
                "id": h.user_id,
                "public_id": h.public_id,
                "username": h.username,
                "display_name": h.display_name,
                "match": _MATCH[h.rank],
                "similarity": round(float(h.score), 4),
                "url": request.build_absolute_uri(reverse("api:user", args=[h.public_id or h.user_id])),
            }
            for h in page.results
        ]
        document = {
            "results": results,
            "next_cursor": page.next_cursor,
            "next": next_link(request, page.next_cursor),
            "previous_cursor": page.previous_cursor,
            "previous": next_link(request, page.previous_cursor),
        }
        return Response(SearchPageSerializer(document).data)
