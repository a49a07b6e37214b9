"""backfill_public_ids: profiles from before public IDs get theirs in creation order, once; command and admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from esports.profiles.models import PublicIDCounter, UserProfile
from esports.profiles.public_id_backfill import backfill_public_ids
from esports.profiles.services import create_users_bulk

pytestmark = pytest.mark.django_db
T0 = datetime(2025, 6, 1, tzinfo=UTC)


def legacy_profiles(n: int, *, start: datetime = T0) -> list[int]:
    """n profiles as they were before public IDs: no ID, no counter; created in reverse id order (and one tie)."""
    ids = sorted(create_users_bulk([(f"legacy{start.year}-{i}", f"Legacy {i}") for i in range(n)]).values())
    table = UserProfile._meta.db_table
    with connection.cursor() as cursor:
        # The guard trigger forbids exactly this (old rows predate it): replica mode skips triggers, for these
        # statements only.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            f"UPDATE {table} SET public_id = NULL, created_at = %s::timestamptz - (user_id * interval '1 hour')"
            " WHERE user_id = ANY(%s)",
            [start + timedelta(hours=ids[-1]), ids],
        )
        cursor.execute(
            f"UPDATE {table} SET created_at = (SELECT created_at FROM {table} WHERE user_id = %s) WHERE user_id = %s",
            [ids[0], ids[1]],
        )  # a tie: ids[0] and ids[1] created at the same moment
        cursor.execute("SET LOCAL session_replication_role = origin")
    PublicIDCounter.objects.all().delete()
    return ids


def public_ids() -> dict[int, str | None]:
    return dict(UserProfile.objects.values_list("user_id", "public_id"))


def test_a_dry_run_changes_nothing_and_reports_the_count():
    legacy_profiles(5)
    before = public_ids()
    out = StringIO()
    call_command("backfill_public_ids", "--dry-run", stdout=out)
    assert "5 profile(s) without a public ID; would assign 5" in out.getvalue()
    assert public_ids() == before
    assert not PublicIDCounter.objects.exists()


def test_backfill_numbers_in_creation_order_ties_by_id_and_a_second_run_assigns_nothing():
    ids = legacy_profiles(6)
    out = StringIO()
    call_command("backfill_public_ids", "--batch-size", "4", stdout=out)
    assert "assigned 6 in 2 batch(es) (by year: 2025: 6)" in out.getvalue()
    # Piped progress: one line per batch (project/progress.py)
    assert [line for line in out.getvalue().splitlines() if line.startswith("backfill_public_ids:")] == [
        "backfill_public_ids: profiles: 4/6",
        "backfill_public_ids: profiles: 6/6",
    ]
    got = public_ids()
    # created_at falls as the id grows; ids[1] shares ids[0]'s moment (the latest): the id breaks the tie
    order = [*reversed(ids[2:]), ids[0], ids[1]]
    assert [got[uid] for uid in order] == [f"DC-25-{n:06d}" for n in range(1, 7)]
    again = StringIO()
    call_command("backfill_public_ids", stdout=again)
    assert "assigned 0" in again.getvalue()
    assert public_ids() == got


def test_backfill_limit_stops_early_and_the_next_run_continues_gaplessly():
    legacy_profiles(5)
    assert backfill_public_ids(limit=2, batch_size=10).assigned == 2
    report = backfill_public_ids(batch_size=2)
    assert (report.pending, report.assigned, report.batches) == (3, 3, 2)
    assert sorted(public_ids().values()) == [f"DC-25-{n:06d}" for n in range(1, 6)]


def test_the_admin_action_assigns_through_the_same_service_and_search_finds_by_public_id(admin_client):
    ids = legacy_profiles(3)
    url = reverse("admin:profiles_userprofile_changelist")
    response = admin_client.post(url, {"action": "assign_missing_public_ids", "_selected_action": ids[:2]})
    assert response.status_code == 302
    got = public_ids()
    assert got[ids[0]] == "DC-25-000001" and got[ids[2]] is None
    found = admin_client.get(url, {"q": "dc-25-000001"})
    assert list(found.context["cl"].result_list.values_list("pk", flat=True)) == [ids[0]]
    assert not admin_client.get(url, {"q": "DC-25-1"}).context["cl"].result_list.exists()


def test_the_counter_admin_is_read_only(admin_client):
    get_user_model().objects.create_user("someone")
    assert admin_client.get(reverse("admin:profiles_publicidcounter_changelist")).status_code == 200
    counter = PublicIDCounter.objects.get()
    assert admin_client.get(reverse("admin:profiles_publicidcounter_add")).status_code == 403
    change = admin_client.post(reverse("admin:profiles_publicidcounter_change", args=[counter.pk]), {"last_value": 0})
    assert change.status_code in (302, 403) and PublicIDCounter.objects.get().last_value == counter.last_value
    assert (
        admin_client.post(
            reverse("admin:profiles_publicidcounter_delete", args=[counter.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
