"""The platform's match service: the one way an outcome is set (moderation calls it to flip or restore one)."""

from __future__ import annotations

from django.utils import timezone

from esports.tournaments.models import Match


class MatchOutcomeError(ValueError):
    """The outcome does not fit the match (the message says why); nothing was written."""


def set_match_outcome(*, match: Match, winner_id: int | None, state: str) -> Match:
    """Set the winner (the other participant loses) and the state of a match the caller holds locked."""
    sides = {match.participant1_id, match.participant2_id}
    if winner_id not in sides:
        raise MatchOutcomeError(f"Registration {winner_id} is not a participant of match {match.pk}.")
    if state not in (Match.State.COMPLETED, Match.State.FORFEIT):
        raise MatchOutcomeError(f"An outcome is completed or forfeit, not {state}.")
    (loser_id,) = sides - {winner_id}
    match.winner_id, match.loser_id, match.state = winner_id, loser_id, state
    match.completed_at = match.completed_at or timezone.now()
    match.save(update_fields=["winner", "loser", "state", "completed_at", "updated_at"])
    return match
