"""Signal receivers: they only schedule an enqueue for after the commit, and never query or write anything
themselves."""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from activity import derivation as rules
from activity.sources import SOURCES
from tasks.enqueue import enqueue_source_change, enqueue_team_entries


def _on_source_saved(sender, instance, raw=False, **kwargs) -> None:
    if raw:  # fixtures being loaded
        return
    label = sender._meta.label_lower
    transaction.on_commit(partial(enqueue_source_change, label, instance.pk), robust=True)


def _on_source_deleted(sender, instance, **kwargs) -> None:
    """A deleted row is recorded like a changed one: record_events_for compensates rows that no longer exist.

    Django sends post_delete for every row a delete cascades to (a registration's matches and results, a team's
    memberships and registrations), because a connected receiver disables the collector's signal-less fast delete."""
    label = sender._meta.label_lower
    transaction.on_commit(partial(enqueue_source_change, label, instance.pk), robust=True)


def _on_membership_saved(sender, instance, raw=False, **kwargs) -> None:
    """A membership (added late, backdated, re-joined) changes who the team's entries stand for: the team's
    registrations created within the membership's interval, their matches and their tournaments' results are
    re-derived by the live path too, not only by the nightly reconciliation: one task after commit does the queries
    and the recording in the worker (tasks.recording.record_team_entries)."""
    if raw:
        return
    transaction.on_commit(
        partial(enqueue_team_entries, instance.team_id, instance.joined_at, instance.left_at), robust=True
    )


def connect_receivers() -> None:
    for label, kind in SOURCES.items():
        post_save.connect(_on_source_saved, sender=kind.model, dispatch_uid=f"activity.record.{label}")
        if kind.recorded_types:  # a profile's deletion is not compensated (see SourceKind.recorded_types)
            post_delete.connect(_on_source_deleted, sender=kind.model, dispatch_uid=f"activity.compensate.{label}")
    membership = SOURCES[rules.TEAM_MEMBERSHIP].model
    post_save.connect(_on_membership_saved, sender=membership, dispatch_uid="activity.record.team_entries")
