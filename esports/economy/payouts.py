"""Tournament prize payouts: each placed solo entrant is credited through the economy service, keyed by the result
and the place, so a payout that is retried (a task redelivered, an operator clicking twice) pays once."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction

from esports.economy.models import DeltaCrownTransaction
from esports.economy.services import credit
from esports.tournaments.models import TournamentResult

PLACES = ("winner", "runner_up", "third_place", "fourth_place")


def prize_key(result: TournamentResult, place: str) -> str:
    return f"prize:result:{result.pk}:{place}"


def pay_prizes(result: TournamentResult, prizes: Mapping[str, int]) -> list[DeltaCrownTransaction]:
    """Credit `prizes` (place -> DeltaCoins) to the result's placed solo entrants; returns their transactions.

    All or nothing: one refused credit (a deactivated winner) rolls the payout back and raises, and the retry after
    the cause is dealt with pays exactly the prizes not yet paid. Team entries are skipped: a team prize is split
    off-platform.
    """
    unknown = set(prizes) - set(PLACES)
    if unknown:
        raise ValueError(f"not a place of a tournament result: {sorted(unknown)}; places are {PLACES}")
    paid = []
    with transaction.atomic():
        for place in PLACES:
            registration = getattr(result, place) if place in prizes else None
            if registration is None or registration.user_id is None:
                continue
            reason = f"prize: {result.tournament.name} ({place.replace('_', ' ')})"
            paid.append(credit(registration.user_id, prizes[place], reason, idempotency_key=prize_key(result, place)))
    return paid
