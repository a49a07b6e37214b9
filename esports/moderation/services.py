"""The one write path of disputes: filing puts the match in `disputed`; upholding flips its outcome, rejecting
restores it, both through the platform's match service (esports.tournaments.services). Keyword-only arguments; each
call is one transaction holding the match row locked, so two moderators cannot resolve the same dispute twice.

The ledger follows from the rows (activity derives dispute_filed from the dispute, and the match's new outcome
compensates the old one), as for any other source change.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from esports.moderation.models import Dispute
from esports.tournaments.models import Match
from esports.tournaments.services import set_match_outcome

DISPUTABLE_STATES = (Match.State.COMPLETED, Match.State.FORFEIT)
MAX_REASON = 2000


class DisputeError(ValueError):
    """The dispute cannot be filed or resolved (the message says why); nothing was written."""


def file_dispute(*, match_id: int, filed_by_id: int, reason: str) -> Dispute:
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise DisputeError(f"A dispute needs a reason of 1-{MAX_REASON} characters.")
    with transaction.atomic():
        match = Match.objects.select_for_update().filter(pk=match_id).first()
        if match is None:
            raise DisputeError(f"No match {match_id}.")
        if match.state not in DISPUTABLE_STATES:
            raise DisputeError(
                f"Only a completed or forfeited match can be disputed; match {match_id} is {match.state}."
            )
        dispute = Dispute.objects.create(
            match=match, filed_by_id=filed_by_id, reason=reason, match_state_before=match.state
        )
        match.state = Match.State.DISPUTED
        match.save(update_fields=["state", "updated_at"])
    return dispute


def uphold_dispute(*, dispute_id: int) -> Dispute:
    """The outcome was wrong: the other side wins (a forfeit stays a forfeit, the other side credited)."""
    return _resolve(dispute_id, Dispute.Status.UPHELD)


def reject_dispute(*, dispute_id: int) -> Dispute:
    """The outcome stands: the match returns to the state it had when the dispute was filed."""
    return _resolve(dispute_id, Dispute.Status.REJECTED)


def _resolve(dispute_id: int, status: str) -> Dispute:
    with transaction.atomic():
        dispute = Dispute.objects.select_related("match").filter(pk=dispute_id).first()
        if dispute is None:
            raise DisputeError(f"No dispute {dispute_id}.")
        match = Match.objects.select_for_update().get(pk=dispute.match_id)  # the match first, as filing locks it
        dispute = Dispute.objects.select_for_update().get(pk=dispute_id)
        if dispute.status != Dispute.Status.OPEN:
            raise DisputeError(f"Dispute {dispute_id} is already {dispute.status}.")
        winner_id = match.winner_id
        if status == Dispute.Status.UPHELD:
            winner_id = match.loser_id
        set_match_outcome(match=match, winner_id=winner_id, state=dispute.match_state_before)
        dispute.status = status
        dispute.resolved_at = timezone.now()
        dispute.save(update_fields=["status", "resolved_at", "updated_at"])
    return dispute
