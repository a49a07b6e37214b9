"""Redaction at write: no forbidden field's value reaches the audit table, at any depth, for any event type."""

from __future__ import annotations

import pytest
from django.db import connection

from audit.event_types import AuditEventType
from audit.models import UserAuditEvent
from audit.redaction import FORBIDDEN_FIELDS, REDACTED, redact
from audit.services import record_audit_event
from tests.audit_support import TABLE

SECRET = "s3cr3t-value-0042"
# Beyond the exact names: keys that contain a forbidden part, in any letter case.
DERIVED_NAMES = ("new_password", "API_TOKEN", "refresh_token", "client_secret", "backup_email", "SessionCookie")


def _everything_forbidden() -> dict:
    fields = dict.fromkeys((*sorted(FORBIDDEN_FIELDS), *DERIVED_NAMES), SECRET)
    return {
        **fields,
        "fields": {name: {"before": SECRET, "after": SECRET} for name in fields},  # the admin's diff shape
        "nested": [{"deeper": [fields]}],
        "note": f"contact {SECRET[:4]}@example.com please",
        "kept": 42,
    }


def _stored_text() -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT string_agg(t::text, ' ') FROM {TABLE} AS t")
        return cursor.fetchone()[0] or ""


@pytest.mark.django_db
@pytest.mark.parametrize("event_type", AuditEventType.values)
def test_every_forbidden_field_is_redacted_for_every_event_type(event_type):
    event = record_audit_event(
        actor="job:test", event_type=event_type, subject_user_id=1, changes=_everything_forbidden()
    )
    stored = UserAuditEvent.objects.get(pk=event.pk).changes
    assert SECRET not in _stored_text() and "@example.com" not in _stored_text()
    for name in (*FORBIDDEN_FIELDS, *DERIVED_NAMES):
        assert stored[name] == REDACTED
        assert stored["fields"][name] == REDACTED
        assert stored["nested"][0]["deeper"][0][name] == REDACTED
    assert stored["kept"] == 42 and stored["note"] == f"contact {REDACTED} please"


@pytest.mark.django_db
def test_fields_configured_in_settings_are_redacted_too(settings):
    settings.AUDIT_FORBIDDEN_FIELDS = ("favourite_team",)
    event = record_audit_event(
        actor="job:test", event_type="admin_change", changes={"favourite_team": SECRET, "level": 3}
    )
    assert UserAuditEvent.objects.get(pk=event.pk).changes == {"favourite_team": REDACTED, "level": 3}


@pytest.mark.django_db
def test_the_admin_diff_of_a_display_name_never_reaches_the_table(client):
    from tests.factories import UserFactory

    staff, user = UserFactory(is_staff=True, is_superuser=True), UserFactory()
    client.force_login(staff)
    url = f"/admin/profiles/userprofile/{user.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {n: v for n, v in form.initial.items() if v is not None and v is not False}  # 0 is a value
    data = {n: ("on" if v is True else v) for n, v in data.items()}
    data["display_name"] = "Jane Q. Secretname"
    assert client.post(url, data).status_code == 302
    event = UserAuditEvent.objects.filter(event_type="admin_change").get()
    assert event.changes["fields"] == {"display_name": REDACTED}
    assert "Secretname" not in _stored_text()


def test_redaction_makes_values_canonical_for_the_hash():
    import datetime as dt
    from decimal import Decimal

    cleaned = redact({"f": 1e20, "d": Decimal("1.50"), "t": dt.date(2026, 1, 2), 3: ("a", b"x"), "n": "a\x00b"})
    assert cleaned == {"f": "1e+20", "d": "1.50", "t": "2026-01-02", "3": ["a", "b'x'"], "n": "ab"}


def test_redaction_refuses_unbounded_nesting():
    deep: dict = {}
    node = deep
    for _ in range(30):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(ValueError, match="deeper"):
        redact(deep)
