"""Public IDs for the profiles created before they existed: `backfill_public_ids`, used by the command and the admin.

Profiles without an ID are taken in creation order (created_at, then user id) in batches, each batch a key range
following the previous one and its own transaction: lock the batch's rows, reserve one block per creation year,
write every ID of the batch in one UPDATE. The result is deterministic (the same database gives the same IDs),
idempotent (assigned profiles leave the partial index the walk reads, so a second run finds nothing), and safe next
to sign-ups and a second backfill (locked rows another run assigned first drop out of the batch before any number is
reserved: no gap). Profiles of a year that already has IDs (sign-ups since the feature) are numbered after them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import connection, transaction
from django.db.models import Count, Q
from django.db.models.functions import ExtractYear

from esports.profiles.models import UserProfile
from esports.profiles.public_ids import creation_year
from esports.profiles.services import assign_public_ids

DEFAULT_BATCH_SIZE = 1000


@dataclass
class BackfillReport:
    dry_run: bool
    pending: int  # profiles without an ID when the run started (within the run's user selection)
    assigned: int = 0  # in a dry run: how many the run would assign (pending, capped by the limit)
    batches: int = 0
    by_year: dict[int, int] = field(default_factory=dict)


def _without_id(user_ids: Collection[int] | None):
    qs = UserProfile.objects.filter(public_id__isnull=True)
    return qs if user_ids is None else qs.filter(user_id__in=list(user_ids))


def count_missing(user_ids: Collection[int] | None = None) -> dict[int, int]:
    """Profiles without a public ID per creation year (UTC), in one aggregate query."""
    rows = (
        _without_id(user_ids)
        .annotate(year=ExtractYear("created_at", tzinfo=UTC))
        .order_by()
        .values("year")
        .annotate(n=Count("*"))
        .values_list("year", "n")
    )
    return dict(sorted(rows))


def backfill_public_ids(
    *,
    dry_run: bool = False,
    limit: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    user_ids: Collection[int] | None = None,
    progress: Callable[[int], None] | None = None,
) -> BackfillReport:
    """Assign public IDs to profiles that have none (all, or those of `user_ids`), at most `limit` of them."""
    if batch_size < 1 or (limit is not None and limit < 0):
        raise ValueError("batch_size must be positive and limit not negative")
    missing = count_missing(user_ids)
    report = BackfillReport(dry_run=dry_run, pending=sum(missing.values()))
    target = report.pending if limit is None else min(limit, report.pending)
    if dry_run:
        report.assigned = target
        report.by_year = _first_years(missing, target)
        return report
    after: tuple[datetime, int] | None = None
    while report.assigned < target:
        batch = _assign_batch(user_ids, after, min(batch_size, target - report.assigned), report.by_year)
        if not batch:
            break  # the rest was assigned by someone else meanwhile
        after = batch[-1]
        report.assigned += len(batch)
        report.batches += 1
        if progress is not None:
            progress(len(batch))
    return report


def _assign_batch(
    user_ids: Collection[int] | None, after: tuple[datetime, int] | None, size: int, by_year: dict[int, int]
) -> list[tuple[datetime, int]]:
    """One key range: the next `size` profiles without an ID after `after`; returns their (created_at, user id)."""
    qs = _without_id(user_ids)
    if after is not None:
        qs = qs.filter(Q(created_at__gt=after[0]) | Q(created_at=after[0], user_id__gt=after[1]))
    with transaction.atomic():
        # Locked before any number is reserved; a row another backfill assigned meanwhile is re-checked and dropped.
        rows = list(
            qs.order_by("created_at", "user_id").select_for_update().values_list("user_id", "created_at")[:size]
        )
        assigned = assign_public_ids(rows)
        _write(assigned)
    for _uid, created in rows:
        year = creation_year(created)
        by_year[year] = by_year.get(year, 0) + 1
    return [(created, uid) for uid, created in rows]


def _write(assigned: dict[int, str]) -> None:
    if not assigned:
        return
    table = connection.ops.quote_name(UserProfile._meta.db_table)
    with connection.cursor() as cursor:
        # updated_at is left alone on purpose: an ID is not a change the activity sweeps should re-derive.
        cursor.execute(
            f"UPDATE {table} AS p SET public_id = v.public_id "
            "FROM unnest(%s::bigint[], %s::text[]) AS v(user_id, public_id) "
            "WHERE p.user_id = v.user_id AND p.public_id IS NULL",
            [list(assigned), list(assigned.values())],
        )
        if cursor.rowcount != len(assigned):
            raise RuntimeError(f"backfill wrote {cursor.rowcount} of {len(assigned)} reserved public IDs")


def _first_years(missing: dict[int, int], target: int) -> dict[int, int]:
    """How a run capped at `target` would spread over the years (creation order: earliest years first)."""
    spread: dict[int, int] = {}
    for year, n in sorted(missing.items()):
        if target <= 0:
            break
        spread[year] = min(n, target)
        target -= spread[year]
    return spread
