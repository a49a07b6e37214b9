"""Signal receivers: they only schedule an enqueue for after the commit, and never write anything themselves."""
from __future__ import annotations

from functools import partial

from django.db import transaction
from django.db.models.signals import post_save

from activity.sources import SOURCES
from tasks.enqueue import enqueue_source_change


def _on_source_saved(sender, instance, raw=False, **kwargs) -> None:
    if raw:  # fixtures being loaded
        return
    label = sender._meta.label_lower
    transaction.on_commit(partial(enqueue_source_change, label, instance.pk), robust=True)


def connect_receivers() -> None:
    # post_delete is deliberately not connected: a deleted source row removes nothing from the ledger.
    for label, kind in SOURCES.items():
        post_save.connect(_on_source_saved, sender=kind.model, dispatch_uid=f"activity.record.{label}")
