"""Admin: staff start, watch and cancel backfills; nobody, superusers included, can write to the ledger."""

from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from activity.models import BackfillRun, UserActivity
from activity.sources import SOURCES
from tests.backfill_support import MATCH, ledger_keys, make_history
from tests.conftest import wait_until
from tests.factories import UserFactory

START = reverse("admin:activity_backfillrun_start")


def change_url(run: BackfillRun) -> str:
    return reverse("admin:activity_backfillrun_change", args=[run.pk])


def cancel_url(run: BackfillRun) -> str:
    return reverse("admin:activity_backfillrun_cancel", args=[run.pk])


def progress_url(run: BackfillRun) -> str:
    return reverse("admin:activity_backfillrun_progress", args=[run.pk])


def staff_client(*codenames: str, superuser: bool = False, csrf: bool = False) -> tuple[Client, object]:
    user = UserFactory(is_staff=True, is_superuser=superuser)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="activity", codename__in=codenames))
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client, user


OPERATOR = ("add_backfillrun", "change_backfillrun", "view_backfillrun")


# --- operators ---------------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_staff_start_a_backfill_from_the_form_and_watch_it_finish_on_the_worker(history_mode, live_worker):
    history = make_history(players=6, matches=20)
    client, operator = staff_client(*OPERATOR)

    form = client.get(START)
    assert form.status_code == 200 and b"Start backfill" in form.content and b"csrfmiddlewaretoken" in form.content
    response = client.post(START, {"sources": [], "batch_size": 5})  # dry run unticked, no source = all

    run = BackfillRun.objects.get()
    assert response.status_code == 302 and response["Location"] == change_url(run)
    assert (run.created_by, run.dry_run, run.batch_size, run.sources) == (operator, False, 5, list(SOURCES))
    wait_until(lambda: not BackfillRun.objects.get(pk=run.pk).is_active, timeout=30, message="the run to end")
    expected = Counter(
        history.expected.keys | {("profiles.userprofile", operator.pk, operator.pk, "profile_created", 1)}
    )

    page = client.get(change_url(run))
    assert page.status_code == 200
    text = page.content.decode()
    assert "100.0 %" in text and "succeeded" in text and f'<strong data-field="events">{len(expected)}</strong>' in text
    assert "events/s" in text and "ETA" in text and "Cancel this run" not in text
    progress = client.get(progress_url(run)).json()
    assert progress["status"] == "succeeded" and progress["percent"] == 100.0
    assert progress["events"] == len(expected) and progress["rows_done"] == progress["rows_total"]
    assert ledger_keys() == expected


@pytest.mark.django_db
def test_a_running_run_page_shows_live_progress_and_refreshes_itself(history_mode):
    make_history(players=4, matches=20)
    client, _ = staff_client(*OPERATOR)
    client.post(START, {"sources": [MATCH], "batch_size": 5, "dry_run": "on"})
    run = BackfillRun.objects.get()
    from activity.backfill import run_backfill_chunk

    run_backfill_chunk(run.pk, seq=0)  # what the worker would have done first

    text = client.get(change_url(run)).content.decode()
    assert '<strong data-field="percent">25.0 %</strong>' in text and "running" in text
    assert 'http-equiv="refresh"' in text and "Cancel this run" in text
    assert "events that would be created" in text
    assert client.get(progress_url(run)).json()["rows_done"] == 5


