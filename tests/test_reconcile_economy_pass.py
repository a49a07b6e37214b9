"""The DeltaCoin economy as a pass of the nightly reconciliation (issue 13, item 3): drift of each kind, injected by
raw SQL, is found by the beat task's path, stored on the ReconciliationRun per kind, repaired by a repair run (and a
run after it finds none), exported as a gauge per kind, and shown in the admin."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from esports.economy import services as economy
from esports.economy.models import DeltaCrownWallet
from esports.profiles.models import UserProfile
from monitoring import metrics
from stats.economy_pass import KINDS, check_ledger_side, run_economy_pass
from stats.models import ReconciliationRun, UserProfileStats
from stats.reconcile import format_report
from tasks.reconciliation import reconcile_stats
from tests.factories import UserFactory
from tests.ledger_helpers import counters, record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued")]


def money(user) -> tuple[int, int, int, int, int]:
    w = DeltaCrownWallet.objects.get(profile_id=user.pk)
    p = UserProfile.objects.get(pk=user.pk)
    return w.cached_balance, w.lifetime_earned, w.lifetime_spent, p.deltacoin_balance, p.lifetime_earnings


def sql(statement: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def gauges() -> dict[str, float]:
    return {kind: metrics.ECONOMY_WALLETS_DRIFTED.labels(kind=kind)._value.get() for kind in KINDS}


def nightly(*, fix: bool) -> ReconciliationRun:
    """The beat entry's task body (the schedule passes fix=True, trigger beat), run in this process."""
    outcome = reconcile_stats(fix=fix, trigger="beat")
    return ReconciliationRun.objects.get(pk=outcome["run"])


@pytest.fixture
def drifted():
    """Five users with 100 earned and 40 spent each, all recorded; then, by raw SQL: a's wallet caches, b's profile
    mirror, a transaction for c that bypassed the service (and the ledger), e's stats total_spent; d untouched."""
    users = {name: UserFactory() for name in "abcde"}
    for user in users.values():
        record(economy.credit(user, 100, "prize"), economy.debit(user, 40, "shop"))
    a, b, c, _, e = users.values()
    sql(
        "UPDATE economy_deltacrownwallet SET cached_balance = cached_balance + 7, "
        "lifetime_earned = lifetime_earned + 7 WHERE profile_id = %s",
        [a.pk],
    )
    sql("UPDATE profiles_userprofile SET deltacoin_balance = deltacoin_balance - 3 WHERE user_id = %s", [b.pk])
    sql(
        "INSERT INTO economy_deltacrowntransaction (wallet_id, amount, reason, created_at) "
        "VALUES (%s, 25, 'raw', now())",
        [c.profile.wallet.id],
    )
    sql("UPDATE stats_userprofilestats SET total_spent = total_spent + 1 WHERE profile_id = %s", [e.pk])
    return users


def test_a_report_only_nightly_run_stores_the_drift_of_each_kind_and_writes_nothing(drifted):
    a, b, c, d, e = drifted.values()
    before = {name: (money(u), counters(u)) for name, u in drifted.items()}

    run = nightly(fix=False)

    assert run.status == ReconciliationRun.Status.SUCCEEDED and run.economy_checked
    assert run.economy_wallets_checked == DeltaCrownWallet.objects.count()
    # a: wallet; b: mirror; c: wallet + mirror + ledger + stats (an unrecorded transaction); e: stats.
    assert run.economy_drift == {"wallet": 2, "mirror": 2, "ledger": 1, "stats": 2}
    assert (run.economy_wallets_drifted, run.economy_wallets_repaired) == (4, 0)
    sample = {row["user_id"]: row for row in run.economy_sample}
    assert set(sample) == {a.pk, b.pk, c.pk, e.pk}
    assert sample[a.pk]["wallet"] == {"balance": 67, "earned": 107, "spent": 40}
    assert sample[a.pk]["transactions"] == {"balance": 60, "earned": 100, "spent": 40}
    assert sample[b.pk]["mirror"] == {"balance": 57, "earnings": 100}
    assert sorted(sample[c.pk]["kinds"]) == ["ledger", "mirror", "stats", "wallet"]
    assert sample[e.pk]["stats"] == {"earned": 100, "spent": 41}
    assert gauges() == {"wallet": 2, "mirror": 2, "ledger": 1, "stats": 2}
    assert "economy: 5 wallet(s) checked, 4 drifted" in format_report(run)
    assert {name: (money(u), counters(u)) for name, u in drifted.items()} == before


