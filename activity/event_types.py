"""The ledger's vocabulary: event types, their default visibility, and the compensating type of each correctable one."""
from django.db import models


class EventType(models.TextChoices):
    TOURNAMENT_REGISTERED = "tournament_registered"
    TOURNAMENT_JOINED = "tournament_joined"
    TOURNAMENT_COMPLETED = "tournament_completed"
    TOURNAMENT_WON = "tournament_won"
    TOURNAMENT_RUNNER_UP = "tournament_runner_up"
    TOURNAMENT_TOP4 = "tournament_top4"
    MATCH_PLAYED = "match_played"
    MATCH_WON = "match_won"
    MATCH_LOST = "match_lost"
    COINS_EARNED = "coins_earned"
    COINS_SPENT = "coins_spent"
    ACHIEVEMENT_UNLOCKED = "achievement_unlocked"
    TEAM_CREATED = "team_created"
    TEAM_JOINED = "team_joined"
    TEAM_LEFT = "team_left"
    PROFILE_CREATED = "profile_created"
    # Compensations: appended when a recorded outcome is later changed at the source (a dispute resolved the
    # other way, a corrected result). The original event stays; its compensation cancels its effect on the stats.
    MATCH_PLAYED_REVERSED = "match_played_reversed"
    MATCH_WON_REVERSED = "match_won_reversed"
    MATCH_LOST_REVERSED = "match_lost_reversed"
    TOURNAMENT_WON_REVERSED = "tournament_won_reversed"
    TOURNAMENT_RUNNER_UP_REVERSED = "tournament_runner_up_reversed"
    TOURNAMENT_TOP4_REVERSED = "tournament_top4_reversed"


class Visibility(models.TextChoices):
    PUBLIC = "public"
    FOLLOWERS = "followers"
    PRIVATE = "private"


REVERSAL_OF: dict[str, str] = {
    EventType.MATCH_PLAYED: EventType.MATCH_PLAYED_REVERSED,
    EventType.MATCH_WON: EventType.MATCH_WON_REVERSED,
    EventType.MATCH_LOST: EventType.MATCH_LOST_REVERSED,
    EventType.TOURNAMENT_WON: EventType.TOURNAMENT_WON_REVERSED,
    EventType.TOURNAMENT_RUNNER_UP: EventType.TOURNAMENT_RUNNER_UP_REVERSED,
    EventType.TOURNAMENT_TOP4: EventType.TOURNAMENT_TOP4_REVERSED,
}
REVERSED_BASE: dict[str, str] = {rev: base for base, rev in REVERSAL_OF.items()}

COIN_EVENTS = frozenset({EventType.COINS_EARNED, EventType.COINS_SPENT})
MATCH_OUTCOME_EVENTS = frozenset({EventType.MATCH_PLAYED, EventType.MATCH_WON, EventType.MATCH_LOST})
PLACEMENT_EVENTS = frozenset({EventType.TOURNAMENT_WON, EventType.TOURNAMENT_RUNNER_UP, EventType.TOURNAMENT_TOP4})

_DEFAULT_VISIBILITY: dict[str, str] = {
    EventType.COINS_EARNED: Visibility.PRIVATE,
    EventType.COINS_SPENT: Visibility.PRIVATE,
}


def default_visibility(event_type: str) -> str:
    """Coin events are private; everything else (placements, registrations, matches, teams...) is public.

    A compensation inherits the visibility of the event it cancels.
    """
    base = REVERSED_BASE.get(event_type, event_type)
    return _DEFAULT_VISIBILITY.get(base, Visibility.PUBLIC)
