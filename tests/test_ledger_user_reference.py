"""The ledger's reference to its user (migration activity 0015): triggers, checked once per statement, in place of
a foreign-key constraint checked once per row - with the same guarantee: no ledger row names a user that does not
exist, and no user the ledger names can be removed, also by raw SQL and under concurrency."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from activity.append import append
from activity.derivation import Derivation
from activity.event_types import EventType as E
from activity.events import NewEvent
from activity.models import UserActivity
from tests.factories import UserFactory
from tests.ledger_helpers import run_in_threads

User = get_user_model()
NO_SUCH_USER = 2_000_000_000

_RAW_INSERT = (
    "INSERT INTO activity_useractivity (user_id, event_type, timestamp, recorded_at, metadata, source_model, "
    "source_id, seq, visibility) SELECT u, 'achievement_unlocked', now(), now(), '{}', 'test.raw', s, 1, 'public' "
    "FROM unnest(%s::bigint[], %s::bigint[]) AS x(u, s)"
)


def raw_insert(user_ids: list[int], first_source_id: int = 1) -> None:
    """One INSERT statement of a ledger row per user id (source ids counting up from `first_source_id`)."""
    with connection.cursor() as cursor:
        cursor.execute(_RAW_INSERT, [user_ids, list(range(first_source_id, first_source_id + len(user_ids)))])


def achievement(user_id: int, source_id: int) -> Derivation:
    event = NewEvent(user_id, E.ACHIEVEMENT_UNLOCKED, timezone.now(), "test.source", source_id)
    return Derivation("test.source", source_id, (event,))


@pytest.mark.django_db
def test_an_append_naming_a_user_that_does_not_exist_fails_whole_and_names_the_user():
    user = UserFactory()
    missing = f"names user {NO_SUCH_USER}, which does not exist"
    with pytest.raises(IntegrityError, match=missing), transaction.atomic():
        append([achievement(user.pk, 1), achievement(NO_SUCH_USER, 2)])
    assert not UserActivity.objects.exists()  # the valid user's event did not go in either


@pytest.mark.django_db
def test_a_raw_statement_inserting_many_rows_is_checked_as_a_whole():
    users = [UserFactory().pk for _ in range(3)]
    raw_insert(users * 100)  # 300 rows, every user exists
    assert UserActivity.objects.count() == 300
    with pytest.raises(IntegrityError, match="does not exist"), transaction.atomic():
        raw_insert([*users, NO_SUCH_USER], first_source_id=1000)
    assert UserActivity.objects.count() == 300


@pytest.mark.django_db
def test_a_user_the_ledger_names_cannot_be_deleted_or_renumbered_by_sql():
    named, unnamed = UserFactory(), UserFactory()
    raw_insert([named.pk])
    for sql in ("DELETE FROM auth_user WHERE id = %s", "UPDATE auth_user SET id = id + 1000000000 WHERE id = %s"):
        still_named = f"user {named.pk} is still named"
        with pytest.raises(IntegrityError, match=still_named), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [named.pk])
    with connection.cursor() as cursor:  # other columns change freely (a login), and unnamed users are not checked
        cursor.execute("UPDATE auth_user SET last_login = now() WHERE id IN (%s, %s)", [named.pk, unnamed.pk])
    assert User.objects.filter(pk=named.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_delete_racing_an_insert_waits_for_it_and_then_fails():
    """The insert's statement trigger key-share locks the user: a concurrent delete waits for the inserting
    transaction, then sees its committed rows and fails. Without the lock the delete would see no row (the insert
    has not committed), succeed, and leave the ledger naming a user that no longer exists."""
    (user,) = User.objects.bulk_create([User(username="racer")])  # no profile (no signal): nothing else names it
    inserted = threading.Event()

    def insert_then_commit_late() -> None:
        with transaction.atomic():
            raw_insert([user.pk])
            inserted.set()
            threading.Event().wait(0.5)  # the delete is issued while this transaction is open

    def delete_meanwhile() -> None:
        assert inserted.wait(10)
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM auth_user WHERE id = %s", [user.pk])

    errors = run_in_threads(2, lambda i: (insert_then_commit_late if i == 0 else delete_meanwhile)())
    assert [type(e) for e in errors] == [IntegrityError], errors
    assert "is still named" in str(errors[0])
    assert User.objects.filter(pk=user.pk).exists()
    assert UserActivity.objects.filter(user_id=user.pk).count() == 1


@pytest.mark.django_db
def test_the_reference_is_one_statement_trigger_not_a_per_row_constraint():
    """What makes a backfill chunk's insert cheaper: no per-row referential-integrity check on the ledger."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'activity_useractivity'::regclass AND contype = 'f'"
        )
        assert cursor.fetchone() == (0,)
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'activity_useractivity'::regclass "
            "AND tgname LIKE 'activity_ledger_users_%%' AND (tgtype & 1) = 0 ORDER BY 1"  # bit 0 clear: per statement
        )
        assert [name for (name,) in cursor.fetchall()] == [
            "activity_ledger_users_exist_on_insert",
            "activity_ledger_users_exist_on_update",
        ]
