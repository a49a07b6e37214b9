"""Match history outcomes come from the ledger net of compensations: corrections show on the next read."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from activity.privacy import ViewerClass, ViewerRelation
from activity.recording import record_events_for
from activity.selectors.match_history import match_history
from esports.tournaments.models import Match
from tests.factories import MatchFactory, complete_match

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_cache")]


def outcomes(user_id: int) -> list[str]:
    # Any: each item carries `.outcome`, set by the selector, not a field the model declares.
    items: list[Any] = match_history(ViewerRelation(ViewerClass.SELF, user_id)).items
    return [e.outcome.value for e in items]


def record(match: Match) -> None:
    record_events_for("tournaments.match", [match.pk])


def test_a_result_overturned_and_restored_flips_the_outcome_each_time():
    match = MatchFactory()
    a, b = match.participant1, match.participant2
    record(complete_match(match, a))
    assert (outcomes(a.user_id), outcomes(b.user_id)) == (["won"], ["lost"])

    for winner, expected in ((b, (["lost"], ["won"])), (a, (["won"], ["lost"])), (b, (["lost"], ["won"]))):
        match.refresh_from_db()
        match.winner, match.loser = winner, (a if winner == b else b)
        match.save()
        record(match)
        assert (outcomes(a.user_id), outcomes(b.user_id)) == expected  # still one entry per match


def test_a_forfeit_is_listed_as_such_and_a_completed_match_turned_forfeit_loses_its_result():
    walkover = MatchFactory()
    walkover.state, walkover.completed_at = Match.State.FORFEIT, timezone.now()
    walkover.save()
    record(walkover)
    assert outcomes(walkover.participant1.user_id) == ["forfeit"]

    match = MatchFactory()
    record(complete_match(match, match.participant1))
    assert outcomes(match.participant1.user_id) == ["won"]
    match.state, match.winner, match.loser = Match.State.FORFEIT, None, None
    match.save()
    record(match)
    assert outcomes(match.participant1.user_id) == ["forfeit"]
    assert outcomes(match.participant2.user_id) == ["forfeit"]


def test_the_outcomes_opponents_and_scores_of_a_page_cost_two_queries(django_assert_num_queries):
    matches = [MatchFactory() for _ in range(12)]
    player = matches[0].participant1.user
    for m in matches[1:]:
        m.participant1.user = player
        m.participant1.save()
    for m in matches:
        record(complete_match(m, m.participant1 if m.pk % 2 else m.participant2))
    # The page's query (outcomes included) and one for the matches' sides: whatever the page size.
    with django_assert_num_queries(2):
        page = match_history(ViewerRelation(ViewerClass.SELF, player.pk), limit=12)
        assert len(page.items) == 12 and {e.outcome.value for e in page.items} == {"won", "lost"}
        assert all(e.opponent is not None and e.opponent.user_id != player.pk for e in page.items)
