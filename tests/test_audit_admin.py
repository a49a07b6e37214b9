"""The audit trail in the admin (read-only, filtered) and the nightly verification task."""

from __future__ import annotations

import pytest

from audit.services import record_audit_event
from tasks.audit_integrity import verify_audit_chain
from tests.audit_support import tamper
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/audit/userauditevent/"


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _listed(response) -> list[int]:
    return [event.pk for event in response.context["cl"].result_list]


def test_the_admin_lists_events_filtered_by_actor_subject_type_and_date(staff_client):
    staff = UserFactory(is_staff=True)
    by_job = record_audit_event(actor="job:test", event_type="stats_recomputed", subject_user_id=5)
    by_staff = record_audit_event(actor=staff, event_type="admin_change", subject_user_id=6)
    assert staff_client.get(CHANGELIST).status_code == 200
    assert _listed(staff_client.get(CHANGELIST, {"subject": 5})) == [by_job.pk]
    assert _listed(staff_client.get(CHANGELIST, {"actor": staff.pk})) == [by_staff.pk]
    assert _listed(staff_client.get(CHANGELIST, {"event_type__exact": "admin_change"})) == [by_staff.pk]
    day = by_job.occurred_at
    on_day = {"occurred_at__year": day.year, "occurred_at__month": day.month, "occurred_at__day": day.day}
    assert set(_listed(staff_client.get(CHANGELIST, on_day))) >= {by_job.pk, by_staff.pk}


def test_the_admin_cannot_add_change_or_delete_an_event(staff_client):
    event = record_audit_event(actor="job:test", event_type="stats_recomputed", subject_user_id=5)
    assert staff_client.get(f"{CHANGELIST}add/").status_code == 403
    page = staff_client.get(f"{CHANGELIST}{event.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content  # a view page, no save button
    assert staff_client.post(f"{CHANGELIST}{event.pk}/change/", {"event_type": "staff_login"}).status_code == 403
    assert staff_client.post(f"{CHANGELIST}{event.pk}/delete/", {"post": "yes"}).status_code == 403


def test_the_nightly_task_reports_an_intact_and_a_broken_chain():
    record_audit_event(actor="job:test", event_type="stats_recomputed", subject_user_id=5)
    record_audit_event(actor="job:test", event_type="stats_recomputed", subject_user_id=6)
    assert verify_audit_chain() == {"ok": True, "rows_checked": 2, "duration_seconds": pytest.approx(0, abs=5)}
    tamper("UPDATE audit_userauditevent SET subject_user_id = 7 WHERE id = 1")
    outcome = verify_audit_chain()
    assert outcome["ok"] is False and outcome["rows_checked"] == 0
