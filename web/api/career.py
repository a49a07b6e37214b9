"""Career endpoints over one player: the tournament history as one row per tournament (finish, W-L, date)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from activity.selectors.tournament_rows import tournament_rows
from web.api import serializers as s
from web.api.paging import page_document
from web.api.views import _ERRORS, _USER_ID_PARAM, SubjectView


class TournamentRowsQuery(s.PageQuery):
    game = serializers.CharField(required=False, allow_blank=True, max_length=50)
    season = serializers.IntegerField(required=False, min_value=1900, max_value=2999)


class TournamentRowSerializer(serializers.Serializer):
    tournament_id = serializers.IntegerField()
    name = serializers.CharField()
    game = serializers.CharField(allow_blank=True)
    season = serializers.IntegerField(allow_null=True)
    date = serializers.DateTimeField()
    finish = serializers.CharField(help_text="W, F, SF, QF, R16 ... (the placement, else the round of the last loss).")
    placement = serializers.IntegerField(allow_null=True, help_text="The official placement when one was recorded.")
    wins = serializers.IntegerField(help_text="Matches won in this event.")
    losses = serializers.IntegerField(help_text="Matches lost in this event.")


class TournamentRowPageSerializer(serializers.Serializer):
    results = TournamentRowSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    next = serializers.URLField(allow_null=True)
    participation_hidden = serializers.BooleanField()


def _row(row) -> dict:
    return {
        "tournament_id": row.tournament_id,
        "name": row.name,
        "game": row.game,
        "season": row.season,
        "date": row.date,
        "finish": row.finish,
        "placement": row.placement,
        "wins": row.wins,
        "losses": row.losses,
    }


class UserTournamentRowsView(SubjectView):
    @extend_schema(
        summary="Tournament history, one row per tournament",
        description="Newest first (20 per page by default), filterable by game and season. With participation "
        "hidden from the requester, only tournaments with an official placement.",
        parameters=[_USER_ID_PARAM, TournamentRowsQuery],
        responses={200: TournamentRowPageSerializer, **_ERRORS},
    )
    def get(self, request: Request, user_id: str) -> Response:
        _profile, relation = self.subject(request, user_id)
        params = TournamentRowsQuery(data=request.query_params)
        params.is_valid(raise_exception=True)
        q = params.validated_data
        page = tournament_rows(
            relation, cursor=q.get("cursor"), limit=q.get("limit"), game=q.get("game"), season=q.get("season")
        )
        document = {
            **page_document(request, page, _row),
            "participation_hidden": not relation.can_see_tournament_participation,
        }
        return Response(TournamentRowPageSerializer(document).data)
