"""Career endpoints over one player: the tournament history as one row per tournament (finish, W-L, date), and the
season-by-season record."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from activity.selectors.tournament_rows import tournament_rows
from stats.selectors.seasons import season_table
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


class SeasonSerializer(serializers.Serializer):
    season = serializers.IntegerField()
    played = serializers.IntegerField(help_text="Matches played (a walkover is played, neither won nor lost).")
    wins = serializers.IntegerField()
    losses = serializers.IntegerField()
    win_rate = serializers.FloatField(help_text="Percent of completed matches won, 2 decimals.")
    titles = serializers.IntegerField()
    finals = serializers.IntegerField(help_text="Finals reached (won or lost).")
    average_placement = serializers.FloatField(
        allow_null=True,
        help_text="Mean of the season's placements of 10 or better (1 title, 5 quarter-final...); null with none.",
    )


class SeasonsSerializer(serializers.Serializer):
    results = SeasonSerializer(many=True, help_text="Oldest season first.")


class UserSeasonsView(SubjectView):
    @extend_schema(
        summary="Season-by-season record",
        description="Aggregate results per season from the per-season projection, games summed (public, like the "
        "lifetime counters).",
        parameters=[_USER_ID_PARAM],
        responses={200: SeasonsSerializer, **_ERRORS},
    )
    def get(self, request: Request, user_id: str) -> Response:
        profile, _relation = self.subject(request, user_id)
        results = [
            {
                "season": s.season,
                "played": s.played,
                "wins": s.wins,
                "losses": s.losses,
                "win_rate": s.win_rate,
                "titles": s.titles,
                "finals": s.finals,
                "average_placement": None if s.average_placement is None else float(s.average_placement),
            }
            for s in season_table(profile.pk)
        ]
        return Response(SeasonsSerializer({"results": results}).data)
