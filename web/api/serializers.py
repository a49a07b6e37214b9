"""Serializers of the JSON API: query parameters in, response documents out (they also drive the OpenAPI schema)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from activity.cursors import MAX_CURSOR_LENGTH, MAX_PAGE_SIZE
from activity.event_types import EventType, Visibility
from activity.privacy import PRIVATE_STAT_FIELDS, ViewerClass
from activity.selectors.match_history import Outcome
from stats.counters import COUNTER_FIELDS
from stats.selectors.leaderboards import (
    DEFAULT_LIMIT,
    DEFAULT_MIN_MATCHES,
    MAX_LIMIT,
    MAX_MIN_MATCHES,
    MAX_SEASON,
    Board,
)
from web.api.rating_fields import RatingSerializer
from web.presenters import describe_event

# --- query parameters --------------------------------------------------------------------------------------------


class PageQuery(serializers.Serializer):
    cursor = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_CURSOR_LENGTH,
        help_text="Opaque cursor: `next_cursor` of the previous page. Omit for the first page.",
    )
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_PAGE_SIZE,
        help_text=f"Page size, 1-{MAX_PAGE_SIZE} (default depends on the list).",
    )


class TimelineQuery(PageQuery):
    types = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Comma-separated event types to show instead of the major events (privacy still applies).",
    )


class MatchQuery(PageQuery):
    game = serializers.CharField(
        required=False, allow_blank=True, max_length=50, help_text="Only matches of this game (the tournament's game)."
    )


class LeaderboardQuery(serializers.Serializer):
    game = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=50,
        help_text="Rank within one game (not available for total_earned).",
    )
    season = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_SEASON,
        help_text="Rank within one season of the game (needs game).",
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    min_matches = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_MIN_MATCHES,
        default=DEFAULT_MIN_MATCHES,
        help_text="win_rate board only: minimum matches played to be ranked.",
    )


class UsernameQuery(serializers.Serializer):
    username = serializers.CharField(max_length=150)


# --- responses ---------------------------------------------------------------------------------------------------


def _public_id_field(help_text_suffix: str = "", **kwargs) -> serializers.CharField:
    return serializers.CharField(
        allow_null=True,
        help_text="The player's public ID, DC-YY-NNNNNN (always public; null only for a profile not yet backfilled)."
        + help_text_suffix,
        **kwargs,
    )


def event_data(event) -> dict:
    view = describe_event(event)
    return {
        "id": event.id,
        "event_type": event.event_type,
        "timestamp": event.timestamp,
        "visibility": event.visibility,
        "title": view.title,
        "detail": view.detail,
        "kind": view.kind,
        "amount": event.amount,
        "metadata": event.metadata or {},
    }


def opponent_data(opponent) -> dict | None:
    if opponent is None:
        return None
    return {
        "kind": opponent.kind,
        "name": opponent.name,
        "public_id": opponent.public_id,
        "username": opponent.username,
    }


def match_data(event) -> dict:
    meta = event.metadata or {}
    return {
        **event_data(event),
        "match_id": event.match_id,
        "outcome": event.outcome,
        "opponent": opponent_data(event.opponent),
        "score": event.score,
        "tournament": meta.get("tournament"),
        "tournament_id": meta.get("tournament_id"),
        "game": meta.get("game"),
        "round": meta.get("round"),
        "rating_change": getattr(event, "rating_change", None),
    }


class EventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event_type = serializers.ChoiceField(choices=EventType.choices)
    timestamp = serializers.DateTimeField(help_text="When it happened at the source.")
    visibility = serializers.ChoiceField(choices=Visibility.choices)
    title = serializers.CharField(help_text="Human-readable summary, e.g. 'Won Spring Cup'.")
    detail = serializers.CharField(allow_blank=True)
    kind = serializers.CharField(
        help_text="Presentation category: trophy, medal, match, win, coins, team, correction..."
    )
    amount = serializers.IntegerField(allow_null=True, help_text="DeltaCoins; coin events only (self and staff).")
    metadata = serializers.DictField(help_text="Event-specific details copied from the source at recording time.")


class OpponentSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(["player", "team"])
    name = serializers.CharField(help_text="Display name (or username) of the player, or the team's name.")
    public_id = _public_id_field(help_text_suffix=" Null for a team.")
    username = serializers.CharField(allow_null=True)


class MatchEntrySerializer(EventSerializer):
    match_id = serializers.IntegerField(help_text="The match's id.")
    outcome = serializers.ChoiceField(
        choices=[(o.value, o.value) for o in Outcome], help_text="As it stands now, corrections included."
    )
    opponent = OpponentSerializer(allow_null=True, help_text="Null when the match row no longer exists.")
    score = serializers.CharField(allow_blank=True, help_text="As recorded by the source, e.g. '6-4 3-6 7-6(5)'.")
    tournament = serializers.CharField(allow_null=True)
    tournament_id = serializers.IntegerField(allow_null=True)
    game = serializers.CharField(allow_null=True)
    round = serializers.CharField(allow_null=True)
    rating_change = serializers.FloatField(allow_null=True, help_text="The player's Elo change; null when unrated.")


class _PageFields(serializers.Serializer):
    next_cursor = serializers.CharField(
        allow_null=True, help_text="Pass as `cursor` for the next page; null at the end."
    )
    next = serializers.URLField(allow_null=True, help_text="The next page's URL; null at the end.")
    previous_cursor = serializers.CharField(
        allow_null=True, required=False, help_text="Pass as `cursor` for the previous page; null on the first page."
    )
    previous = serializers.URLField(allow_null=True, required=False, help_text="The previous page's URL.")


class EventPageSerializer(_PageFields):
    results = EventSerializer(many=True)


class MatchPageSerializer(_PageFields):
    results = MatchEntrySerializer(many=True)


class TournamentPageSerializer(EventPageSerializer):
    participation_hidden = serializers.BooleanField(
        help_text="True when the player hides their participation from this viewer: "
        "only official placements are listed."
    )


class CurrentTeamSerializer(serializers.Serializer):
    team_id = serializers.IntegerField()
    team = serializers.CharField()
    joined_at = serializers.DateTimeField()


def _stats_fields() -> dict:
    private = "Self and staff only."
    fields: dict = {"user_id": serializers.IntegerField(), "public_id": _public_id_field(required=False)}
    for name in COUNTER_FIELDS:  # every counter of the projection, whatever it grows to
        fields[name] = (
            serializers.IntegerField(required=False, help_text=private)
            if name in PRIVATE_STAT_FIELDS  # total_spent, disputes_filed
            else serializers.IntegerField()
        )
    fields.update(
        win_rate=serializers.DecimalField(max_digits=5, decimal_places=2, help_text="Percent of matches won."),
        tournament_win_rate=serializers.DecimalField(
            max_digits=5, decimal_places=2, help_text="Percent of tournaments played that were won."
        ),
        average_placement=serializers.DecimalField(
            max_digits=5,
            decimal_places=2,
            allow_null=True,
            help_text="Mean of the placements of 10 or better (1 winner, 2 runner-up, 3-4 semi-final, 5 quarter-final, "
            "9 round of 16); null with none.",
        ),
        net_earnings=serializers.DecimalField(max_digits=20, decimal_places=0, required=False, help_text=private),
        last_activity_at=serializers.DateTimeField(allow_null=True, required=False, help_text=private),
        stats_updated_at=serializers.DateTimeField(allow_null=True, required=False, help_text=private),
        current_teams=CurrentTeamSerializer(many=True, required=False, help_text="Active team memberships."),
        ratings=RatingSerializer(many=True, help_text="Elo rating and peak per game (stats.ratings)."),
    )
    return fields


StatsSerializer = type(
    "StatsSerializer",
    (serializers.Serializer,),
    {
        "__module__": __name__,
        "__doc__": "Lifetime stats (the projection's counters, net of corrections).",
        **_stats_fields(),
    },
)


class ProfileSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    public_id = _public_id_field()
    username = serializers.CharField()
    display_name = serializers.CharField(allow_blank=True)
    member_since = serializers.DateTimeField()
    followers_count = serializers.IntegerField()
    following_count = serializers.IntegerField()
    viewer = serializers.ChoiceField(
        choices=[(v.value, v.value) for v in ViewerClass], help_text="What the requester is to this player."
    )
    match_history_visible = serializers.BooleanField()
    tournament_participation_visible = serializers.BooleanField()
    economy_visible = serializers.BooleanField()
    links = serializers.DictField(child=serializers.URLField())


class TransactionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    amount = serializers.IntegerField(help_text="DeltaCoins, signed: positive credits the wallet, negative debits it.")
    reason = serializers.CharField()
    side = serializers.ChoiceField(
        ["earned", "spent"], help_text="The lifetime it counts in (a reversal counts on the side it cancels)."
    )
    title = serializers.CharField()
    reverses = serializers.IntegerField(allow_null=True, help_text="The transaction this one reverses.")
    reversed_by = serializers.IntegerField(allow_null=True, help_text="The transaction that reversed this one.")


class EconomySerializer(_PageFields):
    balance = serializers.IntegerField(help_text="The wallet's balance now.")
    lifetime_earned = serializers.IntegerField()
    lifetime_spent = serializers.IntegerField()
    results = TransactionSerializer(many=True, help_text="The wallet's transactions, newest first.")


@extend_schema_field(OpenApiTypes.NUMBER)
class RankedValueField(serializers.Field):
    """A board's figure as a JSON number (the selector keeps it as the text it shows, e.g. "66.67")."""

    def to_representation(self, value):
        text = str(value)
        return float(text) if "." in text else int(text)


class LeaderboardEntrySerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    user_id = serializers.IntegerField()
    public_id = _public_id_field()
    username = serializers.CharField()
    display_name = serializers.CharField(allow_blank=True)
    value = RankedValueField(help_text="The ranked figure, a number: a count, DeltaCoins, or a percentage.")
    tournaments_won = serializers.IntegerField()
    tournaments_runner_up = serializers.IntegerField()
    matches_played = serializers.IntegerField()
    matches_won = serializers.IntegerField()
    win_rate = serializers.DecimalField(max_digits=5, decimal_places=2)
    total_earned = serializers.IntegerField(allow_null=True, help_text="Null on per-game boards.")


class LeaderboardSerializer(serializers.Serializer):
    board = serializers.ChoiceField(choices=[(b.value, b.value) for b in Board])
    title = serializers.CharField()
    game = serializers.CharField(allow_null=True)
    season = serializers.IntegerField(allow_null=True)
    min_matches = serializers.IntegerField(allow_null=True, help_text="win_rate board only.")
    results = LeaderboardEntrySerializer(many=True)


class ExportEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event_type = serializers.ChoiceField(choices=EventType.choices)
    timestamp = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    amount = serializers.IntegerField(allow_null=True)
    metadata = serializers.DictField()
    visibility = serializers.ChoiceField(choices=Visibility.choices)
    source_model = serializers.CharField()
    source_id = serializers.IntegerField()
    seq = serializers.IntegerField()


class ExportUserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    first_name = serializers.CharField(allow_blank=True)
    last_name = serializers.CharField(allow_blank=True)
    email = serializers.CharField(allow_blank=True)
    date_joined = serializers.DateTimeField()


class ExportProfileSerializer(serializers.Serializer):
    public_id = _public_id_field()
    display_name = serializers.CharField(allow_blank=True)
    show_match_history = serializers.BooleanField()
    show_tournament_stats = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class ExportSerializer(serializers.Serializer):
    format_version = serializers.IntegerField()
    exported_at = serializers.DateTimeField()
    user = ExportUserSerializer()
    profile = ExportProfileSerializer()
    stats = StatsSerializer()
    events = ExportEventSerializer(many=True, help_text="Every event, all visibilities, oldest first.")


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="Machine-readable code, e.g. not_found, invalid_cursor, invalid_parameter.")
    detail = serializers.CharField(help_text="What was wrong, for a person.")
    fields = serializers.DictField(required=False, help_text="Per-parameter messages (invalid_parameter).")
