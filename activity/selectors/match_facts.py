"""The facts of a page of matches that the ledger rows do not carry: the opponent (player or team), the score and the
match id, loaded for a whole page in one query (the matches with both sides, and whether the subject is a member of
the first side's team).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection

from esports.profiles.models import UserProfile
from esports.teams.models import Team, TeamMembership
from esports.tournaments.models import Match


@dataclass(frozen=True, slots=True)
class Opponent:
    kind: str  # "player" or "team"
    name: str
    user_id: int | None = None
    public_id: str | None = None
    username: str | None = None


# One statement for a page's matches, written once: the ORM form (four select_related chains and an Exists) cost
# ~5 ms of Python to compose per page, many times what it costs PostgreSQL, on the profile page's uncached path.
# A team entry's members are those active at its registration (activity.derivation); any membership of the subject
# in the first side's team tells the sides apart (a player is never on both sides of a match).
_FACTS = """
SELECT m.id, m.score,
       EXISTS (SELECT 1 FROM {membership} tm WHERE tm.team_id = r1.team_id AND tm.user_id = %(subject)s),
       r1.user_id, u1.username, p1.display_name, p1.public_id, t1.name,
       r2.user_id, u2.username, p2.display_name, p2.public_id, t2.name
  FROM {match} m
  LEFT JOIN {registration} r1 ON r1.id = m.participant1_id
  LEFT JOIN {user} u1 ON u1.id = r1.user_id
  LEFT JOIN {profile} p1 ON p1.user_id = r1.user_id
  LEFT JOIN {team} t1 ON t1.id = r1.team_id
  LEFT JOIN {registration} r2 ON r2.id = m.participant2_id
  LEFT JOIN {user} u2 ON u2.id = r2.user_id
  LEFT JOIN {profile} p2 ON p2.user_id = r2.user_id
  LEFT JOIN {team} t2 ON t2.id = r2.team_id
 WHERE m.id = ANY (%(ids)s)
"""


@functools.cache
def _facts_sql() -> str:
    registration = Match._meta.get_field("participant1").related_model
    return _FACTS.format(
        membership=TeamMembership._meta.db_table,
        match=Match._meta.db_table,
        registration=registration._meta.db_table,
        user=get_user_model()._meta.db_table,
        profile=UserProfile._meta.db_table,
        team=Team._meta.db_table,
    )


def _side(user_id: int | None, username: str | None, display_name: str | None, public_id: str | None, team: str | None):
    if user_id is not None:
        return Opponent("player", display_name or username or "", user_id, public_id, username)
    if team is not None:
        return Opponent("team", team)
    return None


def attach_match_facts(items: Sequence, subject_id: int) -> None:
    """Set `.match_id`, `.score` and `.opponent` (Opponent or None) on each match_played row of `items`."""
    ids = sorted({item.source_id for item in items})
    matches = {}
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(_facts_sql(), {"subject": subject_id, "ids": ids})
            matches = {row[0]: row for row in cursor.fetchall()}
    for item in items:
        item.match_id = item.source_id
        match = matches.get(item.source_id)
        item.score = match[1] if match is not None else ""
        item.opponent = None
        if match is None:  # the source row was deleted; its events are compensated and the row leaves the list
            continue
        subject_in_first_team, first, second = match[2], match[3:8], match[8:13]
        mine_first = first[0] == subject_id or subject_in_first_team  # (no team entry: no membership found)
        item.opponent = _side(*(second if mine_first else first))
