"""Signal receivers: they only schedule an enqueue for after the commit, and never write anything themselves."""
from __future__ import annotations

from functools import partial

from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save

from activity import derivation as rules
from activity.sources import SOURCES
from tasks.enqueue import enqueue_source_change


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
    re-derived by the live path too, not only by the nightly reconciliation."""
    if raw:
        return
    transaction.on_commit(partial(enqueue_team_entries, instance.team_id, instance.joined_at, instance.left_at), robust=True)


def enqueue_team_entries(team_id: int, joined_at, left_at) -> None:
    """Three set-based queries, then one enqueue per affected row (the receivers' enqueue function)."""
    from esports.tournaments.models import Match, Registration, TournamentResult

    registrations = Registration.objects.filter(team_id=team_id, created_at__gte=joined_at)
    if left_at is not None:
        registrations = registrations.filter(created_at__lt=left_at)
    entries = list(registrations.values_list("id", "tournament_id"))
    if not entries:
        return
    reg_ids = [r for r, _ in entries]
    tournaments = sorted({t for _, t in entries})
    match_ids = Match.objects.filter(Q(participant1_id__in=reg_ids) | Q(participant2_id__in=reg_ids)).values_list("id", flat=True)
    result_ids = TournamentResult.objects.filter(tournament_id__in=tournaments).values_list("id", flat=True)
    for label, ids in ((rules.REGISTRATION, reg_ids), (rules.MATCH, list(match_ids)), (rules.TOURNAMENT_RESULT, list(result_ids))):
        for pk in ids:
            enqueue_source_change(label, pk)


def connect_receivers() -> None:
    for label, kind in SOURCES.items():
        post_save.connect(_on_source_saved, sender=kind.model, dispatch_uid=f"activity.record.{label}")
        if kind.recorded_types:  # a profile's deletion is not compensated (see SourceKind.recorded_types)
            post_delete.connect(_on_source_deleted, sender=kind.model, dispatch_uid=f"activity.compensate.{label}")
    membership = SOURCES[rules.TEAM_MEMBERSHIP].model
    post_save.connect(_on_membership_saved, sender=membership, dispatch_uid="activity.record.team_entries")
