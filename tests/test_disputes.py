"""Disputes (esports.moderation): filing puts the match in `disputed` and records a private dispute_filed;
upholding flips the outcome, rejecting restores it; any number of rounds leaves the counters (lifetime, per game, per
season) equal to the ledger and to the final outcome."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from activity.event_types import EventType as E
from activity.models import UserActivity
from activity.privacy import relation_between
from activity.selectors.timeline import timeline
from esports.moderation.models import Dispute
from esports.moderation.services import DisputeError, file_dispute, reject_dispute, uphold_dispute
from esports.profiles.models import UserProfile
from esports.tournaments.models import Match
from stats.models import UserGameStats, UserProfileStats, UserSeasonStats
from stats.reconcile import run_reconciliation
from stats.selectors.lifetime import lifetime_stats
from tests.factories import MatchFactory, RegistrationFactory, TournamentFactory, UserFactory, complete_match
from tests.ledger_helpers import record

pytestmark = pytest.mark.django_db


def wins_and_losses(user) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(won, lost) of the lifetime, the tennis and the tennis 2021 rows."""
    rows = (
        UserProfileStats.objects.filter(profile_id=user.pk),
        UserGameStats.objects.filter(profile_id=user.pk, game="tennis"),
        UserSeasonStats.objects.filter(profile_id=user.pk, game="tennis", season=2021),
    )
    return tuple(r.values_list("matches_won", "matches_lost").get() for r in rows)  # type: ignore[return-value]


@pytest.fixture
def final():
    t = TournamentFactory(game="tennis", season=2021)
    a, b = RegistrationFactory(tournament=t), RegistrationFactory(tournament=t)
    record(a.user.profile, b.user.profile)
    record(a, b)
    match = complete_match(MatchFactory(tournament=t, participant1=a, participant2=b, round="F"), a)
    record(match)
    return match


def test_disputes_upheld_and_rejected_three_times_leave_the_right_counters(final):
    winner, loser = final.participant1.user, final.participant2.user
    assert wins_and_losses(winner) == ((1, 0),) * 3
    for round_ in range(3):
        upheld = file_dispute(match_id=final.pk, filed_by_id=loser.pk, reason="line call")
        final.refresh_from_db()
        assert final.state == Match.State.DISPUTED
        record(upheld)
        record(final)  # disputed: nothing new, nothing taken back yet
        uphold_dispute(dispute_id=upheld.pk)
        final.refresh_from_db()
        record(final)
        winner, loser = loser, winner  # the outcome flipped
        assert (final.winner.user_id, final.state) == (winner.pk, Match.State.COMPLETED)
        assert wins_and_losses(winner) == ((1, 0),) * 3 and wins_and_losses(loser) == ((0, 1),) * 3

        rejected = file_dispute(match_id=final.pk, filed_by_id=loser.pk, reason=f"again {round_}")
        record(rejected)
        reject_dispute(dispute_id=rejected.pk)
        final.refresh_from_db()
        record(final)
        assert (final.winner.user_id, final.state) == (winner.pk, Match.State.COMPLETED)  # restored, unchanged
        assert wins_and_losses(winner) == ((1, 0),) * 3 and wins_and_losses(loser) == ((0, 1),) * 3

    filed = Counter_of_disputes(final)
    assert filed == {final.participant1.user_id: 3, final.participant2.user_id: 3}
    for user_id, n in filed.items():
        assert UserProfileStats.objects.get(profile_id=user_id).disputes_filed == n
        assert UserGameStats.objects.get(profile_id=user_id, game="tennis").disputes_filed == n
    assert list(Dispute.objects.values_list("status", flat=True).order_by("id")) == ["upheld", "rejected"] * 3
    assert run_reconciliation(fix=False, skip_sources=True).users_drifted == 0


def Counter_of_disputes(match) -> dict[int, int]:
    counts: dict[int, int] = {}
    for user_id in UserActivity.objects.filter(event_type=E.DISPUTE_FILED).values_list("user_id", flat=True):
        counts[user_id] = counts.get(user_id, 0) + 1
    return counts


def test_dispute_filed_is_private_to_the_filer_and_staff(final):
    filer = final.participant2.user
    dispute = file_dispute(match_id=final.pk, filed_by_id=filer.pk, reason="net touch")
    record(dispute)
    (row,) = UserActivity.objects.filter(event_type=E.DISPUTE_FILED)
    assert (row.user_id, row.visibility, row.game, row.season) == (filer.pk, "private", "tennis", 2021)
    assert "net touch" not in str(row.metadata)  # the reason is the moderators', not the ledger's
    subject = UserProfile.objects.select_related("user").get(pk=filer.pk)
    types = frozenset({E.DISPUTE_FILED})
    assert [e.event_type for e in timeline(relation_between(filer, subject), types=types).items] == [E.DISPUTE_FILED]
    for viewer in (AnonymousUser(), UserFactory(), final.participant1.user):
        relation = relation_between(viewer, subject)
        assert timeline(relation, types=types).items == []
        assert "disputes_filed" not in lifetime_stats(relation)
    assert lifetime_stats(relation_between(filer, subject))["disputes_filed"] == 1


def test_bad_filings_and_resolutions_are_refused_and_write_nothing(final):
    filer = final.participant2.user.pk
    with pytest.raises(DisputeError, match="reason"):
        file_dispute(match_id=final.pk, filed_by_id=filer, reason="  ")
    scheduled = MatchFactory(
        tournament=final.tournament, participant1=final.participant1, participant2=final.participant2
    )
    with pytest.raises(DisputeError, match="completed or forfeited"):
        file_dispute(match_id=scheduled.pk, filed_by_id=filer, reason="x")
    dispute = file_dispute(match_id=final.pk, filed_by_id=filer, reason="x")
    with pytest.raises(DisputeError, match="completed or forfeited"):  # already disputed
        file_dispute(match_id=final.pk, filed_by_id=filer, reason="y")
    reject_dispute(dispute_id=dispute.pk)
    with pytest.raises(DisputeError, match="already rejected"):
        uphold_dispute(dispute_id=dispute.pk)
    assert Dispute.objects.count() == 1
    final.refresh_from_db()
    assert final.state == Match.State.COMPLETED and final.winner_id == final.participant1_id


def test_erasing_the_filer_hands_the_filing_to_the_tombstone_and_scrubs_its_reason(final):
    from activity.erasure import ERASED_REASON, erase_user

    filer = final.participant2.user
    dispute = file_dispute(match_id=final.pk, filed_by_id=filer.pk, reason="my own words")
    record(dispute)
    result = erase_user(filer.pk)
    dispute.refresh_from_db()
    assert (dispute.filed_by_id, dispute.reason) == (result.tombstone_id, ERASED_REASON)
    report = run_reconciliation(fix=False)  # re-deriving the filing finds the tombstone's event already there
    assert report.missing_events_total == 0 and report.users_drifted == 0
