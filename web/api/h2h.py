"""GET /api/h2h/?a=<public_id>&b=<public_id>: the pair's totals, per-game split and (privacy permitting) their
matches, cursor-paginated. The rule: activity.selectors.head_to_head."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from activity.cursors import MAX_CURSOR_LENGTH, MAX_PAGE_SIZE
from activity.privacy import relation_between
from activity.selectors.head_to_head import head_to_head
from web.api import serializers as s
from web.api.paging import page_document
from web.players import player_by_reference, player_name


class H2HQuery(serializers.Serializer):
    a = serializers.CharField(max_length=40, help_text="First player: public ID (DC-YY-NNNNNN) or user id.")
    b = serializers.CharField(max_length=40, help_text="Second player: public ID or user id.")
    cursor = serializers.CharField(required=False, allow_blank=True, max_length=MAX_CURSOR_LENGTH)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE)


class TallySerializer(serializers.Serializer):
    a_wins = serializers.IntegerField(help_text="Completed matches A won (walkovers excluded).")
    b_wins = serializers.IntegerField(help_text="Completed matches B won (walkovers excluded).")
    walkovers = serializers.IntegerField(help_text="Meetings decided without play (forfeits).")


class GameTallySerializer(TallySerializer):
    game = serializers.CharField(allow_blank=True)


class H2HPlayerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    public_id = serializers.CharField(allow_null=True)
    name = serializers.CharField()


class H2HSerializer(TallySerializer):
    a = H2HPlayerSerializer()
    b = H2HPlayerSerializer()
    by_game = GameTallySerializer(many=True)
    matches_visible = serializers.BooleanField(
        help_text="False when either player hides their match history from the requester: totals only."
    )
    matches = s.MatchPageSerializer(allow_null=True, help_text="Their matches from A's side, newest first.")


def _player(profile) -> dict:
    return {"id": profile.pk, "public_id": profile.public_id, "name": player_name(profile)}


class HeadToHeadView(APIView):
    @extend_schema(
        summary="Head-to-head of two players",
        description="Totals and the per-game split are public; the list of matches only when the requester may see "
        "both players' match history (`matches` null otherwise).",
        parameters=[H2HQuery],
        responses={
            200: H2HSerializer,
            400: OpenApiResponse(s.ErrorSerializer, description="Bad parameter or cursor, or a = b."),
            404: OpenApiResponse(s.ErrorSerializer, description="No such player."),
        },
    )
    def get(self, request: Request) -> Response:
        params = H2HQuery(data=request.query_params)
        params.is_valid(raise_exception=True)
        q = params.validated_data
        profile_a = player_by_reference(q["a"], request.user, usernames=False)
        profile_b = player_by_reference(q["b"], request.user, usernames=False)
        result = head_to_head(
            relation_between(request.user, profile_a),
            relation_between(request.user, profile_b),
            cursor=q.get("cursor"),
            limit=q.get("limit"),
        )
        t = result.total
        document = {
            "a": _player(profile_a),
            "b": _player(profile_b),
            "a_wins": t.a_wins,
            "b_wins": t.b_wins,
            "walkovers": t.walkovers,
            "by_game": [
                {"game": game, "a_wins": g.a_wins, "b_wins": g.b_wins, "walkovers": g.walkovers}
                for game, g in result.by_game.items()
            ],
            "matches_visible": result.matches_visible,
            "matches": page_document(request, result.matches, s.match_data) if result.matches else None,
        }
        return Response(H2HSerializer(document).data)
