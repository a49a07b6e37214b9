"""reconcile_economy (issue 13, item 3): drift of each kind, injected the only way it can arise (raw SQL), is found per
wallet and kind, repaired from the transactions, and a second run finds none; --dry-run writes nothing. Kinds: the
wallet's caches, the profile mirror, a transaction missing from the ledger, the stats' totals."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from esports.economy import services as economy
from esports.economy.balances import refresh_wallets_of
from esports.economy.models import DeltaCrownTransaction, DeltaCrownWallet
from esports.economy.reconciliation import reconcile_economy
from esports.profiles.models import UserProfile
from esports.tournaments.synthetic import generate_platform
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


def reconcile(*args: str) -> str:
    out = StringIO()
    call_command("reconcile_economy", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def drifted():
    """Five users with 100 earned and 40 spent each, recorded in the ledger; then, by raw SQL: a's wallet caches
    changed (the balance check constraint kept), b's profile mirror changed, c given a transaction that bypassed the
    service (and so the ledger), e's stats total_spent changed; d untouched."""
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


def line_of(output: str, user) -> str:
    """The report's lines about the user's wallet (one per pass that found drift), joined."""
    return " | ".join(line for line in output.splitlines() if f"(user {user.pk})" in line)


def test_drift_of_each_kind_is_reported_per_wallet_and_kind_and_dry_run_writes_nothing(drifted):
    a, b, c, d, e = drifted.values()
    before = {name: (money(u), counters(u)) for name, u in drifted.items()}
    out = StringIO()
    with pytest.raises(CommandError, match="drift found") as raised:
        call_command("reconcile_economy", "--all", "--dry-run", "--batch-size", "1", stdout=out)
    assert raised.value.returncode == 1
    report = out.getvalue()
    assert " wallet: " in line_of(report, a) and "mirror" not in line_of(report, a)
    assert "67/107/40" in line_of(report, a) and "transactions say 60/100/40" in line_of(report, a)
    assert " mirror: " in line_of(report, b) and "profile balance/earnings 57/100" in line_of(report, b)
    assert " wallet+mirror: " in line_of(report, c) and "transactions say 85/125/40" in line_of(report, c)
    assert " ledger+stats: 1 transaction(s) without a ledger event" in line_of(report, c)
    assert " stats: " in line_of(report, e) and "stats earned/spent 100/41" in line_of(report, e)
    assert line_of(report, d) == ""
    assert {name: (money(u), counters(u)) for name, u in drifted.items()} == before


def test_repair_sets_everything_from_the_transactions_and_a_second_run_finds_none(drifted):
    a, b, c, d, e = drifted.values()
    report = reconcile("--all", "--batch-size", "2")
    assert "recorded 1 missing event(s)" in report
    assert money(a) == money(b) == money(d) == money(e) == (60, 100, 40, 60, 100)
    assert money(c) == (85, 125, 40, 85, 125)
    assert (counters(c)["total_earned"], counters(c)["total_spent"]) == (125, 40)
    assert (counters(e)["total_earned"], counters(e)["total_spent"]) == (100, 40)
    again = reconcile("--all", "--dry-run")
    assert again.startswith("0 drifted wallet(s) (none)"), again


def test_user_id_checks_and_repairs_only_that_users_wallet(drifted):
    a, b, *_ = drifted.values()
    report = reconcile("--user-id", str(b.pk))
    assert line_of(report, b) and not line_of(report, a)
    assert money(b) == (60, 100, 40, 60, 100)
    assert money(a)[0] == 67  # not examined


def test_limit_stops_after_that_many_drifted_wallets(drifted):
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("reconcile_economy", "--all", "--dry-run", "--limit", "1", stdout=out)
    lines = out.getvalue().splitlines()
    assert sum("wallet balance/earned/spent" in line for line in lines) == 1
    assert sum("without a ledger event" in line for line in lines) == 1
    assert "[limit reached]" in lines[-1]


def test_scope_is_required():
    with pytest.raises(CommandError, match="--all"):
        call_command("reconcile_economy")


def test_a_bulk_history_brought_to_the_wallets_by_refresh_has_no_drift():
    """The bulk generators' path: rows inserted without the service, then refresh_wallets_of over their wallets."""
    users = [UserFactory() for _ in range(3)]
    wallets = [u.profile.wallet for u in users]
    DeltaCrownTransaction.objects.bulk_create(
        [DeltaCrownTransaction(wallet=w, amount=a, reason="bulk") for w in wallets for a in (50, -20, 5)]
    )
    assert refresh_wallets_of([w.id for w in wallets]) == (3, 3)
    assert all(money(u) == (35, 55, 20, 35, 55) for u in users)
    record(*DeltaCrownTransaction.objects.filter(wallet__in=wallets))
    for u in users:
        assert line_of(reconcile("--user-id", str(u.pk)), u) == ""


def test_a_generated_platform_has_wallets_and_mirrors_equal_to_its_transactions():
    """generate_platform writes its money history in bulk (no service): it brings the wallets to it set-based."""
    generate_platform(60, 4, seed=31)
    wallets = set(
        DeltaCrownWallet.objects.filter(profile__user__username__startswith="gen31_").values_list("id", flat=True)
    )
    assert DeltaCrownTransaction.objects.filter(wallet_id__in=wallets).exists()
    assert DeltaCrownWallet.objects.filter(id__in=wallets, lifetime_earned__gt=0).exists()
    assert [d for d in reconcile_economy().drift if d.wallet_id in wallets] == []
