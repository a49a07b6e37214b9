"""Provisioning of the per-user rows every account has (profile, wallet), for single and bulk paths."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction

from esports.profiles.models import UserProfile
from esports.profiles.public_ids import audit_public_ids, creation_year, format_public_id, reserve_block

CHUNK = 5000


def provision_users(user_ids: Iterable[int], display_names: dict[int, str] | None = None) -> None:
    """Create the missing profile and wallet of each user, set-based; existing rows are left as they are.

    Bulk paths (imports, generators) call this because bulk_create sends no post_save signal. The new profiles get
    their public IDs from one reserved block per creation year (the user's date_joined: the profile is created with,
    or dated to, the account), numbered in creation order, ties by id.
    """
    from esports.economy.models import DeltaCrownWallet  # economy builds on profiles; import lazily

    ids = sorted(set(user_ids))
    names = display_names or {}
    with transaction.atomic():
        missing = _lock_users_without_profile(ids)
        public_ids = assign_public_ids(missing)
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start : start + CHUNK]
            # No ignore_conflicts: the users are locked, so a conflict is a bug to see, not a reserved number to lose.
            UserProfile.objects.bulk_create(
                [
                    UserProfile(user_id=uid, display_name=names.get(uid, ""), public_id=public_ids[uid])
                    for uid, _joined in chunk
                ],
                batch_size=1000,
            )
        for start in range(0, len(ids), CHUNK):
            DeltaCrownWallet.objects.bulk_create(
                [DeltaCrownWallet(profile_id=uid) for uid in ids[start : start + CHUNK]],
                ignore_conflicts=True,
                batch_size=1000,
            )


def _lock_users_without_profile(ids: list[int]) -> list[tuple[int, datetime]]:
    """(user id, date_joined) of the users without a profile, in creation order; the users stay locked.

    The lock comes first, in a statement of its own: two provisioners of the same users queue there, and the second
    one's next statement (a fresh snapshot) sees the first one's profiles, so no reserved number is wasted.
    """
    User = get_user_model()
    missing: list[tuple[int, datetime]] = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        list(
            User.objects.filter(pk__in=chunk).order_by("pk").select_for_update(no_key=True).values_list("pk", flat=True)
        )
        missing.extend(User.objects.filter(pk__in=chunk, profile__isnull=True).values_list("pk", "date_joined"))
    missing.sort(key=lambda row: (row[1], row[0]))
    return missing


def assign_public_ids(rows: Sequence[tuple[int, datetime]]) -> dict[int, str]:
    """Public IDs for (user id, created at) rows given in creation order: one reserved block per year."""
    by_year: dict[int, list[int]] = {}
    for uid, created in rows:
        by_year.setdefault(creation_year(created), []).append(uid)
    assigned: dict[int, str] = {}
    for year, uids in by_year.items():
        assigned.update(zip(uids, (format_public_id(year, n) for n in reserve_block(year, len(uids)))))
    audit_public_ids(assigned)  # in the caller's transaction, which writes the IDs
    return assigned


def create_users_bulk(rows: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Create users from (username, display_name) pairs that do not exist yet; returns username -> id for all.

    Existing usernames are kept (idempotent); every user ends with a profile and a wallet.
    """
    User = get_user_model()
    wanted = dict(rows)
    with transaction.atomic():
        existing = dict(User.objects.filter(username__in=list(wanted)).values_list("username", "id"))
        missing = [User(username=u, first_name=wanted[u][:150]) for u in wanted if u not in existing]
        for user in missing:
            user.set_unusable_password()
        User.objects.bulk_create(missing, batch_size=1000, ignore_conflicts=True)
        ids = dict(User.objects.filter(username__in=list(wanted)).values_list("username", "id"))
        provision_users(ids.values(), {ids[u]: wanted[u] for u in ids})
    return ids
