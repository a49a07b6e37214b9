"""Creating and locking stats rows, the first step of every write to the projection."""
from __future__ import annotations

from collections.abc import Sequence

from stats.models import UserProfileStats


def lock_stats_rows(user_ids: Sequence[int]) -> None:
    """Make sure each user has a stats row, then lock the rows in user-id order.

    Every writer of the projection (incremental apply, recompute, reconciliation repair) goes through here, so
    concurrent writers always take row locks in the same order and cannot deadlock. Must run inside a transaction.
    """
    ids = sorted(set(user_ids))
    if not ids:
        return
    UserProfileStats.objects.bulk_create([UserProfileStats(profile_id=uid) for uid in ids], ignore_conflicts=True, batch_size=2000)
    list(UserProfileStats.objects.filter(profile_id__in=ids).order_by("profile_id").select_for_update().values_list("profile_id", flat=True))
