import pytest

from activity.models import UserActivity
from stats.models import UserProfileStats
from tests.conftest import wait_until
from tests.factories import MatchFactory, complete_match

pytestmark = pytest.mark.integration


def test_completed_match_is_recorded_through_the_real_worker(live_worker):
    match = MatchFactory()
    complete_match(match, match.participant1)
    winner_id = match.participant1.user_id
    wait_until(
        lambda: UserActivity.objects.filter(source_model="tournaments.match", source_id=match.id).count() == 4,
        message="4 match events",
    )
    stats = UserProfileStats.objects.get(profile_id=winner_id)
    assert (stats.matches_played, stats.matches_won) == (1, 1)
