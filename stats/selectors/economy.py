"""Economy summary: DeltaCoin totals (from the projection) and the latest coin events; self and staff only."""

from __future__ import annotations

from dataclasses import dataclass

from activity.cursors import Page
from activity.models import UserActivity
from activity.privacy import ViewerRelation, require
from activity.selectors.economy import ECONOMY_PRIVATE, coin_events
from stats.selectors.lifetime import cached_stats


@dataclass(frozen=True, slots=True)
class EconomySummary:
    total_earned: int
    total_spent: int
    net_earnings: int
    recent: Page[UserActivity]


def economy_summary(relation: ViewerRelation, *, cursor: str | None = None, limit: int | None = None) -> EconomySummary:
    """Raises NotPermitted for anyone but self and staff (checked before anything is read)."""
    require(relation.can_see_economy, ECONOMY_PRIVATE)
    stats = cached_stats(relation.subject_id)
    recent = coin_events(relation, cursor=cursor, limit=limit)
    earned, spent = int(stats["total_earned"]), int(stats["total_spent"])
    return EconomySummary(total_earned=earned, total_spent=spent, net_earnings=earned - spent, recent=recent)
