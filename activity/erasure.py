"""GDPR erasure: detach a player's history from them for good, keeping the ledger and every aggregate consistent.

`erase_user(user_id)` does, in one transaction:

1. creates a fresh anonymous *tombstone* account (inactive, unusable password, username `anonymous-<random>`,
   display name "Deleted player", private flags). One tombstone per erasure: two erased players who met in a match
   cannot collide on the ledger's idempotency key (source row, user, type, seq) or on the source tables' unique
   constraints (one registration per tournament and user...);
2. re-points the player's source rows to the tombstone (solo registrations, team memberships, teams created,
   achievements unlocked, the wallet and so its transactions), so that re-deriving any source row (catch-up sweep,
   backfill, the reconciliation's sources -> ledger pass) yields exactly the events the tombstone already has:
   nothing reappears under the erased account and reconciliation reports zero drift;
3. re-points every ledger row of the player to the tombstone (UserActivity's one sanctioned rewrite) and scrubs
   their metadata: free-text keys a player writes or that name people (PERSONAL_METADATA_KEYS: coin `reason`,
   `team` names...) are removed, and any other value containing one of the player's identifiers (username, first,
   last and display name, e-mail; 3+ characters, case-insensitive) is replaced by "[erased]". Tournament names,
   games, rounds, achievement names and ids stay: they describe the platform, not the person;
3b. scrubs the player's identifiers from OTHER users' events too (one set-based UPDATE over the ledger): a value of a
   key that names people (OTHER_USERS_NAME_KEYS: `team` in a teammate's team_joined, `opponent`, `username`,
   `display_name`) containing one of the identifiers becomes "[erased]" (a team called "Alice's Army" is renamed in
   every member's history). Only those keys: a tournament that happens to contain a short username stays named;
4. tells the subscribers (the stats app: remove the player's stats row, recompute the tombstone's stats from the
   ledger, drop cached stats and leaderboards after commit) - stats subscribes; activity never imports stats;
5. deletes the player's follows (both directions) and profile (display name, preferences and public ID: the ID is
   retired, never handed out again, since the year's counter only grows; the tombstone has its own fresh one, so
   the erased ID cannot lead to the tombstone), scrubs the account
   itself (username replaced by `erased-<random>`, names and e-mail emptied, unusable password, deactivated, staff
   rights, groups and permissions removed) and scrubs the admin log entries about it. The account row stays
   because the host platform's tables may still reference it;
6. writes an ErasureLog row and a log line, neither of which names the tombstone (that would re-identify it).

Concurrent recording cannot slip events past an erasure: the erasure locks the account row first (every ledger insert
for the account takes a key-share lock on it when it commits) and removes the stats row and the profile that every
projection write for the account needs. A recording for one of the player's rows either commits before the erasure
re-points the ledger (its events move with the rest), or fails (deadlock with the erasure, or its stats row's
profile is gone) and the source row, now the tombstone's, is recorded again by the task's retry, the catch-up sweep
or the nightly reconciliation.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import BooleanField, JSONField, Q
from django.db.models.expressions import RawSQL

from activity.derivation import PROFILE
from activity.models import ErasureLog, UserActivity
from activity.recording import record_events_for
from audit.event_types import AuditEventType
from audit.services import actor_from_context, record_audit_event
from esports.achievements.models import UserAchievement
from esports.economy.balances import copy_wallet_to_mirror
from esports.economy.models import DeltaCrownWallet
from esports.moderation.models import Dispute
from esports.profiles.models import Follow, UserProfile
from esports.profiles.services import provision_users
from esports.teams.models import Team, TeamMembership
from esports.tournaments.models import Registration

logger = logging.getLogger(__name__)

TOMBSTONE_PREFIX = "anonymous-"
ERASED_PREFIX = "erased-"
TOMBSTONE_DISPLAY_NAME = "Deleted player"
SCRUBBED = "[erased]"
PERSONAL_METADATA_KEYS: tuple[str, ...] = (
    "reason",
    "team",
    "display_name",
    "username",
    "email",
    "first_name",
    "last_name",
)
MIN_IDENTIFIER_LENGTH = 3
# Keys whose values name people in other users' events (the derivation's team metadata, and names of other players).
OTHER_USERS_NAME_KEYS: tuple[str, ...] = ("team", "opponent", "username", "display_name")

# A value (string content, or the JSON text of anything else) that contains one of the identifiers.
_VALUE_TEXT = "(CASE WHEN jsonb_typeof(e.value) = 'string' THEN e.value #>> '{}' ELSE e.value::text END)"
_NEEDS_SCRUB = (
    f"((metadata ?| %s::text[]) OR EXISTS (SELECT 1 FROM jsonb_each(metadata) AS e "
    f"WHERE {_VALUE_TEXT} ILIKE ANY(%s::text[])))"
)
_SCRUBBED_METADATA = (
    f"COALESCE((SELECT jsonb_object_agg(e.key, CASE WHEN {_VALUE_TEXT} ILIKE ANY(%s::text[]) "
    f"THEN to_jsonb(%s::text) ELSE e.value END) FROM jsonb_each(metadata - %s::text[]) AS e), "
    f"'{{}}'::jsonb)"
)


class ErasureError(Exception):
    """The erasure cannot be done (unknown account, already erased); nothing was changed."""


@dataclass(frozen=True, slots=True)
class ErasureResult:
    erased_user_id: int
    tombstone_id: int
    events_rewritten: int
    metadata_scrubbed: int
    source_rows: dict[str, int] = field(default_factory=dict)
    others_scrubbed: int = 0  # other users' events whose metadata named the player


ErasureListener = Callable[[ErasureResult], None]
_listeners: list[ErasureListener] = []


def register_erasure_listener(listener: ErasureListener) -> None:
    """Subscribe to erasures; called inside the erasure's transaction, after the ledger rewrite."""
    if listener not in _listeners:
        _listeners.append(listener)


