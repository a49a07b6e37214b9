"""Provisioning of the per-user rows every account has (profile, wallet), for single and bulk paths."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.contrib.auth import get_user_model
from django.db import transaction

from esports.profiles.models import UserProfile


def provision_users(user_ids: Iterable[int], display_names: dict[int, str] | None = None) -> None:
    """Create the missing profile and wallet of each user, set-based; existing rows are left as they are.

    Bulk paths (imports, generators) call this because bulk_create sends no post_save signal.
    """
    from esports.economy.models import DeltaCrownWallet  # economy builds on profiles; import lazily

    ids = sorted(set(user_ids))
    names = display_names or {}
    with transaction.atomic():
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            UserProfile.objects.bulk_create(
                [UserProfile(user_id=uid, display_name=names.get(uid, "")) for uid in chunk],
                ignore_conflicts=True, batch_size=1000,
            )
            DeltaCrownWallet.objects.bulk_create(
                [DeltaCrownWallet(profile_id=uid) for uid in chunk], ignore_conflicts=True, batch_size=1000,
            )


def create_users_bulk(rows: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Create users from (username, display_name) pairs that do not exist yet; returns username -> id for all.

    Existing usernames are kept (idempotent); every user ends with a profile and a wallet.
    """
    User = get_user_model()
    wanted = {username: name for username, name in rows}
    with transaction.atomic():
        existing = dict(User.objects.filter(username__in=list(wanted)).values_list("username", "id"))
        missing = [User(username=u, first_name=wanted[u][:150]) for u in wanted if u not in existing]
        for user in missing:
            user.set_unusable_password()
        User.objects.bulk_create(missing, batch_size=1000, ignore_conflicts=True)
        ids = dict(User.objects.filter(username__in=list(wanted)).values_list("username", "id"))
        provision_users(ids.values(), {ids[u]: wanted[u] for u in ids})
    return ids
