"""JSON API of the following feed, of following / unfollowing, and of the follower / following lists.

GET /api/feed/ is the signed-in viewer's feed (401 when anonymous). POST / DELETE /api/users/<id>/follow/ follow and
unfollow the player (idempotent: 201 when a follow was made, 200 when it existed; 204 either way on DELETE). The lists
are public (see activity.selectors.follows).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from activity.privacy import NotPermitted
from activity.selectors.feed import feed, parse_types
from activity.selectors.follows import followers, following
from esports.profiles.follows import FollowError
from esports.profiles.follows import follow as follow_player
from esports.profiles.follows import unfollow as unfollow_player
from web.api import serializers as s
from web.api.errors import error_response
from web.api.views import _ERRORS, _PRIVATE_ERRORS, _USER_ID_PARAM, SubjectView, _page, _query

SIGN_IN = "Sign in to see the players you follow."


class FeedQuery(s.PageQuery):
    types = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Comma-separated event types (default: the timeline's major events). Economy types are refused.",
    )
    game = serializers.CharField(
        required=False, allow_blank=True, max_length=50, help_text="Only events of this game (the tournament's game)."
    )


class PlayerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    public_id = serializers.CharField(allow_null=True)
    display_name = serializers.CharField(allow_blank=True)
    username = serializers.CharField()


class FeedEventSerializer(s.EventSerializer):
    player = PlayerSerializer()


class FeedPageSerializer(s._PageFields):
    results = FeedEventSerializer(many=True)


class FollowEntrySerializer(serializers.Serializer):
    player = PlayerSerializer()
    since = serializers.DateTimeField(help_text="When the follow was made.")


class FollowPageSerializer(s._PageFields):
    results = FollowEntrySerializer(many=True)


class FollowStateSerializer(serializers.Serializer):
    following = serializers.BooleanField()
    changed = serializers.BooleanField(help_text="Whether this request changed anything.")


def feed_event_data(event) -> dict:
    player = {
        "id": event.user_id,
        "public_id": event.player_public_id,
        "display_name": event.player_display_name,
        "username": event.player_username,
    }
    return {**s.event_data(event), "player": player}


def _require_signed_in(request: Request) -> None:
    if not request.user.is_authenticated or not request.user.is_active:
        raise NotPermitted(SIGN_IN)


class FeedView(APIView):
    @extend_schema(
        summary="Following feed",
        description="The major events of the players the requester follows, newest first (20 per page by default), "
        "as a follower may see them. 401 when not signed in.",
        parameters=[FeedQuery],
        responses={200: FeedPageSerializer, **_PRIVATE_ERRORS},
    )
    def get(self, request: Request) -> Response:
        _require_signed_in(request)
        params = _query(request, FeedQuery)
        page = feed(
            request.user.pk,
            cursor=params.get("cursor"),
            limit=params.get("limit"),
            types=parse_types(params.get("types")),
            game=params.get("game") or None,
        )
        return Response(FeedPageSerializer(_page(request, page, feed_event_data)).data)


def _follow_error(exc: FollowError) -> Response:
    return error_response(status.HTTP_400_BAD_REQUEST, exc.code, str(exc))


class FollowView(SubjectView):
    @extend_schema(
        summary="Follow a player",
        request=None,
        parameters=[_USER_ID_PARAM],
        responses={
            200: OpenApiResponse(FollowStateSerializer, description="Already following."),
            201: OpenApiResponse(FollowStateSerializer, description="Now following."),
            **_PRIVATE_ERRORS,
        },
    )
    def post(self, request: Request, user_id: str) -> Response:
        _require_signed_in(request)
        profile, _relation = self.subject(request, user_id)
        try:
            made = follow_player(follower_id=request.user.pk, followee_id=profile.pk)
        except FollowError as exc:
            return _follow_error(exc)
        document = FollowStateSerializer({"following": True, "changed": made}).data
        return Response(document, status=status.HTTP_201_CREATED if made else status.HTTP_200_OK)

    @extend_schema(
        summary="Unfollow a player",
        parameters=[_USER_ID_PARAM],
        responses={204: OpenApiResponse(description="Not following (any more)."), **_PRIVATE_ERRORS},
    )
    def delete(self, request: Request, user_id: str) -> Response:
        _require_signed_in(request)
        profile, _relation = self.subject(request, user_id)
        unfollow_player(follower_id=request.user.pk, followee_id=profile.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _entry(follow, side: str) -> dict:
    user = getattr(follow, side)
    profile = user.profile
    player = {
        "id": user.pk,
        "public_id": profile.public_id,
        "display_name": profile.display_name,
        "username": user.get_username(),
    }
    return {"player": player, "since": follow.created_at}


class _FollowListView(SubjectView):
    side = ""

    def list(self, request: Request, user_id: str, selector) -> Response:
        profile, _relation = self.subject(request, user_id)
        params = _query(request, s.PageQuery)
        page = selector(profile.pk, cursor=params.get("cursor"), limit=params.get("limit"))
        return Response(FollowPageSerializer(_page(request, page, lambda f: _entry(f, self.side))).data)


class FollowersView(_FollowListView):
    side = "follower"

    @extend_schema(
        summary="Followers",
        description="Who follows the player, newest first (public).",
        parameters=[_USER_ID_PARAM, s.PageQuery],
        responses={200: FollowPageSerializer, **_ERRORS},
    )
    def get(self, request: Request, user_id: str) -> Response:
        return self.list(request, user_id, followers)


class FollowingView(_FollowListView):
    side = "followee"

    @extend_schema(
        summary="Following",
        description="Whom the player follows, newest first (public).",
        parameters=[_USER_ID_PARAM, s.PageQuery],
        responses={200: FollowPageSerializer, **_ERRORS},
    )
    def get(self, request: Request, user_id: str) -> Response:
        return self.list(request, user_id, following)