def erase_user(user_id: int, *, requested_by=None, reason: str = "") -> ErasureResult:
    """Erase one player (see the module docstring); raises ErasureError, leaving everything unchanged."""
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            raise ErasureError(f"No user with id {user_id}.")
        if ErasureLog.objects.filter(erased_user_id=user_id).exists():
            raise ErasureError(f"User {user_id} has already been erased.")
        profile = UserProfile.objects.select_for_update().filter(pk=user_id).first()
        identifiers = personal_identifiers(user, profile)

        tombstone = _create_tombstone()
        source_rows = _repoint_sources(user_id, tombstone.pk)
        events, scrubbed = _rewrite_ledger(user_id, tombstone.pk, identifiers)
        others_scrubbed = _scrub_other_users_events(user_id, tombstone.pk, identifiers)
        result = ErasureResult(user_id, tombstone.pk, events, scrubbed, source_rows, others_scrubbed)
        for listener in _listeners:
            listener(result)

        source_rows["profiles.follow"] = Follow.objects.filter(
            Q(follower_id=user_id) | Q(followee_id=user_id)
        ).delete()[0]
        if profile is not None:
            profile.delete()
        source_rows["profiles.userprofile"] = int(profile is not None)
        _scrub_account(user)
        ErasureLog.objects.create(
            erased_user_id=user_id,
            requested_by=requested_by if _is_saved_user(requested_by) else None,
            events_rewritten=events,
            metadata_scrubbed=scrubbed,
            source_rows=source_rows,
            reason=reason[:200],
        )
        # By id only: the trail holds no personal data, so erasure rewrites nothing in it (README: Audit trail).
        record_audit_event(
            actor=requested_by if _is_saved_user(requested_by) else actor_from_context("command:erase_user", user_id),
            event_type=AuditEventType.GDPR_ERASURE,
            subject_user_id=user_id,
            changes={"events_rewritten": events, "metadata_scrubbed": scrubbed, "source_rows": source_rows},
        )
    logger.info(
        "GDPR erasure of user %s: %d event(s) re-pointed to a tombstone, %d scrubbed, %d of other users "
        "scrubbed; source rows %s",
        user_id,
        events,
        scrubbed,
        others_scrubbed,
        source_rows,
    )
    return result


def personal_identifiers(user, profile: UserProfile | None) -> list[str]:
    """Strings that identify the player (3+ characters, lower-cased, without duplicates)."""
    candidates = [
        user.get_username(),
        user.first_name,
        user.last_name,
        user.get_full_name(),
        user.email,
        user.email.split("@", 1)[0] if user.email else "",
        profile.display_name if profile else "",
        (profile.public_id or "") if profile else "",
    ]
    seen: dict[str, None] = {}
    for value in candidates:
        value = (value or "").strip().lower()
        if len(value) >= MIN_IDENTIFIER_LENGTH:
            seen.setdefault(value, None)
    return list(seen)


def _like_patterns(identifiers: list[str]) -> list[str]:
    escaped = (i.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for i in identifiers)
    return [f"%{e}%" for e in escaped]


def _create_tombstone():
    User = get_user_model()
    tombstone = User(username=f"{TOMBSTONE_PREFIX}{uuid.uuid4().hex[:16]}", is_active=False)
    tombstone.set_unusable_password()
    tombstone.save()
    provision_users([tombstone.pk])  # profile and wallet, if the platform's receivers did not already create them
    UserProfile.objects.filter(pk=tombstone.pk).update(
        display_name=TOMBSTONE_DISPLAY_NAME, show_match_history=False, show_tournament_stats=False
    )
    # Its own profile_created, recorded now rather than by the task its creation enqueues: the tombstone's stats
    # (recomputed below) and the sources -> ledger reconciliation are complete the moment the erasure commits.
    record_events_for(PROFILE, [tombstone.pk], origin="erasure")
    return tombstone


