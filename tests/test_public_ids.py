"""Public player IDs: format, parser, gapless assignment at creation (single, bulk, concurrent), the database guard."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from esports.profiles.models import PublicIDCounter, UserProfile
from esports.profiles.public_ids import (
    InvalidPublicID,
    PublicID,
    canonical_public_id,
    creation_year,
    format_public_id,
    parse_public_id,
)
from esports.profiles.services import create_users_bulk, provision_users
from esports.tournaments.synthetic import generate_platform
from tests.factories import UserFactory
from tests.private_services import run_signup_processes

YEAR = creation_year(None)
YY = YEAR % 100


def numbers_of(year: int) -> list[int]:
    ids = UserProfile.objects.filter(public_id__startswith=f"DC-{year % 100:02d}-").values_list("public_id", flat=True)
    return sorted(parse_public_id(p).number for p in ids)


# --- format and parser (no database) -----------------------------------------------------------------------------


def test_the_format_is_dc_two_digit_year_and_a_six_digit_counter():
    assert format_public_id(2026, 42) == "DC-26-000042"
    assert format_public_id(2031, 999_999) == "DC-31-999999"
    assert format_public_id(2026, 1_000_000) == "DC-26-1000000"  # past 999,999 a seventh digit grows


@pytest.mark.parametrize("text", ["DC-26-000042", "dc-26-000042", "Dc-26-000042", "dC-26-000042"])
def test_the_parser_accepts_any_letter_case_and_canonicalises(text):
    assert parse_public_id(text) == PublicID(26, 42)
    assert canonical_public_id(text) == "DC-26-000042"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "DC-26-42",
        "DC-2026-000042",
        "DC-26-000000",
        "DC-26-0000042",
        "XX-26-000042",
        " DC-26-000042",
        "DC-26-000042 ",
        "DC26000042",
        "DC-26-00004a",
        "DC-26-٠٠٠٠٤٢",
        "DC-26-000042\n",
        None,
        42,
    ],
)
def test_the_parser_rejects_anything_else_with_a_clear_error(text):
    with pytest.raises(InvalidPublicID, match="expected DC-YY-NNNNNN"):
        parse_public_id(text)


# --- assignment --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_new_user_gets_the_next_id_of_the_year_and_the_counter_follows():
    first, second = UserFactory(), UserFactory()
    assert first.profile.public_id == f"DC-{YY:02d}-000001"
    assert UserProfile.objects.get(pk=second.pk).public_id == f"DC-{YY:02d}-000002"
    assert PublicIDCounter.objects.get(year=YEAR).last_value == 2


@pytest.mark.django_db
def test_a_rolled_back_creation_leaves_no_gap():
    UserFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        UserFactory()  # reserved number 2 in this transaction...
        raise RuntimeError("the sign-up request fails after the profile was created")
    later = UserFactory()  # ...and the rollback returned it
    assert UserProfile.objects.get(pk=later.pk).public_id == f"DC-{YY:02d}-000002"
    assert numbers_of(YEAR) == [1, 2]


@pytest.mark.django_db
def test_bulk_created_users_get_one_contiguous_block_in_creation_order():
    UserFactory()  # number 1 is taken before the bulk path runs
    ids = create_users_bulk([(f"bulk{i}", f"Bulk {i}") for i in range(30)])
    UserFactory()
    got = dict(UserProfile.objects.filter(user_id__in=ids.values()).values_list("user_id", "public_id"))
    in_creation_order = [got[uid] for uid in sorted(ids.values())]  # same date_joined order as ids here
    assert in_creation_order == [format_public_id(YEAR, n) for n in range(2, 32)]
    assert numbers_of(YEAR) == list(range(1, 33))
    assert create_users_bulk([(f"bulk{i}", "again") for i in range(30)]) == ids  # nothing new: no number spent
    assert PublicIDCounter.objects.get(year=YEAR).last_value == 32


@pytest.mark.django_db
def test_provisioning_numbers_each_creation_year_apart_in_join_order():
    User = get_user_model()
    joined = [
        datetime(2024, 12, 31, 23, 0, tzinfo=UTC),
        datetime(2025, 1, 1, 0, 30, tzinfo=UTC),
        datetime(2024, 3, 1, tzinfo=UTC),
        datetime(2025, 1, 1, 0, 30, tzinfo=UTC),
    ]
    users = User.objects.bulk_create([User(username=f"old{i}", date_joined=d) for i, d in enumerate(joined)])
    provision_users([u.pk for u in users])
    got = [UserProfile.objects.get(pk=u.pk).public_id for u in users]
    assert got == ["DC-24-000002", "DC-25-000001", "DC-24-000001", "DC-25-000002"]  # ties by id


@pytest.mark.django_db
def test_generate_platform_numbers_its_users_contiguously_by_join_date():
    generate_platform(60, 2, seed=3)
    profiles = list(
        UserProfile.objects.filter(user__username__startswith="gen3_")
        .order_by("created_at", "user_id")
        .values_list("public_id", flat=True)
    )
    assert profiles == [format_public_id(2024, n) for n in range(1, 61)]


@pytest.mark.django_db
def test_the_database_refuses_a_profile_without_id_and_a_change_of_an_assigned_one():
    user = UserFactory()
    with pytest.raises(IntegrityError, match="cannot change"), transaction.atomic():
        UserProfile.objects.filter(pk=user.pk).update(public_id="DC-26-999999")
    bare = get_user_model().objects.bulk_create([get_user_model()(username="bare")])[0]
    with pytest.raises(IntegrityError, match="without a public ID"), transaction.atomic():
        UserProfile.objects.bulk_create([UserProfile(user_id=bare.pk)])
    with pytest.raises(IntegrityError), transaction.atomic():
        UserProfile.objects.bulk_create([UserProfile(user_id=bare.pk, public_id="dc-26-000077")])  # not canonical


@pytest.mark.django_db(transaction=True)
def test_eight_processes_signing_up_at_once_get_exactly_one_to_1600():
    reports = run_signup_processes(8, 200)
    assert sum(r["created"] for r in reports) == 1600
    assert UserProfile.objects.filter(user__username__startswith="signup").count() == 1600
    assert numbers_of(YEAR) == list(range(1, 1601))  # distinct (unique column) and gapless
    assert PublicIDCounter.objects.get(year=YEAR).last_value == 1600
