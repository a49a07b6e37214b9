"""The nightly ledger -> stats pass's coverage: the users whose ledger grew, plus the run's rolling slice of users.

Comparing every user's stats with the ledger each night costs time linear in the whole ledger (53 s at 5.4M events,
side by side with the sources pass). A nightly run compares instead:

1. the users of every event appended since the previous successful repairing run read its watermark (ledger ids
   above that run's `ledger_high_id`): where a fault of the writing path shows - an event inserted without its
   counters (raw SQL into the ledger), a projection that moved the wrong counter;
2. the users of the run's rolling slice (stats.rolling_slice, the slice its sources pass re-derives, over user ids):
   whatever comes with no new event - a stats row edited by hand or by raw SQL, a ledger row removed by hand.

Guarantee: every user's stats are compared with the ledger, and repaired, by at least one of any N consecutive
successful nightly runs (N = settings.RECONCILE_SLICES); a user with an event appended above the previous successful
repairing run's watermark is compared by the next nightly run. An event whose transaction was still open when the
watermark was read can have a lower id: its user is left to the slice, within N nights. With no earlier repairing
run holding a watermark (the first night, or after every run failed), every user is compared.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection

from activity.models import UserActivity
from esports.profiles.models import UserProfile
from stats.models import ReconciliationRun
from stats.rolling_slice import IdSlice
from stats.user_sets import UserRange, UserSet, every_user, in_chunks

NEW_EVENTS = "new events"  # why a user is compared: events appended above the watermark
_LEDGER = UserActivity._meta.db_table
_PROFILES = UserProfile._meta.db_table


@dataclass(frozen=True, slots=True)
class StatsCoverage:
    """Which users a nightly ledger -> stats pass compares (`appended_since` None: every user)."""

    slice: IdSlice
    appended_since: int | None

    def user_sets(self, chunk_users: int) -> Iterator[tuple[str, UserSet]]:
        """(why, users) to compare: the users with new events outside the slice, then the slice's blocks."""
        if self.appended_since is None:
            for every in every_user(chunk_users):
                yield "every user (no earlier watermark)", every
            return
        appended = [uid for uid in users_appended_since(self.appended_since) if uid not in self.slice]
        for users in in_chunks(appended, chunk_users):
            yield NEW_EVENTS, users
        for lo, hi in self.slice.blocks(top_user_id()):
            yield f"slice {self.slice}", UserRange(lo - 1, hi - 1)


def coverage_for(id_slice: IdSlice) -> StatsCoverage:
    """The coverage of a nightly run taking `id_slice`: new events since the last successful repairing run's
    watermark (a report-only run repairs nothing, so what it saw is compared again)."""
    since = (
        ReconciliationRun.objects.filter(
            status=ReconciliationRun.Status.SUCCEEDED,
            scope=ReconciliationRun.Scope.ALL,
            fix=True,
            ledger_high_id__isnull=False,
        )
        .order_by("-started_at", "-id")
        .values_list("ledger_high_id", flat=True)
        .first()
    )
    return StatsCoverage(id_slice, since)


def ledger_high_water() -> int:
    """The highest ledger id now (0 for an empty ledger): one probe of the primary key."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {_LEDGER}")
        return cursor.fetchone()[0]


def users_appended_since(watermark: int) -> list[int]:
    """The users of the ledger's events with ids above `watermark`, ascending: a range scan of the primary key."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT user_id FROM {_LEDGER} WHERE id > %s ORDER BY 1", [watermark])
        return [row[0] for row in cursor.fetchall()]


def top_user_id() -> int:
    """The highest user id with a profile or an event (a ledger user above every profile is still in a block)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT GREATEST((SELECT MAX(user_id) FROM {_PROFILES}), (SELECT MAX(user_id) FROM {_LEDGER}))")
        return cursor.fetchone()[0] or 0
