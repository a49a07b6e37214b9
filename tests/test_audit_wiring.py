"""Every wired call site writes exactly one audit event per thing it changed, in its own transaction (and none when
that transaction rolls back)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from activity.backfill import service as backfill
from activity.erasure import ErasureError, erase_user
from activity.privacy import relation_between
from audit.event_types import ActorKind, AuditEventType
from audit.models import UserAuditEvent
from audit.verify import verify_chain
from esports.economy.models import DeltaCrownWallet
from esports.economy.reconciliation import reconcile_economy
from esports.economy.services import InsufficientFunds, credit, debit, reverse
from esports.profiles.models import UserProfile
from esports.profiles.services import create_users_bulk
from esports.tournaments.models import Tournament
from stats.models import UserProfileStats
from stats.reconcile import run_reconciliation
from stats.selectors.export import user_export
from stats.stale import mark_stale, recompute_stale_stats
from tests.factories import TournamentFactory, UserFactory

pytestmark = pytest.mark.django_db


def events(event_type: str | None = None) -> list[UserAuditEvent]:
    qs = UserAuditEvent.objects.order_by("id")
    return list(qs.filter(event_type=event_type) if event_type else qs)


def only(event_type: str) -> UserAuditEvent:
    found = events(event_type)
    assert len(found) == 1, [(e.event_type, e.subject_user_id) for e in found]
    return found[0]


class Rollback(Exception):
    pass


def rolled_back(action) -> None:
    """Run `action` in a transaction that then rolls back."""
    with pytest.raises(Rollback), transaction.atomic():
        action()
        raise Rollback


# --- public IDs -----------------------------------------------------------------------------------------------------


def test_a_new_profile_writes_one_public_id_assigned_event():
    user = UserFactory()
    event = only(AuditEventType.PUBLIC_ID_ASSIGNED)
    assert event.subject_user_id == user.pk and event.object_model == "profiles.userprofile"
    assert event.changes == {"public_id": {"before": None, "after": user.profile.public_id}}
    assert event.actor_kind == ActorKind.SYSTEM


def test_a_rolled_back_sign_up_leaves_no_public_id_event():
    rolled_back(UserFactory)
    assert events() == []


def test_bulk_provisioning_writes_one_event_per_user_set_based():
    with CaptureQueriesContext(connection) as few:
        create_users_bulk([(f"few{i}", f"Few {i}") for i in range(3)])
    with CaptureQueriesContext(connection) as many:
        ids = create_users_bulk([(f"bulk{i}", f"Bulk {i}") for i in range(60)])
    assert len(many) == len(few)  # the audit events of a bulk path cost the same statements for 3 or 60 users
    assigned = events(AuditEventType.PUBLIC_ID_ASSIGNED)[3:]
    assert sorted(e.subject_user_id for e in assigned) == sorted(ids.values())
    assert verify_chain().ok


# --- economy --------------------------------------------------------------------------------------------------------


def test_credit_debit_and_reverse_each_write_one_wallet_event_in_their_transaction():
    user = UserFactory()
    before = len(events())
    earned = credit(user, 100, "prize")
    spent = debit(user, 30, "shop")
    reverse(spent)
    wallet_events = events()[before:]
    assert [(e.event_type, e.subject_user_id, e.object_id) for e in wallet_events] == [
        (AuditEventType.WALLET_CREDITED, user.pk, str(earned.pk)),
        (AuditEventType.WALLET_DEBITED, user.pk, str(spent.pk)),
        (AuditEventType.WALLET_CREDITED, user.pk, str(spent.reversed_by.pk)),
    ]
    assert wallet_events[1].changes["balance"] == {"before": 100, "after": 70}
    assert wallet_events[2].changes["reverses"] == spent.pk


def test_a_refused_or_rolled_back_movement_writes_no_wallet_event():
    user = UserFactory()
    with pytest.raises(InsufficientFunds):
        debit(user, 5, "nothing to pay with")
    rolled_back(lambda: credit(user, 5, "undone"))
    assert events(AuditEventType.WALLET_CREDITED) == events(AuditEventType.WALLET_DEBITED) == []


def test_an_economy_repair_writes_one_event_per_repaired_wallet():
    user, clean = UserFactory(), UserFactory()
    credit(user, 50, "prize")
    credit(clean, 10, "prize")
    DeltaCrownWallet.objects.filter(profile_id=user.pk).update(cached_balance=999, lifetime_earned=999)
    reconcile_economy(repair=False)
    assert events(AuditEventType.ECONOMY_DRIFT_REPAIRED) == []  # a report-only run changes nothing
    reconcile_economy(repair=True)
    event = only(AuditEventType.ECONOMY_DRIFT_REPAIRED)
    assert event.subject_user_id == user.pk
    assert event.changes["wallet"] == {"before": [999, 999, 0], "after": [50, 50, 0]}


# --- stats ----------------------------------------------------------------------------------------------------------


def test_the_stale_stats_job_writes_one_stats_recomputed_event_per_user():
    a, b = UserFactory(), UserFactory()
    mark_stale([a.pk, b.pk], reason="test")
    recompute_stale_stats()
    assert sorted(e.subject_user_id for e in events(AuditEventType.STATS_RECOMPUTED)) == sorted([a.pk, b.pk])


def _drift(user) -> None:
    UserProfileStats.objects.update_or_create(profile_id=user.pk, defaults={"matches_played": 5})


def test_a_stats_repair_writes_one_event_per_repaired_user_and_the_run_one_event():
    user, clean = UserFactory(), UserFactory()
    _drift(user)
    run = run_reconciliation(fix=True, skip_sources=True)
    repaired = only(AuditEventType.STATS_DRIFT_REPAIRED)
    assert repaired.subject_user_id == user.pk and repaired.changes["fields"]["matches_played"] == {
        "before": 5,
        "after": 0,
    }
    run_event = only(AuditEventType.RECONCILIATION_RUN)
    assert run_event.object_id == str(run.pk) and run_event.changes["users_fixed"] == 1
    assert run_event.actor_job == "command:reconcile_user_stats"
    assert clean.pk not in {e.subject_user_id for e in events(AuditEventType.STATS_DRIFT_REPAIRED)}


def test_a_report_only_reconciliation_writes_the_run_event_and_no_repair_event():
    _drift(UserFactory())
    run_reconciliation(fix=False, skip_sources=True)
    assert events(AuditEventType.STATS_DRIFT_REPAIRED) == [] and len(events(AuditEventType.RECONCILIATION_RUN)) == 1


# --- backfill -------------------------------------------------------------------------------------------------------


def test_a_backfill_writes_started_and_finished_once_each():
    UserFactory()
    run = backfill.start_backfill(None, batch_size=50, enqueue=False)
    assert only(AuditEventType.BACKFILL_STARTED).object_id == str(run.pk)
    backfill.drive_inline(run.pk)
    finished = only(AuditEventType.BACKFILL_FINISHED)
    assert finished.object_id == str(run.pk) and finished.changes["status"] == "succeeded"


def test_a_cancelled_backfill_writes_one_cancelled_event_and_a_rolled_back_start_none():
    rolled_back(lambda: backfill.start_backfill(None, batch_size=50, enqueue=False))
    assert events(AuditEventType.BACKFILL_STARTED) == []
    run = backfill.start_backfill(None, batch_size=50, enqueue=False)
    backfill.cancel_backfill(run.pk)
    backfill.cancel_backfill(run.pk)  # already ended: nothing more happens, nothing more is recorded
    assert only(AuditEventType.BACKFILL_CANCELLED).object_id == str(run.pk)


# --- GDPR -----------------------------------------------------------------------------------------------------------


def test_an_export_writes_one_gdpr_export_event_and_includes_the_trail_about_the_player():
    user = UserFactory()
    credit(user, 10, "prize")
    document = user_export(relation_between(user, user.profile), user.profile)
    event = only(AuditEventType.GDPR_EXPORT)
    assert event.subject_user_id == user.pk
    exported = [(e["event_type"], e["subject_user_id"]) for e in document["audit_events"]]
    assert exported == [
        (AuditEventType.PUBLIC_ID_ASSIGNED, user.pk),
        (AuditEventType.WALLET_CREDITED, user.pk),
        (AuditEventType.GDPR_EXPORT, user.pk),
    ]


def test_the_export_page_records_the_player_as_the_actor(client: Client):
    user = UserFactory()
    client.force_login(user)
    response = client.get(f"/u/{user.username}/export.json")
    assert response.status_code == 200, response.status_code
    event = only(AuditEventType.GDPR_EXPORT)
    assert (event.actor_kind, event.actor_user_id) == (ActorKind.USER, user.pk)
    assert event.request_id == response["X-Request-ID"] and event.client_network == "127.0.0.0/24"


def test_an_erasure_writes_one_gdpr_erasure_event_and_a_refused_one_none():
    staff, user = UserFactory(is_staff=True), UserFactory()
    erase_user(user.pk, requested_by=staff)
    event = only(AuditEventType.GDPR_ERASURE)
    assert (event.subject_user_id, event.actor_kind, event.actor_user_id) == (user.pk, ActorKind.STAFF, staff.pk)
    with pytest.raises(ErasureError):
        erase_user(user.pk, requested_by=staff)  # already erased
    assert len(events(AuditEventType.GDPR_ERASURE)) == 1
    assert verify_chain().ok  # erasure rewrote nothing in the trail


# --- the admin and sign-in --------------------------------------------------------------------------------------------


def _change_data(client: Client, url: str, **changes) -> dict:
    form = client.get(url).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = changes.get(name, form.initial.get(name, field.initial))
        if value is True:
            data[name] = "on"
        elif value is not None and value is not False:  # 0 (a level) is a value, not an unticked box
            data[name] = value
    return data


@pytest.fixture
def staff_client(client: Client):
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    client.staff = staff  # type: ignore[attr-defined]
    return client


def test_a_profile_privacy_change_in_the_admin_writes_one_privacy_settings_changed_event(staff_client):
    user = UserFactory()
    url = f"/admin/profiles/userprofile/{user.pk}/change/"
    before = len(events())
    response = staff_client.post(url, _change_data(staff_client, url, show_match_history=False))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    new = events()[before:]
    assert [e.event_type for e in new] == [AuditEventType.PRIVACY_SETTINGS_CHANGED]
    assert new[0].subject_user_id == user.pk and new[0].actor_user_id == staff_client.staff.pk
    assert new[0].changes["fields"] == {"show_match_history": {"before": True, "after": False}}
    assert UserProfile.objects.get(pk=user.pk).show_match_history is False


def test_an_admin_change_add_and_delete_of_a_source_row_write_one_admin_change_each(staff_client):
    tournament = TournamentFactory(name="Spring Cup")
    url = f"/admin/tournaments/tournament/{tournament.pk}/change/"
    before = len(events())
    assert staff_client.post(url, _change_data(staff_client, url, name="Summer Cup")).status_code == 302
    changed = events()[before:]
    assert [e.event_type for e in changed] == [AuditEventType.ADMIN_CHANGE]
    assert changed[0].changes == {
        "action": "change",
        "fields": {"name": {"before": "Spring Cup", "after": "Summer Cup"}},
    }
    delete_url = f"/admin/tournaments/tournament/{tournament.pk}/delete/"
    assert staff_client.post(delete_url, {"post": "yes"}).status_code == 302
    deleted = events()[before + 1 :]
    assert [(e.event_type, e.changes["action"], e.object_id) for e in deleted] == [
        (AuditEventType.ADMIN_CHANGE, "delete", str(tournament.pk))
    ]
    assert not Tournament.objects.filter(pk=tournament.pk).exists()


def test_every_source_and_profile_admin_is_audited():
    from audit.admin_mixin import AuditedAdmin

    esports_admins = [ma for model, ma in admin.site._registry.items() if model.__module__.startswith("esports.")]
    assert len(esports_admins) >= 10
    assert [type(ma).__name__ for ma in esports_admins if not isinstance(ma, AuditedAdmin)] == []


def test_a_staff_sign_in_writes_one_staff_login_event_and_a_player_sign_in_none(client: Client):
    player, staff = UserFactory(), UserFactory(is_staff=True)
    client.force_login(player)
    assert events(AuditEventType.STAFF_LOGIN) == []
    client.force_login(staff)
    event = only(AuditEventType.STAFF_LOGIN)
    assert (event.actor_kind, event.actor_user_id, event.subject_user_id) == (ActorKind.STAFF, staff.pk, None)


def test_a_request_keeps_a_valid_request_id_and_replaces_an_invalid_one(client: Client):
    kept = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert kept["X-Request-ID"] == "abc-123"
    replaced = client.get("/healthz", headers={"X-Request-ID": "<script>"})
    assert replaced["X-Request-ID"] != "<script>" and len(replaced["X-Request-ID"]) == 32


def test_no_audit_event_is_left_when_the_database_refuses_the_change():
    user = UserFactory()
    before = len(events())
    with pytest.raises(Exception), transaction.atomic(), connection.cursor() as cursor:  # noqa: B017
        credit(user, 5, "then the transaction fails")
        cursor.execute("SELECT 1/0")
    assert len(events()) == before


# --- one transaction: the change and its event commit or roll back together -----------------------------------------


def _prepare_all() -> dict:
    user, drifted, staff = UserFactory(), UserFactory(), UserFactory(is_staff=True)
    credit(user, 20, "prize")
    DeltaCrownWallet.objects.filter(profile_id=drifted.pk).update(cached_balance=7, lifetime_earned=7)
    _drift(drifted)
    mark_stale([user.pk], reason="test")
    return {"user": user, "drifted": drifted, "staff": staff}


ACTIONS = {
    "credit": lambda c: credit(c["user"], 5, "x"),
    "debit": lambda c: debit(c["user"], 5, "x"),
    "economy repair": lambda c: reconcile_economy(repair=True),
    "stats repair and run": lambda c: run_reconciliation(fix=True, skip_sources=True),
    "stale recompute": lambda c: recompute_stale_stats(),
    "backfill start": lambda c: backfill.start_backfill(None, batch_size=50, enqueue=False),
    "gdpr export": lambda c: user_export(relation_between(c["user"], c["user"].profile), c["user"].profile),
    "gdpr erasure": lambda c: erase_user(c["user"].pk, requested_by=c["staff"]),
}


@pytest.mark.parametrize("name", ACTIONS)
def test_a_call_site_inside_a_transaction_that_rolls_back_leaves_no_event(name):
    context = _prepare_all()
    before = len(events())
    rolled_back(lambda: ACTIONS[name](context))
    assert len(events()) == before
    ACTIONS[name](context)  # and the same action, committed, does write
    assert len(events()) > before


@pytest.mark.parametrize("name", ["credit", "gdpr erasure", "economy repair"])
def test_when_the_audit_event_cannot_be_written_the_change_is_not_made_either(name, monkeypatch):
    import audit.services

    context = _prepare_all()
    balance = DeltaCrownWallet.objects.get(profile_id=context["drifted"].pk).cached_balance

    def broken(fields):
        raise RuntimeError("audit write failed")

    monkeypatch.setattr(audit.services, "row_hash", broken)
    with pytest.raises(RuntimeError, match="audit write failed"):
        ACTIONS[name](context)
    assert DeltaCrownWallet.objects.get(profile_id=context["user"].pk).cached_balance == 20
    assert DeltaCrownWallet.objects.get(profile_id=context["drifted"].pk).cached_balance == balance
    assert UserProfile.objects.filter(pk=context["user"].pk).exists()  # not erased
