"""The audit trail's storage: one write path, an append-only table, redaction at write, a verifiable hash chain."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from audit.chain import HASHED_COLUMNS, row_hash
from audit.event_types import ActorKind, AuditEventType
from audit.models import GENESIS_HASH, AuditChainHead, UserAuditEvent
from audit.services import AuditError, record_audit_event
from audit.verify import verify_chain
from tests.audit_support import TABLE, events_in_table, tamper, write_events
from tests.factories import UserFactory
from tests.ledger_helpers import run_in_threads

pytestmark = pytest.mark.django_db


# --- the write path -------------------------------------------------------------------------------------------------


def test_an_event_is_chained_to_the_previous_one_and_its_hash_covers_its_content():
    first, second = write_events(2)
    assert (first.pk, second.pk) == (1, 2)
    assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash
    stored = UserAuditEvent.objects.get(pk=2)
    assert stored.hash == second.hash == row_hash({c: getattr(stored, c) for c in HASHED_COLUMNS})
    assert AuditChainHead.objects.get().last_id == 2 and AuditChainHead.objects.get().last_hash == second.hash


def test_an_event_rolls_back_with_the_transaction_that_wrote_it_and_the_chain_stays_whole():
    write_events(1)
    with pytest.raises(RuntimeError), transaction.atomic():
        write_events(1)
        raise RuntimeError("the change failed")
    write_events(1)
    assert [e.pk for e in events_in_table()] == [1, 2]
    assert verify_chain().ok


def test_the_actor_is_a_staff_user_a_named_job_or_the_user_themself():
    staff, player, other = UserFactory(is_staff=True), UserFactory(), UserFactory()
    by_staff = record_audit_event(actor=staff, event_type="admin_change", subject_user_id=player.pk)
    by_self = record_audit_event(actor=player, event_type="privacy_settings_changed", subject_user_id=player.pk)
    by_job = record_audit_event(actor="job:reconcile_stats", event_type="reconciliation_run")
    assert (by_staff.actor_kind, by_staff.actor_user_id) == (ActorKind.STAFF, staff.pk)
    assert (by_self.actor_kind, by_self.actor_user_id) == (ActorKind.USER, player.pk)
    assert (by_job.actor_kind, by_job.actor_job, by_job.actor_user_id) == (
        ActorKind.SYSTEM,
        "job:reconcile_stats",
        None,
    )
    with pytest.raises(AuditError, match="not staff"):
        record_audit_event(actor=player, event_type="privacy_settings_changed", subject_user_id=other.pk)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"event_type": "coffee_made"}, "unknown audit event type"),
        ({"actor": "Bob from accounts"}, "system actor"),
        ({"subject_user_id": "7"}, "subject_user_id"),
        ({"changes": ["not", "a", "mapping"]}, "mapping"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error_and_nothing_is_written(kwargs, message):
    args = {"actor": "job:test", "event_type": "stats_recomputed", **kwargs}
    with pytest.raises(AuditError, match=message):
        record_audit_event(**args)
    assert UserAuditEvent.objects.count() == 0 and AuditChainHead.objects.get().last_id == 0


def test_a_write_costs_two_statements(django_assert_max_num_queries):
    write_events(1)
    with django_assert_max_num_queries(2):
        write_events(1)


# --- immutability in the database -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {TABLE} SET subject_user_id = 99",
        f"UPDATE {TABLE} SET changes = '{{}}'::jsonb WHERE id = 1",
        f"DELETE FROM {TABLE} WHERE id = 1",
        f"DELETE FROM {TABLE}",
    ],
)
def test_the_database_refuses_update_and_delete_of_audit_rows(statement):
    write_events(2)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert UserAuditEvent.objects.count() == 2


def test_a_queryset_update_or_delete_is_refused_too():
    write_events(1)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        UserAuditEvent.objects.filter(pk=1).update(event_type="staff_login")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        UserAuditEvent.objects.all().delete()
    with pytest.raises(TypeError):
        UserAuditEvent.objects.get(pk=1).save()
    assert UserAuditEvent.objects.get(pk=1).event_type == "stats_recomputed"


def test_truncate_is_refused_unless_the_session_opts_in():
    write_events(1)
    # The suite's own sessions opt in (tests/conftest.py): this one opts out for its transaction.
    refused = pytest.raises(IntegrityError, match="cannot be truncated")
    with connection.cursor() as cursor, refused, transaction.atomic():
        cursor.execute("SET LOCAL audit.allow_truncate = 'off'")
        cursor.execute(f"TRUNCATE {TABLE}")
    assert UserAuditEvent.objects.count() == 1


# --- verification ----------------------------------------------------------------------------------------------------


def verify_fails_at(row_id: int, kind: str) -> str:
    report = verify_chain()
    assert report.problem is not None, "verification passed a tampered chain"
    assert (report.problem.row_id, report.problem.kind) == (row_id, kind), report.problem
    with pytest.raises(CommandError, match=f"BROKEN at row {row_id} "):
        call_command("audit_verify_integrity", verbosity=0)
    return report.problem.message


def test_verify_passes_on_an_intact_chain():
    write_events(25)
    report = verify_chain(chunk_size=7)  # several chunks: the link across a chunk boundary is checked too
    assert report.ok and report.rows_checked == 25 and (report.first_id, report.last_id) == (1, 25)
    call_command("audit_verify_integrity", verbosity=0)


def test_verify_names_a_row_whose_field_was_changed():
    write_events(10)
    tamper(f"UPDATE {TABLE} SET subject_user_id = 8 WHERE id = 6")
    assert "a field was changed" in verify_fails_at(6, "changed")


def test_verify_names_a_row_whose_json_was_changed():
    write_events(10)
    tamper(f"""UPDATE {TABLE} SET changes = jsonb_set(changes, '{{matches_played,after}}', '99') WHERE id = 4""")
    verify_fails_at(4, "changed")


def test_verify_names_a_deleted_row():
    write_events(10)
    tamper(f"DELETE FROM {TABLE} WHERE id = 5")
    assert "row 5 missing" in verify_fails_at(5, "deleted")


def test_verify_names_rows_deleted_from_the_end():
    write_events(10)
    tamper(f"DELETE FROM {TABLE} WHERE id > 8")
    assert "rows 9..10 missing" in verify_fails_at(9, "deleted")


def _shift_up_from(first: int) -> None:
    """Make room at id `first`: every row from it on moves one up (through negative ids: the primary key)."""
    tamper(f"UPDATE {TABLE} SET id = -id - 1 WHERE id >= %s", [first])
    tamper(f"UPDATE {TABLE} SET id = -id WHERE id < 0")


def _insert_row(fields: dict) -> None:
    columns = [*HASHED_COLUMNS, "hash"]
    values = [json.dumps(fields[c]) if c == "changes" else fields[c] for c in columns]
    tamper(f"INSERT INTO {TABLE} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})", values)


def _forged(row_id: int, prev: UserAuditEvent) -> dict:
    fields = {c: getattr(prev, c) for c in HASHED_COLUMNS}
    fields.update(id=row_id, subject_user_id=12345, prev_hash=prev.hash)
    fields["hash"] = row_hash(fields)
    return fields


def test_verify_names_a_row_inserted_in_the_middle():
    write_events(10)
    _shift_up_from(6)
    _insert_row({**_forged(6, UserAuditEvent.objects.get(pk=5)), "hash": "f" * 64})  # a naive forgery
    verify_fails_at(6, "changed")


def test_a_forged_row_with_a_correct_hash_inserted_in_the_middle_breaks_the_link_of_the_next_row():
    write_events(10)
    _shift_up_from(6)
    _insert_row(_forged(6, UserAuditEvent.objects.get(pk=5)))  # the forger re-computed this row's hash
    # Row 6 is self-consistent, but row 7 (the former 6) was chained to row 5, not to the forgery.
    assert "inserted, removed or moved" in verify_fails_at(7, "relinked")


def test_a_row_appended_outside_the_write_path_is_found_by_the_chain_head():
    write_events(10)
    _insert_row(_forged(11, UserAuditEvent.objects.get(pk=10)))
    assert "appended outside record_audit_event" in verify_fails_at(11, "head")


def test_verify_names_the_first_of_two_swapped_rows():
    write_events(10)
    tamper(f"UPDATE {TABLE} SET id = -1 WHERE id = 4")
    tamper(f"UPDATE {TABLE} SET id = 4 WHERE id = 5")
    tamper(f"UPDATE {TABLE} SET id = 5 WHERE id = -1")
    verify_fails_at(4, "relinked")


def test_limit_and_since_verify_a_part_of_the_chain_from_its_stored_prev_hash():
    events = write_events(10)
    tamper(f"UPDATE {TABLE} SET subject_user_id = 8 WHERE id = 2")
    report = verify_chain(since=events[4].occurred_at)
    assert report.ok and (report.first_id, report.last_id, report.rows_checked) == (5, 10, 6)
    call_command("audit_verify_integrity", since=events[4].occurred_at, verbosity=0)
    limited = verify_chain(limit=1)
    assert limited.ok and limited.rows_checked == 1 and not limited.reached_end
    assert not verify_chain(limit=2).ok


def test_verify_publishes_its_outcome_as_metrics():
    from monitoring import metrics

    write_events(3)
    call_command("audit_verify_integrity", verbosity=0)
    assert metrics.AUDIT_VERIFY_OK._value.get() == 1 and metrics.AUDIT_VERIFY_ROWS._value.get() == 3
    tamper(f"DELETE FROM {TABLE} WHERE id = 2")
    with pytest.raises(CommandError):
        call_command("audit_verify_integrity", verbosity=0)
    assert metrics.AUDIT_VERIFY_OK._value.get() == 0


def test_verification_reads_the_table_in_chunks_not_per_row(django_assert_max_num_queries):
    write_events(30)
    with django_assert_max_num_queries(5):  # 3 chunks of 10 + the empty probe + the head
        assert verify_chain(chunk_size=10).ok


# --- concurrency -----------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_writers_leave_one_valid_chain():
    per_writer = 25

    def writer(i: int) -> None:
        for n in range(per_writer):
            with transaction.atomic():
                record_audit_event(
                    actor=f"job:writer_{i}", event_type=AuditEventType.STATS_RECOMPUTED, subject_user_id=n + 1
                )

    assert run_in_threads(8, writer) == []
    report = verify_chain()
    assert report.ok, report.problem
    assert report.rows_checked == 8 * per_writer == UserAuditEvent.objects.count()
    assert len(set(UserAuditEvent.objects.values_list("prev_hash", flat=True))) == 8 * per_writer  # no fork


def test_the_command_parses_since_and_limit_and_refuses_bad_values(capsys):
    write_events(3)
    call_command("audit_verify_integrity", "--since", "2000-01-01", "--limit", "2")
    assert "2 row(s) verified (rows 1..2)" in capsys.readouterr().out
    call_command("audit_verify_integrity", "--since", "2999-01-01T00:00:00Z")
    assert "0 row(s) verified" in capsys.readouterr().out
    with pytest.raises(CommandError, match="expected a date"):
        call_command("audit_verify_integrity", "--since", "yesterday")
    with pytest.raises(CommandError, match="positive integer"):
        call_command("audit_verify_integrity", "--limit", "0")
