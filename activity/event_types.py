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
    LEVEL_UP = "level_up"  # metadata `level`: a multiple of 5 the profile's level reached
    KYC_VERIFIED = "kyc_verified"  # private
    DISPUTE_FILED = "dispute_filed"  # private: the filer and staff
    # metadata `placement`: 1-4 from the result, 5/9/17/33/65 from the knockout round of the entrant's last loss;
    # `amount` = the placement when it counts towards average_placement (<= 10), none otherwise.
    TOURNAMENT_PLACED = "tournament_placed"
    # Compensations: appended when a recorded outcome is later changed at the source (a dispute resolved the
    # other way, a corrected result). The original event stays; its compensation cancels its effect on the stats.
    MATCH_PLAYED_REVERSED = "match_played_reversed"
    MATCH_WON_REVERSED = "match_won_reversed"
    MATCH_LOST_REVERSED = "match_lost_reversed"
    TOURNAMENT_WON_REVERSED = "tournament_won_reversed"
    TOURNAMENT_RUNNER_UP_REVERSED = "tournament_runner_up_reversed"
    TOURNAMENT_TOP4_REVERSED = "tournament_top4_reversed"
    TOURNAMENT_PLACED_REVERSED = "tournament_placed_reversed"
    # Compensations of a deleted source row (and of a re-joined membership's team_left): every base type a source
    # records can be cancelled, so deleting a recorded row leaves the counters as if it never existed.
    TOURNAMENT_REGISTERED_REVERSED = "tournament_registered_reversed"
    TOURNAMENT_JOINED_REVERSED = "tournament_joined_reversed"
    TOURNAMENT_COMPLETED_REVERSED = "tournament_completed_reversed"
    COINS_EARNED_REVERSED = "coins_earned_reversed"
    COINS_SPENT_REVERSED = "coins_spent_reversed"
    ACHIEVEMENT_UNLOCKED_REVERSED = "achievement_unlocked_reversed"
    TEAM_CREATED_REVERSED = "team_created_reversed"
    TEAM_JOINED_REVERSED = "team_joined_reversed"
    TEAM_LEFT_REVERSED = "team_left_reversed"
    DISPUTE_FILED_REVERSED = "dispute_filed_reversed"  # a deleted dispute


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
    EventType.TOURNAMENT_PLACED: EventType.TOURNAMENT_PLACED_REVERSED,
    EventType.TOURNAMENT_REGISTERED: EventType.TOURNAMENT_REGISTERED_REVERSED,
    EventType.TOURNAMENT_JOINED: EventType.TOURNAMENT_JOINED_REVERSED,
    EventType.TOURNAMENT_COMPLETED: EventType.TOURNAMENT_COMPLETED_REVERSED,
    EventType.COINS_EARNED: EventType.COINS_EARNED_REVERSED,
    EventType.COINS_SPENT: EventType.COINS_SPENT_REVERSED,
    EventType.ACHIEVEMENT_UNLOCKED: EventType.ACHIEVEMENT_UNLOCKED_REVERSED,
    EventType.TEAM_CREATED: EventType.TEAM_CREATED_REVERSED,
    EventType.TEAM_JOINED: EventType.TEAM_JOINED_REVERSED,
    EventType.TEAM_LEFT: EventType.TEAM_LEFT_REVERSED,
    EventType.DISPUTE_FILED: EventType.DISPUTE_FILED_REVERSED,
}
REVERSED_BASE: dict[str, str] = {rev: base for base, rev in REVERSAL_OF.items()}

# Events that carry an amount: a coin compensation carries the amount it cancels (the counters net the sums).
COIN_EVENTS = frozenset(
    {EventType.COINS_EARNED, EventType.COINS_SPENT, EventType.COINS_EARNED_REVERSED, EventType.COINS_SPENT_REVERSED}
)
MATCH_OUTCOME_EVENTS = frozenset({EventType.MATCH_PLAYED, EventType.MATCH_WON, EventType.MATCH_LOST})
PLACEMENT_EVENTS = frozenset({EventType.TOURNAMENT_WON, EventType.TOURNAMENT_RUNNER_UP, EventType.TOURNAMENT_TOP4})
# Events that may carry an amount without being coin events: a placement counted towards the average carries it
# (positive; a compensation carries the amount it cancels), any other placement none.
PLACEMENT_AMOUNT_EVENTS = frozenset({EventType.TOURNAMENT_PLACED, EventType.TOURNAMENT_PLACED_REVERSED})
# Types whose events carry a value (a metadata key) that is part of what their source row implies: a row's
# authority over them covers the value too, so a changed value is compensated and re-recorded like a changed
# outcome (a corrected match moves an entrant from placement 9 to 5).
VALUED_EVENTS: dict[str, str] = {EventType.TOURNAMENT_PLACED: "placement"}

_DEFAULT_VISIBILITY: dict[str, str] = {
    EventType.COINS_EARNED: Visibility.PRIVATE,
    EventType.COINS_SPENT: Visibility.PRIVATE,
    EventType.KYC_VERIFIED: Visibility.PRIVATE,
    EventType.DISPUTE_FILED: Visibility.PRIVATE,
}


def default_visibility(event_type: str) -> str:
    """Coin events and identity verification are private; everything else (placements, registrations, matches,
    teams...) is public.

    A compensation inherits the visibility of the event it cancels.
    """
    base = REVERSED_BASE.get(event_type, event_type)
    return _DEFAULT_VISIBILITY.get(base, Visibility.PUBLIC)
