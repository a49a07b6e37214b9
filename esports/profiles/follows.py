"""Following another player: the one write path of `Follow` rows (pages, the API and the admin's tests all call it).

Both calls are idempotent: following someone you already follow, or unfollowing someone you do not, changes nothing
and is not an error (a double-clicked button, a retried request). The unique (follower, followee) pair is what stops
a duplicate under concurrency (INSERT .. ON CONFLICT DO NOTHING), not a read-then-write check.

Refused with a clear error: following yourself, and following (or being, as the follower) an account that is
deactivated (banned, erased, or an erasure tombstone). Both accounts are locked (FOR NO KEY UPDATE, in id order)
before the check: an erasure locks the account FOR UPDATE before it deletes the player's follows and deactivates
them, so a follow racing it either commits first (and is deleted with the rest) or waits and then sees the account
inactive.
Unfollowing is always allowed (it can only remove what a viewer sees).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection, transaction

from esports.profiles.models import Follow


class FollowError(ValueError):
    """A follow the platform refuses (HTTP 400 on the API, an error message on the pages)."""

    code = "invalid_follow"


class CannotFollowSelf(FollowError):
    code = "cannot_follow_self"


class FollowUnavailable(FollowError):
    """One of the two accounts is unknown or deactivated (erased, banned)."""

    code = "account_unavailable"


_INSERT = (
    f"INSERT INTO {Follow._meta.db_table} (follower_id, followee_id, created_at) VALUES (%s, %s, now()) "
    "ON CONFLICT (follower_id, followee_id) DO NOTHING RETURNING id"
)


def follow(*, follower_id: int, followee_id: int) -> bool:
    """Make `follower_id` follow `followee_id`; True if a new follow was made, False if it already existed.

    Raises CannotFollowSelf or FollowUnavailable (nothing written).
    """
    if follower_id == followee_id:
        raise CannotFollowSelf("You cannot follow yourself.")
    User = get_user_model()
    with transaction.atomic():
        active = set(
            User.objects.filter(pk__in=[follower_id, followee_id], is_active=True)
            .order_by("pk")
            .select_for_update(no_key=True)
            .values_list("pk", flat=True)
        )
        if follower_id not in active:
            raise FollowUnavailable("Your account cannot follow players (it is deactivated).")
        if followee_id not in active:
            raise FollowUnavailable("No such player, or the account is deactivated.")
        with connection.cursor() as cursor:
            cursor.execute(_INSERT, [follower_id, followee_id])
            return cursor.fetchone() is not None


def unfollow(*, follower_id: int, followee_id: int) -> bool:
    """Stop following; True if a follow was removed, False if there was none."""
    with transaction.atomic():
        deleted, _ = Follow.objects.filter(follower_id=follower_id, followee_id=followee_id).delete()
    return deleted > 0