def test_a_repair_run_sets_every_kind_to_the_transactions_and_the_next_run_finds_none(drifted):
    a, b, c, d, e = drifted.values()

    run = nightly(fix=True)

    assert run.economy_drift == {"wallet": 2, "mirror": 2, "ledger": 1, "stats": 2}
    assert run.economy_wallets_repaired == 3  # a, b, c: caches and mirror; c's and e's ledger side by the other passes
    assert run.missing_events.get("economy.deltacrowntransaction") == {"coins_earned": 1}
    assert money(a) == money(b) == money(d) == money(e) == (60, 100, 40, 60, 100)
    assert money(c) == (85, 125, 40, 85, 125)
    assert (counters(c)["total_earned"], counters(c)["total_spent"]) == (125, 40)
    assert (counters(e)["total_earned"], counters(e)["total_spent"]) == (100, 40)

    again = nightly(fix=False)

    assert (again.economy_wallets_drifted, again.economy_drift) == (0, dict.fromkeys(KINDS, 0))
    assert gauges() == dict.fromkeys(KINDS, 0)


def test_transactions_that_overdraw_are_reported_unrepairable_and_left_as_they_are(drifted):
    d = drifted["d"]
    sql(
        "INSERT INTO economy_deltacrowntransaction (wallet_id, amount, reason, created_at) "
        "VALUES (%s, -500, 'raw overdraft', now())",
        [d.profile.wallet.id],
    )

    run = nightly(fix=True)

    assert run.status == ReconciliationRun.Status.SUCCEEDED
    assert run.economy_unrepairable == [d.profile.wallet.id]
    assert money(d) == (60, 100, 40, 60, 100)  # no cache can say -440 (CHECK cached_balance >= 0): untouched
    assert metrics.ECONOMY_WALLETS_UNREPAIRABLE._value.get() == 1
    assert "transactions overdraw" in format_report(run)


def test_a_user_scoped_run_checks_that_wallet_only_and_leaves_the_fleet_gauges_alone(drifted):
    a, b, *_ = drifted.values()
    nightly(fix=False)
    fleet = gauges()

    outcome = reconcile_stats(fix=True, user_id=b.pk, trigger="admin")
    run = ReconciliationRun.objects.get(pk=outcome["run"])

    assert (run.economy_wallets_checked, run.economy_wallets_drifted, run.economy_wallets_repaired) == (1, 1, 1)
    assert money(b) == (60, 100, 40, 60, 100) and money(a)[0] == 67
    assert gauges() == fleet


def test_the_economy_pass_runs_a_fixed_number_of_queries_whatever_the_number_of_wallets(db):
    def queries() -> int:
        run = ReconciliationRun.objects.create(started_at=timezone.now())
        with CaptureQueriesContext(connection) as ctx:
            run_economy_pass(run, check_ledger_side(run))
        return len(ctx.captured_queries)

    for user in UserFactory.create_batch(2):
        economy.credit(user, 10, "prize")
    few = queries()
    for user in UserFactory.create_batch(40):
        economy.credit(user, 10, "prize")
    sql("UPDATE profiles_userprofile SET deltacoin_balance = deltacoin_balance + 1", [])  # every wallet drifted
    assert queries() == few


def test_the_admin_shows_the_economy_findings_of_a_run(drifted, client):
    admin = UserFactory(is_staff=True, is_superuser=True)
    UserProfileStats.objects.get_or_create(profile_id=admin.pk)
    run = nightly(fix=False)
    client.force_login(admin)

    listing = client.get(reverse("admin:stats_reconciliationrun_changelist")).content.decode()
    detail = client.get(reverse("admin:stats_reconciliationrun_change", args=[run.pk])).content.decode()

    assert "column-economy_wallets_drifted" in listing
    import re

    print(sorted(set(re.findall(r"<label>[^<]*conomy[^<]*</label>|<label[^>]*>[^<]*conomy[^<]*<", detail))))
    assert "Economy wallets drifted:" in detail and "Economy drift (wallets per kind):" in detail
    assert "Drifted wallets (sample):" in detail
    assert "&quot;ledger&quot;: 1" in detail and "&quot;wallet&quot;: 2" in detail
    assert f"&quot;wallet_id&quot;: {drifted['a'].profile.wallet.id}" in detail
