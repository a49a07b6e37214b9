"""The ledger is append-only: no application path changes or removes a recorded row; the database holds the key."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from activity.event_types import EventType as E
from activity.models import ImmutableLedgerError, UserActivity
from tests.factories import UserAchievementFactory, UserFactory
from tests.ledger_helpers import record

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorded() -> UserActivity:
    unlock = UserAchievementFactory()
    record(unlock)
    return UserActivity.objects.get(source_model="achievements.userachievement", source_id=unlock.id)


def snapshot() -> list[tuple]:
    return list(UserActivity.objects.order_by("id").values_list("id", "user_id", "event_type", "timestamp", "metadata"))


def test_saving_an_existing_row_raises_and_changes_nothing(recorded):
    before = snapshot()
    recorded.event_type = E.TOURNAMENT_WON
    with pytest.raises(ImmutableLedgerError):
        recorded.save()
    assert snapshot() == before


def test_queryset_update_raises_and_changes_nothing(recorded):
    before = snapshot()
    with pytest.raises(ImmutableLedgerError):
        UserActivity.objects.filter(pk=recorded.pk).update(event_type=E.TOURNAMENT_WON)
    with pytest.raises(ImmutableLedgerError):
        UserActivity.objects.all().update(metadata={})
    assert snapshot() == before


def test_deleting_a_row_or_a_queryset_raises_and_removes_nothing(recorded):
    before = snapshot()
    with pytest.raises(ImmutableLedgerError):
        recorded.delete()
    with pytest.raises(ImmutableLedgerError):
        UserActivity.objects.filter(pk=recorded.pk).delete()
    with pytest.raises(ImmutableLedgerError):
        UserActivity.objects.all().delete()
    assert snapshot() == before


def test_bulk_update_raises(recorded):
    recorded.metadata = {"tampered": True}
    with pytest.raises(ImmutableLedgerError), transaction.atomic():
        UserActivity.objects.bulk_update([recorded], ["metadata"])
    assert UserActivity.objects.get(pk=recorded.pk).metadata != {"tampered": True}


def test_the_idempotency_key_is_enforced_by_the_database(recorded):
    duplicate = UserActivity(
        user_id=recorded.user_id,
        event_type=recorded.event_type,
        timestamp=timezone.now(),
        source_model=recorded.source_model,
        source_id=recorded.source_id,
        seq=recorded.seq,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()  # a plain INSERT, no read-then-write check in between
    assert UserActivity.objects.filter(source_model=recorded.source_model, source_id=recorded.source_id).count() == 1


def test_the_database_rejects_a_coin_event_without_amount_and_an_amount_on_other_events():
    user = UserFactory()
    bad = [
        UserActivity(user=user, event_type=E.COINS_EARNED, timestamp=timezone.now(), source_model="x", source_id=1),
        UserActivity(
            user=user, event_type=E.MATCH_WON, amount=5, timestamp=timezone.now(), source_model="x", source_id=2
        ),
    ]
    for row in bad:
        with pytest.raises(IntegrityError), transaction.atomic():
            row.save()
    assert not UserActivity.objects.filter(user=user).exists()


def test_the_ledger_has_the_designed_indexes():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, UserActivity._meta.db_table)
    indexed = {tuple(c["columns"]) for c in constraints.values() if c["index"] or c["unique"]}
    assert ("user_id", "timestamp", "id") in indexed  # timeline: (user, -timestamp)
    # by type, newest first (the feed's many-followee scan): covering, so its leading columns are what matters
    assert any(columns[:3] == ("event_type", "timestamp", "id") for columns in indexed)
    assert ("user_id", "event_type") in indexed
    # (source_model, source_id) lookups use the leading columns of the unique idempotency key.
    assert ("source_model", "source_id", "user_id", "event_type", "seq") in indexed
