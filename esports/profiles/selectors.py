"""Reads by public ID (the lookups pages, the API and the admin share)."""

from __future__ import annotations

from collections.abc import Iterable

from esports.profiles.models import UserProfile
from esports.profiles.public_ids import InvalidPublicID, canonical_public_id


def user_id_for_public_id(text: str) -> int | None:
    """The user id behind a public ID in any letter case; None when it is malformed or nobody has it."""
    try:
        canonical = canonical_public_id(text)
    except InvalidPublicID:
        return None
    return UserProfile.objects.filter(public_id=canonical).values_list("user_id", flat=True).first()


def public_ids_of(user_ids: Iterable[int]) -> dict[int, str | None]:
    """user id -> public ID for the given users, in one query (players listed on boards and in documents)."""
    return dict(UserProfile.objects.filter(user_id__in=list(user_ids)).values_list("user_id", "public_id"))
