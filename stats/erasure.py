"""The projection's side of a GDPR erasure (activity.erasure calls this inside the erasure's transaction)."""

from __future__ import annotations

from django.db import transaction

from activity.erasure import ErasureResult
from stats.cache import invalidate_leaderboards, invalidate_on_commit
from stats.models import UserGameStats, UserProfileStats, UserSeasonStats
from stats.recompute import recompute_stats


def on_user_erased(result: ErasureResult) -> None:
    """Remove the erased player's stats rows (lifetime, per game, per season), derive the tombstone's from the ledger
    rows it now holds (so the reconciliation finds both equal to the ledger), and drop their cached stats and every
    cached board after commit."""
    UserProfileStats.objects.filter(profile_id=result.erased_user_id).delete()
    UserGameStats.objects.filter(profile_id=result.erased_user_id).delete()
    UserSeasonStats.objects.filter(profile_id=result.erased_user_id).delete()
    recompute_stats([result.tombstone_id])
    invalidate_on_commit([result.erased_user_id, result.tombstone_id])
    transaction.on_commit(invalidate_leaderboards, robust=True)
