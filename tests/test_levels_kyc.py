"""Levels and identity verification: a level_up per multiple of 5 reached (idempotent per level), a private
kyc_verified once verified; recorded live and by the catch-up sweep; on the timeline by default."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from activity import catchup
from activity.event_types import EventType as E
from activity.models import UserActivity
from activity.privacy import relation_between
from activity.selectors.timeline import timeline
from esports.profiles.models import UserProfile
from tests.backfill_support import history_mode, no_grace  # noqa: F401 - fixtures
from tests.factories import UserFactory
from tests.ledger_helpers import record

pytestmark = pytest.mark.django_db


def levels(user) -> list[int]:
    rows = UserActivity.objects.filter(user=user, event_type=E.LEVEL_UP).order_by("seq")
    return [row.metadata["level"] for row in rows]


def set_profile(user, **fields) -> UserProfile:
    profile = UserProfile.objects.get(pk=user.pk)
    for name, value in fields.items():
        setattr(profile, name, value)
    profile.save()
    return profile


def test_level_12_gives_level_ups_for_5_and_10_and_raising_to_15_adds_one():
    user = UserFactory()
    profile = set_profile(user, level=12)
    record(profile)
    record(profile)  # recorded again: nothing new
    assert levels(user) == [5, 10]
    profile = set_profile(user, level=15)
    assert [e.event_type for e in record(profile).inserted] == [E.LEVEL_UP]
    assert levels(user) == [5, 10, 15]
    record(set_profile(user, level=3))  # lowered by the platform: what was reached stays, nothing is added
    record(set_profile(user, level=15))
    assert levels(user) == [5, 10, 15]
    assert set(UserActivity.objects.filter(user=user, event_type=E.LEVEL_UP).values_list("visibility", flat=True)) == {
        "public"
    }


def test_kyc_verified_is_recorded_once_and_private():
    user = UserFactory()
    record(UserProfile.objects.get(pk=user.pk))
    assert not UserActivity.objects.filter(user=user, event_type=E.KYC_VERIFIED).exists()
    verified_at = timezone.now()
    profile = set_profile(user, kyc_verified_at=verified_at)
    record(profile)
    record(profile)
    (row,) = UserActivity.objects.filter(user=user, event_type=E.KYC_VERIFIED)
    assert (row.visibility, row.timestamp) == ("private", verified_at)

    subject = UserProfile.objects.select_related("user").get(pk=user.pk)
    own = {e.event_type for e in timeline(relation_between(user, subject)).items}
    assert E.KYC_VERIFIED in own
    for viewer in (AnonymousUser(), UserFactory()):
        assert E.KYC_VERIFIED not in {e.event_type for e in timeline(relation_between(viewer, subject)).items}


def test_level_ups_are_on_everyones_default_timeline():
    user = UserFactory()
    record(set_profile(user, level=10))
    subject = UserProfile.objects.select_related("user").get(pk=user.pk)
    shown = [e.event_type for e in timeline(relation_between(AnonymousUser(), subject)).items]
    assert shown.count(E.LEVEL_UP) == 2


def test_the_catch_up_sweep_records_a_level_change_no_task_delivered(history_mode, no_grace):  # noqa: F811
    user = UserFactory()
    catchup.sweep()
    set_profile(user, level=5, kyc_verified_at=timezone.now())  # history_mode: no task is enqueued for it
    assert levels(user) == []
    catchup.sweep()
    assert levels(user) == [5]
    assert UserActivity.objects.filter(user=user, event_type=E.KYC_VERIFIED).count() == 1