ERASED_REASON = "(erased)"


def _repoint_sources(user_id: int, tombstone_id: int) -> dict[str, int]:
    """Source rows that derive the player's events now belong to the tombstone (QuerySet.update: no signals, so
    nothing is re-recorded; re-deriving them later finds the tombstone's events already there)."""
    counts = {
        "tournaments.registration": Registration.objects.filter(user_id=user_id).update(user_id=tombstone_id),
        "teams.teammembership": TeamMembership.objects.filter(user_id=user_id).update(user_id=tombstone_id),
        "teams.team": Team.objects.filter(created_by_id=user_id).update(created_by_id=tombstone_id),
        "achievements.userachievement": UserAchievement.objects.filter(user_id=user_id).update(user_id=tombstone_id),
        # A dispute's reason is the player's own words: scrubbed with the filing handed to the tombstone.
        "moderation.dispute": Dispute.objects.filter(filed_by_id=user_id).update(
            filed_by_id=tombstone_id, reason=ERASED_REASON
        ),
    }
    moved = 0
    if DeltaCrownWallet.objects.filter(profile_id=user_id).exists():
        # The wallet's transactions are the source of the coin events: the wallet follows them. The tombstone's own
        # wallet was created a moment ago and is empty.
        DeltaCrownWallet.objects.filter(profile_id=tombstone_id).delete()
        moved = DeltaCrownWallet.objects.filter(profile_id=user_id).update(profile_id=tombstone_id)
        copy_wallet_to_mirror(tombstone_id)  # the tombstone's profile mirrors the wallet it now holds
    counts["economy.deltacrownwallet"] = moved
    return counts


def _rewrite_ledger(user_id: int, tombstone_id: int, identifiers: list[str]) -> tuple[int, int]:
    """Re-point every ledger row of the player and scrub its metadata, in one UPDATE; returns (rows, scrubbed)."""
    keys, patterns = list(PERSONAL_METADATA_KEYS), _like_patterns(identifiers)
    rows = UserActivity.objects.filter(user_id=user_id)
    scrubbed = (
        rows.alias(needs_scrub=RawSQL(_NEEDS_SCRUB, (keys, patterns), output_field=BooleanField()))
        .filter(needs_scrub=True)
        .count()
    )
    rewritten = rows._sanctioned_rewrite(
        user_id=tombstone_id,
        metadata=RawSQL(_SCRUBBED_METADATA, (patterns, SCRUBBED, keys), output_field=JSONField()),
    )
    return rewritten, scrubbed


def _scrub_other_users_events(user_id: int, tombstone_id: int, identifiers: list[str]) -> int:
    """Replace, in everyone else's events, name-carrying values that contain the player's identifiers; one UPDATE."""
    if not identifiers:
        return 0
    keys, patterns = list(OTHER_USERS_NAME_KEYS), _like_patterns(identifiers)
    named = (
        "EXISTS (SELECT 1 FROM jsonb_each(metadata) AS e WHERE e.key = ANY(%s::text[]) "
        f"AND {_VALUE_TEXT} ILIKE ANY(%s::text[]))"
    )
    scrubbed = (
        "(SELECT jsonb_object_agg(e.key, CASE WHEN e.key = ANY(%s::text[]) "
        f"AND {_VALUE_TEXT} ILIKE ANY(%s::text[]) THEN to_jsonb(%s::text) ELSE e.value END) "
        "FROM jsonb_each(metadata) AS e)"
    )
    # `metadata ?| keys` lets the scan skip rows without such keys before the per-value test.
    rows = (
        UserActivity.objects.exclude(user_id__in=[user_id, tombstone_id])
        .alias(
            has_keys=RawSQL("metadata ?| %s::text[]", (keys,), output_field=BooleanField()),
            named=RawSQL(named, (keys, patterns), output_field=BooleanField()),
        )
        .filter(has_keys=True, named=True)
    )
    return rows._sanctioned_rewrite(metadata=RawSQL(scrubbed, (keys, patterns, SCRUBBED), output_field=JSONField()))


def _scrub_account(user) -> None:
    User = get_user_model()
    user.username = f"{ERASED_PREFIX}{uuid.uuid4().hex[:16]}"
    user.first_name = user.last_name = user.email = ""
    user.is_active = user.is_staff = user.is_superuser = False
    user.last_login = None
    user.set_unusable_password()
    user.save()
    user.groups.clear()
    user.user_permissions.clear()
    # The admin's history names the account in object_repr (its old username).
    LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(User), object_id=str(user.pk)).update(
        object_repr=SCRUBBED, change_message=""
    )


def _is_saved_user(candidate) -> bool:
    return candidate is not None and getattr(candidate, "is_authenticated", False) and candidate.pk is not None
