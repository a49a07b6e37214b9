"""Admin of the projection over HTTP: stats read-only for everyone (with a "recompute" action that marks and queues),
reconciliation runs listed and shown read-only, and "Run reconciliation now" a staff-only, CSRF-protected POST that
queues the task on the maintenance queue."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from dispatch.names import queue_of
from stats.models import ReconciliationRun, StaleStats, UserProfileStats
from stats.reconcile import run_reconciliation
from tests.conftest import wait_until
from tests.factories import UserFactory
from tests.private_services import broker_at, free_port

RUN_URL = "admin:stats_reconciliationrun_run"


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict, str]]:
    """Capture what stats.jobs publishes through dispatch (task, kwargs, its queue) instead of sending it to this run's
    broker, where the session worker would run it."""
    calls: list[tuple[str, dict, str]] = []
    monkeypatch.setattr(
        "stats.jobs.publish", lambda name, kwargs=None, **kw: calls.append((name.value, kwargs, queue_of(name).value))
    )
    return calls


@pytest.fixture
def broker_down(monkeypatch):
    """dispatch publishes to a port nothing listens on (Redis stopped): connections refused."""
    with broker_at(monkeypatch, f"redis://127.0.0.1:{free_port()}/0"):
        yield


@pytest.fixture
def superuser(db):
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    UserProfileStats.objects.get_or_create(profile_id=user.pk)
    return user


def staff_with(*codenames: str):
    user = UserFactory(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def csrf_client(user) -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get(reverse("admin:stats_reconciliationrun_changelist"))
    return client, client.cookies["csrftoken"].value


# --- UserProfileStats -------------------------------------------------------------------------------------------


def test_stats_cannot_be_added_changed_or_deleted_even_by_a_superuser(superuser, client):
    client.force_login(superuser)
    pk = superuser.pk
    change = reverse("admin:stats_userprofilestats_change", args=[pk])

    assert client.get(reverse("admin:stats_userprofilestats_add")).status_code == 403
    page = client.get(change)
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.post(change, {"matches_won": 99}).status_code == 403
    assert client.post(reverse("admin:stats_userprofilestats_delete", args=[pk]), {"post": "yes"}).status_code == 403
    assert UserProfileStats.objects.get(pk=pk).matches_won == 0


def test_search_by_user_id_finds_the_row(superuser, client):
    client.force_login(superuser)
    other = UserFactory()
    UserProfileStats.objects.get_or_create(profile_id=other.pk)
    page = client.get(reverse("admin:stats_userprofilestats_changelist"), {"q": str(other.pk)})
    assert page.status_code == 200
    assert list(page.context["cl"].result_list.values_list("pk", flat=True)) == [other.pk]


def test_the_recompute_action_marks_the_selected_users_and_queues_the_job(superuser, client, sent):
    users = UserFactory.create_batch(3)
    for u in users:
        UserProfileStats.objects.get_or_create(profile_id=u.pk)
    client.force_login(superuser)

    response = client.post(
        reverse("admin:stats_userprofilestats_changelist"),
        {"action": "recompute", "_selected_action": [u.pk for u in users[:2]]},
        follow=True,
    )

    assert response.status_code == 200
    assert set(StaleStats.objects.values_list("profile_id", flat=True)) == {users[0].pk, users[1].pk}
    assert sent == [("tasks.reconciliation.recompute_stale", {}, "maintenance")]
    assert "2 user(s) marked stale" in response.content.decode()


def test_the_recompute_action_needs_the_change_permission(db, client, sent):
    viewer = staff_with("view_userprofilestats")
    UserProfileStats.objects.get_or_create(profile_id=viewer.pk)
    client.force_login(viewer)

    page = client.get(reverse("admin:stats_userprofilestats_changelist"))
    assert page.status_code == 200 and b'value="recompute"' not in page.content
    client.post(
        reverse("admin:stats_userprofilestats_changelist"), {"action": "recompute", "_selected_action": [viewer.pk]}
    )
    assert not StaleStats.objects.exists() and not sent


def test_with_the_broker_down_the_recompute_action_still_marks_and_says_when_it_will_run(
    superuser, client, broker_down
):
    client.force_login(superuser)
    response = client.post(
        reverse("admin:stats_userprofilestats_changelist"),
        {"action": "recompute", "_selected_action": [superuser.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert StaleStats.objects.filter(pk=superuser.pk).exists()
    assert "every 5 minutes" in response.content.decode()


# --- ReconciliationRun --------------------------------------------------------------------------------------------


def test_reconciliation_runs_are_listed_and_shown_read_only(superuser, client):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {UserProfileStats._meta.db_table} SET matches_won = 3 WHERE profile_id = %s", [superuser.pk]
        )
    run = run_reconciliation(fix=False, skip_sources=True)
    client.force_login(superuser)

    listing = client.get(reverse("admin:stats_reconciliationrun_changelist"))
    assert listing.status_code == 200
    assert b"Run reconciliation now" in listing.content
    detail = client.get(reverse("admin:stats_reconciliationrun_change", args=[run.pk]))
    text = detail.content.decode()
    assert detail.status_code == 200 and "matches_won" in text and 'name="_save"' not in text
    assert client.post(reverse("admin:stats_reconciliationrun_change", args=[run.pk]), {"fix": "on"}).status_code == 403
    assert client.get(reverse("admin:stats_reconciliationrun_add")).status_code == 403
    assert (
        client.post(reverse("admin:stats_reconciliationrun_delete", args=[run.pk]), {"post": "yes"}).status_code == 403
    )


def test_run_now_queues_the_reconciliation_on_the_maintenance_queue(superuser, sent):
    client, token = csrf_client(superuser)

    response = client.post(reverse(RUN_URL), {"fix": "1", "csrfmiddlewaretoken": token})

    assert response.status_code == 302 and response["Location"] == reverse("admin:stats_reconciliationrun_changelist")
    assert sent == [("tasks.reconciliation.reconcile_stats", {"fix": True, "trigger": "admin"}, "maintenance")]
    client.post(reverse(RUN_URL), {"fix": "0", "csrfmiddlewaretoken": token})
    assert sent[-1][1] == {"fix": False, "trigger": "admin"}


def test_run_now_is_a_csrf_protected_post_for_permitted_staff_only(superuser, db, sent):
    client, token = csrf_client(superuser)
    assert client.get(reverse(RUN_URL)).status_code == 405
    assert client.post(reverse(RUN_URL), {"fix": "1"}).status_code == 403  # no CSRF token

    viewer = staff_with("view_reconciliationrun")
    viewer_client, viewer_token = csrf_client(viewer)
    assert viewer_client.post(reverse(RUN_URL), {"csrfmiddlewaretoken": viewer_token}).status_code == 403
    assert (
        b"Run reconciliation now" not in viewer_client.get(reverse("admin:stats_reconciliationrun_changelist")).content
    )

    anonymous = Client()
    response = anonymous.post(reverse(RUN_URL))
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    assert sent == []


def test_run_now_with_the_broker_down_says_so_instead_of_failing(superuser, broker_down):
    client, token = csrf_client(superuser)
    response = client.post(reverse(RUN_URL), {"fix": "1", "csrfmiddlewaretoken": token}, follow=True)
    assert response.status_code == 200
    assert "Reconciliation not started: the broker is unreachable" in response.content.decode()


@pytest.mark.integration
def test_run_now_through_the_real_worker_records_a_run(live_worker, enqueued):
    admin_user = UserFactory(username="ops", is_staff=True, is_superuser=True)
    client, token = csrf_client(admin_user)

    client.post(reverse(RUN_URL), {"fix": "0", "csrfmiddlewaretoken": token})

    run = wait_until(
        lambda: ReconciliationRun.objects.filter(trigger="admin", status="succeeded").first(),
        timeout=30,
        message="the worker to finish the reconciliation",
    )
    assert run.fix is False and run.scope == "all"
    # The profile's recording was muted: the worker's sources pass found its event missing (and, report only, left it).
    assert run.missing_events == {"profiles.userprofile": {"profile_created": 1}}