@pytest.mark.django_db
def test_staff_cancel_a_run_with_a_csrf_protected_post(history_mode):
    make_history(players=4, matches=6)
    client, _ = staff_client(*OPERATOR, csrf=True)
    page = client.get(START)
    token = page.cookies["csrftoken"].value
    client.post(START, {"sources": [MATCH], "batch_size": 2, "csrfmiddlewaretoken": token})
    run = BackfillRun.objects.get()
    assert run.status == BackfillRun.Status.QUEUED

    assert client.get(cancel_url(run)).status_code == 405  # never a state change on GET
    assert client.post(cancel_url(run)).status_code == 403  # no CSRF token
    run.refresh_from_db()
    assert run.status == BackfillRun.Status.QUEUED

    response = client.post(cancel_url(run), {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == change_url(run)
    run.refresh_from_db()
    assert run.status == BackfillRun.Status.CANCELLED and run.cancel_requested


@pytest.mark.django_db
def test_the_start_form_without_a_csrf_token_is_refused():
    client, _ = staff_client(*OPERATOR, csrf=True)
    assert client.post(START, {"batch_size": 10}).status_code == 403
    assert not BackfillRun.objects.exists()


@pytest.mark.django_db
def test_the_start_form_shows_clear_errors_and_starts_nothing():
    client, _ = staff_client(*OPERATOR)
    response = client.post(START, {"sources": ["nope.nothing"], "batch_size": 0})
    assert response.status_code == 200
    text = response.content.decode()
    assert "nope.nothing is not one of the available choices" in text
    assert "Ensure this value is greater than or equal to 1" in text
    assert not BackfillRun.objects.exists()


@pytest.mark.django_db
def test_the_changelist_cancel_action_cancels_the_selected_active_runs(history_mode):
    make_history(players=4, matches=4)
    client, _ = staff_client(*OPERATOR)
    from activity.backfill import start_backfill

    active, other = start_backfill([MATCH]), start_backfill([MATCH])
    response = client.post(
        reverse("admin:activity_backfillrun_changelist"), {"action": "cancel_selected", "_selected_action": [active.pk]}
    )
    assert response.status_code == 302
    active.refresh_from_db(), other.refresh_from_db()
    assert (active.status, other.status) == (BackfillRun.Status.CANCELLED, BackfillRun.Status.QUEUED)


# --- everyone else -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_non_staff_user_is_sent_to_the_admin_login_and_changes_nothing(history_mode):
    make_history(players=4, matches=4)
    from activity.backfill import start_backfill

    run = start_backfill([MATCH])
    client = Client()
    client.force_login(UserFactory(is_staff=False))

    for response in (
        client.get(START),
        client.post(START, {"batch_size": 10}),
        client.post(cancel_url(run)),
        client.get(change_url(run)),
        client.get(progress_url(run)),
    ):
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
    assert BackfillRun.objects.count() == 1
    run.refresh_from_db()
    assert run.status == BackfillRun.Status.QUEUED and not run.cancel_requested


@pytest.mark.django_db
def test_staff_without_the_backfill_permissions_get_403(history_mode):
    make_history(players=4, matches=4)
    from activity.backfill import start_backfill

    run = start_backfill([MATCH])
    client, _ = staff_client("view_backfillrun")
    assert client.get(START).status_code == 403
    assert client.post(START, {"batch_size": 10}).status_code == 403
    assert client.post(cancel_url(run)).status_code == 403
    assert client.get(change_url(run)).status_code == 200  # watching is allowed
    run.refresh_from_db()
    assert BackfillRun.objects.count() == 1 and run.status == BackfillRun.Status.QUEUED


# --- the ledger is read-only, for superusers too -------------------------------------------------------------------


@pytest.fixture
def recorded(history_mode):
    from activity.backfill import drive_inline, start_backfill

    history = make_history(players=4, matches=6)
    drive_inline(start_backfill(None).pk)
    return history


@pytest.mark.django_db
def test_a_superuser_cannot_add_change_or_delete_a_ledger_row(recorded):
    client, _ = staff_client(superuser=True)
    row = UserActivity.objects.order_by("id").first()
    before = ledger_keys()
    add = reverse("admin:activity_useractivity_add")
    change = reverse("admin:activity_useractivity_change", args=[row.pk])
    delete = reverse("admin:activity_useractivity_delete", args=[row.pk])

    assert client.get(add).status_code == 403
    assert client.post(add, {"user": row.user_id, "event_type": "match_won"}).status_code == 403
    assert client.post(change, {"event_type": "match_won", "user": row.user_id}).status_code == 403
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403

    view = client.get(change)
    assert view.status_code == 200 and b'name="_save"' not in view.content  # a read-only view
    changelist = client.get(reverse("admin:activity_useractivity_changelist"))
    assert changelist.status_code == 200 and b"action-select" not in changelist.content  # no bulk actions
    assert client.post(
        reverse("admin:activity_useractivity_changelist"),
        {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"},
    ).status_code in (200, 302)
    assert ledger_keys() == before


@pytest.mark.django_db
def test_the_ledger_is_searched_by_user_id_or_exact_username(recorded, django_assert_max_num_queries):
    client, _ = staff_client(superuser=True)
    someone = recorded.users[2]
    changelist = reverse("admin:activity_useractivity_changelist")
    mine = UserActivity.objects.filter(user=someone).count()

    for term in (str(someone.pk), someone.username):
        with django_assert_max_num_queries(12):
            response = client.get(changelist, {"q": term})
        assert response.status_code == 200
        shown = response.context["cl"].result_list
        assert len(shown) == mine and {a.user_id for a in shown} == {someone.pk}
    assert len(client.get(changelist, {"q": "nobody-by-that-name"}).context["cl"].result_list) == 0
    by_type = client.get(changelist, {"event_type__exact": "match_won"}).context["cl"].result_list
    assert {a.event_type for a in by_type} == {"match_won"}
