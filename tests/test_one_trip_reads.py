"""project/one_trip_reads.py: a hot read is one message (settings, statement, resets), prepared once per connection
with a generic plan; the book of what a connection holds survives errors and reconnects without ever being wrong."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

import project.one_trip_reads as otr
from activity.models import UserActivity
from project.one_trip_reads import Read, explain, fetch, instances
from tests.factories import UserFactory
from tests.read_side import BASE_TIME, event, record

SETTINGS_SEEN = Read(
    "SELECT %(a)s + 1 AS next, '100%%' AS pct, current_setting('work_mem') AS work_mem, "
    "current_setting('plan_cache_mode') AS plan_cache_mode",
    {"a": "int"},
    {"work_mem": "'7MB'"},
)


def _setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s)", [name])
        return cursor.fetchone()[0]


def _prepared() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_a_read_is_one_message_its_settings_local_and_prepared_once_per_connection():
    connection.close()
    default = _setting("work_mem")
    with CaptureQueriesContext(connection) as first:
        got = fetch(SETTINGS_SEEN, {"a": 41})
    assert got.columns == ["next", "pct", "work_mem", "plan_cache_mode"]
    assert got.rows == [(42, "100%", "7MB", "force_generic_plan")]
    (message,) = [q["sql"] for q in first.captured_queries]
    assert message.startswith(f"PREPARE {SETTINGS_SEEN.name} (int) AS ")
    # Outside a transaction the message is its own implicit one: its settings ended with it.
    assert _setting("work_mem") == default and _setting("plan_cache_mode") == "auto"
    with CaptureQueriesContext(connection) as second:
        assert fetch(SETTINGS_SEEN, {"a": 1}).rows[0][0] == 2
    (message,) = [q["sql"] for q in second.captured_queries]
    assert message.startswith("SET LOCAL") and "PREPARE" not in message
    assert SETTINGS_SEEN.name in _prepared()
    # Inside a caller's transaction the settings are put back in the same message.
    with transaction.atomic():
        with CaptureQueriesContext(connection) as inside:
            assert fetch(SETTINGS_SEEN, {"a": 2}).rows[0][2] == "7MB"
        assert len(inside.captured_queries) == 1
        assert _setting("work_mem") == default and _setting("plan_cache_mode") == "auto"
    # A new connection holds nothing: the book is per connection, and the statement is prepared there again.
    connection.close()
    with CaptureQueriesContext(connection) as reconnected:
        assert fetch(SETTINGS_SEEN, {"a": 3}).rows[0][0] == 4
    assert "PREPARE" in reconnected.captured_queries[0]["sql"]


@pytest.mark.django_db(transaction=True)
def test_after_a_failed_message_the_next_one_starts_over_whatever_the_failure_left_prepared():
    connection.close()
    divide = Read("SELECT 10 / %(d)s AS q", {"d": "int"})
    with pytest.raises(DatabaseError):
        fetch(divide, {"d": 0})  # PREPARE succeeded, EXECUTE failed: the statement exists, unbooked
    assert divide.name in _prepared()
    with CaptureQueriesContext(connection) as after:
        assert fetch(divide, {"d": 5}).rows == [(2,)]
    assert after.captured_queries[0]["sql"].startswith("DEALLOCATE ALL; PREPARE")
    # Deallocated behind the book's back (DISCARD ALL, say): that request fails, the next one works.
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    with pytest.raises(DatabaseError):
        fetch(divide, {"d": 5})
    assert fetch(divide, {"d": 5}).rows == [(2,)]


@pytest.mark.django_db(transaction=True)
def test_a_connection_holds_at_most_max_prepared_the_least_recently_used_deallocated(monkeypatch):
    connection.close()
    monkeypatch.setattr(otr, "MAX_PREPARED", 2)
    reads = [Read(f"SELECT {n} + %(a)s AS v", {"a": "int"}) for n in range(3)]
    fetch(reads[0], {"a": 0})
    fetch(reads[1], {"a": 0})
    fetch(reads[0], {"a": 0})  # used again: reads[1] is now the least recently used
    fetch(reads[2], {"a": 0})
    assert _prepared() == {reads[0].name, reads[2].name}
    assert [fetch(r, {"a": 1}).rows for r in reads] == [[(1,)], [(2,)], [(3,)]]


@pytest.mark.django_db
def test_an_unprepared_read_is_planned_with_its_values_and_a_prepared_one_with_the_generic_plan():
    like = "SELECT id FROM auth_user WHERE lower(username) LIKE %(p)s ORDER BY lower(username) LIMIT 5"
    settings = {"enable_seqscan": "off"}
    planned = explain(Read(like, {"p": "text"}, settings, prepare=False), {"p": "abc%"})
    generic = explain(Read(like, {"p": "text"}, settings), {"p": "abc%"})
    # The pattern's literal prefix becomes a range of the prefix index only when the planner sees the pattern.
    assert "Index Cond: ((lower((username)::text) ~>=~ 'abc'::text)" in planned, planned
    assert "~>=~" not in generic and "$1" in generic, generic


@pytest.mark.django_db
def test_rows_become_instances_as_the_orm_loads_them_with_extra_columns_as_attributes():
    user = UserFactory()
    (stored,) = record(event(user, "team_joined", at=BASE_TIME, meta={"team": "Red", "n": 3}))
    read = Read(
        "SELECT a.*, 'x' || a.user_id::text AS label FROM activity_useractivity a WHERE a.id = %(id)s",
        {"id": "bigint"},
    )
    (loaded,) = instances(UserActivity, fetch(read, {"id": stored.id}), extra=("label",))
    orm = UserActivity.objects.get(pk=stored.id)
    assert loaded.metadata == orm.metadata == {"team": "Red", "n": 3}
    assert (loaded.pk, loaded.user_id, loaded.timestamp, loaded.event_type) == (
        orm.pk,
        orm.user_id,
        orm.timestamp,
        orm.event_type,
    )
    assert loaded.label == f"x{user.pk}" and not loaded._state.adding


def test_a_parameter_without_a_type_or_a_bad_setting_name_is_refused():
    with pytest.raises(ValueError, match="no declared type"):
        Read("SELECT %(a)s", {})
    with pytest.raises(ValueError, match="not setting names"):
        Read("SELECT 1", {}, {"work_mem; DROP TABLE x": "1"})
