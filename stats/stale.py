"""Stale stats: mark users whose counters must be re-derived, and the job that recomputes them.

Whoever changes the ledger outside the incremental projection (backfill, erasure) or doubts a user's counters (the
admin "recompute" action) calls `mark_stale`; the periodic `recompute_stale_stats` recomputes the marked users
set-based and clears exactly the marks it processed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from esports.profiles.models import UserProfile
from monitoring import metrics
from stats.audit_trail import audit_recomputed
from stats.derived import refresh_derived_figures
from stats.models import StaleStats
from stats.recompute import CHUNK, recompute_stats

logger = logging.getLogger(__name__)

_MARKS = StaleStats._meta.db_table
_PROFILES = UserProfile._meta.db_table
_REASON_MAX = StaleStats._meta.get_field("reason").max_length


def mark_stale(user_ids: Iterable[int], reason: str) -> int:
    """Mark users' stats stale, in one statement; returns how many users were marked.

    Ids without a profile are skipped (there is no stats row to recompute). Marking an already marked user moves its
    `marked_at` strictly forward, which is how a recompute run in progress knows not to clear the renewed mark.
    """
    ids = sorted({int(u) for u in user_ids})
    if not ids:
        return 0
    reason = (reason or "")[:_REASON_MAX]
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_MARKS} (profile_id, marked_at, reason) "
            f"SELECT p.user_id, %s, %s FROM {_PROFILES} p WHERE p.user_id = ANY(%s) ORDER BY p.user_id "
            f"ON CONFLICT (profile_id) DO UPDATE SET reason = EXCLUDED.reason, marked_at = CASE "
            f"WHEN EXCLUDED.marked_at > {_MARKS}.marked_at THEN EXCLUDED.marked_at "
            f"ELSE {_MARKS}.marked_at + interval '1 microsecond' END",
            [now, reason, ids],
        )
        return cursor.rowcount


@dataclass(frozen=True)
class RecomputeReport:
    users_recomputed: int
    marks_cleared: int
    duration_seconds: float


def recompute_stale_stats(chunk_size: int = CHUNK) -> RecomputeReport:
    """Recompute every user marked before this call started, chunk by chunk, and refresh the derived figures.

    Each chunk reads its marks with their `marked_at`, recomputes those users (recompute_stats: locked, set-based),
    then deletes only the marks whose `marked_at` is still the value it read: a mark renewed meanwhile (the ledger
    may have changed after our aggregate) survives for the next run, and a mark made after the start waits for it.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    started = timezone.now()
    began = time.monotonic()
    cursor = 0
    recomputed = cleared = 0
    while True:
        marks = list(
            StaleStats.objects.filter(profile_id__gt=cursor, marked_at__lte=started)
            .order_by("profile_id")
            .values_list("profile_id", "marked_at")[:chunk_size]
        )
        if not marks:
            break
        with transaction.atomic():  # the recompute, its marks and its audit events commit together
            recomputed += recompute_stats([uid for uid, _ in marks])
            cleared += _clear_marks(marks)
            audit_recomputed([uid for uid, _ in marks])
        cursor = marks[-1][0]
    if recomputed:
        metrics.STATS_RECOMPUTED.inc(recomputed)
        refresh_derived_figures()
        logger.info("recomputed the stats of %d stale user(s)", recomputed)
    return RecomputeReport(recomputed, cleared, round(time.monotonic() - began, 3))


def _clear_marks(marks: Sequence[tuple[int, datetime]]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {_MARKS} m USING unnest(%s::bigint[], %s::timestamptz[]) AS v(uid, at) "
            f"WHERE m.profile_id = v.uid AND m.marked_at = v.at",
            [[uid for uid, _ in marks], [at for _, at in marks]],
        )
        return cursor.rowcount
