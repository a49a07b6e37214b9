"""The facts of a page of matches that the ledger rows do not carry: the opponent (player or team), the score and the
match id, loaded for a whole page in one query (the matches with both sides, and whether the subject is a member of
the first side's team).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Exists, OuterRef

from esports.teams.models import TeamMembership
from esports.tournaments.models import Match


@dataclass(frozen=True, slots=True)
class Opponent:
    kind: str  # "player" or "team"
    name: str
    user_id: int | None = None
    public_id: str | None = None
    username: str | None = None


def _player(registration) -> Opponent:
    user = registration.user
    profile = getattr(user, "profile", None)
    name = (profile.display_name if profile else "") or user.get_username()
    return Opponent(
        "player", name, user.pk, profile.public_id if profile else None, user.get_username() if user else None
    )


def _side(registration) -> Opponent:
    if registration.user_id is not None:
        return _player(registration)
    return Opponent("team", registration.team.name)


def attach_match_facts(items: Sequence, subject_id: int) -> None:
    """Set `.match_id`, `.score` and `.opponent` (Opponent or None) on each match_played row of `items`."""
    ids = {item.source_id for item in items}
    # A team entry's members are those active at its registration (activity.derivation); any membership of the
    # subject in the first side's team tells the sides apart (a player is never on both sides of a match).
    in_first_team = Exists(TeamMembership.objects.filter(team_id=OuterRef("participant1__team_id"), user_id=subject_id))
    matches = {
        m.pk: m
        for m in Match.objects.filter(pk__in=ids)
        .select_related(
            "participant1__user__profile", "participant2__user__profile", "participant1__team", "participant2__team"
        )
        .annotate(subject_in_first_team=in_first_team)
    }
    for item in items:
        item.match_id = item.source_id
        match = matches.get(item.source_id)
        item.score = match.score if match is not None else ""
        item.opponent = None
        if match is None:  # the source row was deleted; its events are compensated and the row leaves the list
            continue
        one, two = match.participant1, match.participant2
        mine_first = one.user_id == subject_id or (one.team_id is not None and match.subject_in_first_team)
        item.opponent = _side(two if mine_first else one)
