"""audit_export and the staff endpoint: JSONL in chain order, filtered, streamed in constant memory."""

from __future__ import annotations

import json
import tracemalloc
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from audit.event_types import AuditEventType
from audit.export import iter_events
from audit.services import AuditItem, record_audit_event, record_audit_events
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _bulk(n: int, event_type: str = AuditEventType.STATS_RECOMPUTED) -> None:
    record_audit_events(
        actor="job:test",
        event_type=event_type,
        items=[AuditItem(i % 50 + 1, ("stats.userprofilestats", i), {"n": i, "pad": "x" * 40}) for i in range(n)],
    )


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_command_writes_jsonl_filtered_by_user_type_since_and_limit(tmp_path):
    first = record_audit_event(actor="job:test", event_type="stats_recomputed", subject_user_id=5)
    record_audit_event(actor="job:test", event_type="wallet_credited", subject_user_id=5)
    record_audit_event(actor="job:test", event_type="wallet_credited", subject_user_id=6)
    out = tmp_path / "audit.jsonl"

    call_command("audit_export", output=str(out), verbosity=0)
    everything = _lines(out)
    assert [e["id"] for e in everything] == [1, 2, 3]
    assert everything[0]["hash"] == first.hash and everything[0]["actor"] == {
        "kind": "system",
        "user_id": None,
        "job": "job:test",
    }

    call_command("audit_export", output=str(out), user_id=5, verbosity=0)
    assert [e["id"] for e in _lines(out)] == [1, 2]
    call_command("audit_export", output=str(out), event_type="wallet_credited", verbosity=0)
    assert [e["id"] for e in _lines(out)] == [2, 3]
    call_command("audit_export", output=str(out), user_id=5, event_type="wallet_credited", verbosity=0)
    assert [e["id"] for e in _lines(out)] == [2]
    call_command("audit_export", output=str(out), limit=2, verbosity=0)
    assert [e["id"] for e in _lines(out)] == [1, 2]
    call_command("audit_export", output=str(out), since=first.occurred_at + timedelta(days=1), verbosity=0)
    assert _lines(out) == []


def test_the_command_refuses_an_unknown_event_type():
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("audit_export", "--event-type", "coffee_made")


def test_a_user_filter_also_finds_what_the_user_did_as_the_actor():
    staff = UserFactory(is_staff=True)
    record_audit_event(actor=staff, event_type="admin_change", subject_user_id=None)
    assert [e["actor"]["user_id"] for e in iter_events(user_id=staff.pk) if e["event_type"] == "admin_change"] == [
        staff.pk
    ]


def test_the_export_reads_in_chunks_not_per_row(django_assert_max_num_queries):
    _bulk(250)
    with django_assert_max_num_queries(3):
        assert sum(1 for _ in iter_events(chunk_size=100)) == 250


def _peak_bytes(rows: int) -> int:
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_events(chunk_size=500))
        assert count == rows
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_export_streams_in_constant_memory():
    _bulk(2_000)
    small = _peak_bytes(2_000)
    _bulk(18_000)
    large = _peak_bytes(20_000)
    # Ten times the rows, about the same peak: one chunk is held at a time (a list of every row would be ~10x).
    assert large < small * 1.5, (small, large)


def test_the_staff_endpoint_streams_the_same_jsonl(client):
    record_audit_event(actor="job:test", event_type="stats_recomputed", subject_user_id=5)
    record_audit_event(actor="job:test", event_type="wallet_credited", subject_user_id=6)
    client.force_login(UserFactory(is_staff=True))  # a staff_login event too
    response = client.get("/api/audit/events", {"user_id": 6})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert [(e["event_type"], e["subject_user_id"]) for e in lines] == [("wallet_credited", 6)]
    assert client.get("/api/audit/events", {"event_type": "nope"}).status_code == 400


def test_non_staff_and_anonymous_get_403_from_the_export_endpoint(client):
    record_audit_event(actor="job:test", event_type="stats_recomputed", subject_user_id=5)
    assert client.get("/api/audit/events").status_code == 403
    client.force_login(UserFactory())
    response = client.get("/api/audit/events")
    assert response.status_code == 403 and b"stats_recomputed" not in response.content
