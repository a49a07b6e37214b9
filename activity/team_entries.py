"""Which recorded source rows a team membership touches: a membership (added late, backdated, re-joined, ended)
changes who the team's entries stand for, so the team's registrations created within the membership's interval,
their matches and their tournaments' results must be derived again. Three set-based queries, no writes."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from activity import derivation as rules
from esports.tournaments.models import Match, Registration, TournamentResult


def rows_affected_by_membership(*, team_id: int, joined_at: datetime, left_at: datetime | None) -> dict[str, list[int]]:
    """Source label -> ids to record again (labels with no ids left out)."""
    registrations = Registration.objects.filter(team_id=team_id, created_at__gte=joined_at)
    if left_at is not None:
        registrations = registrations.filter(created_at__lt=left_at)
    entries = list(registrations.values_list("id", "tournament_id"))
    if not entries:
        return {}
    reg_ids = sorted(r for r, _ in entries)
    tournaments = sorted({t for _, t in entries})
    match_ids = Match.objects.filter(Q(participant1_id__in=reg_ids) | Q(participant2_id__in=reg_ids)).values_list(
        "id", flat=True
    )
    result_ids = TournamentResult.objects.filter(tournament_id__in=tournaments).values_list("id", flat=True)
    affected = {
        rules.REGISTRATION: reg_ids,
        rules.MATCH: sorted(match_ids),
        rules.TOURNAMENT_RESULT: sorted(result_ids),
    }
    return {label: ids for label, ids in affected.items() if ids}
