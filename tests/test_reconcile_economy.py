"""reconcile_economy (issue 13, item 3): drift of each kind, injected the only way it can arise (raw SQL), is found per
wallet and kind, repaired from the transactions, and a second run finds none; --dry-run writes nothing."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from esports.economy import services as economy
from esports.economy.balances import refresh_wallets_of
from esports.economy.models import DeltaCrownTransaction, DeltaCrownWallet
from esports.profiles.models import UserProfile
from tests.factories import UserFactory

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
    """Four users with 100 earned and 40 spent each; then, by raw SQL: a's wallet caches changed (the balance check
    constraint kept), b's profile mirror changed, c given a transaction that bypassed the service; d untouched."""
    users = {name: UserFactory() for name in "abcd"}
    for user in users.values():
        economy.credit(user, 100, "prize")
        economy.debit(user, 40, "shop")
    a, b, c, _ = users.values()
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
    return users


def line_of(output: str, user) -> str:
    lines = [line for line in output.splitlines() if f"(user {user.pk})" in line]
    assert len(lines) <= 1, lines
    return lines[0] if lines else ""


def test_drift_of_each_kind_is_reported_per_wallet_and_kind_and_dry_run_writes_nothing(drifted):
    a, b, c, d = drifted.values()
    before = {name: money(u) for name, u in drifted.items()}
    out = StringIO()
    with pytest.raises(CommandError, match="drift found") as raised:
        call_command("reconcile_economy", "--all", "--dry-run", "--batch-size", "1", stdout=out)
    assert raised.value.returncode == 1
    report = out.getvalue()
    assert " wallet: " in line_of(report, a) and "mirror" not in line_of(report, a)
    assert "67/107/40" in line_of(report, a) and "transactions say 60/100/40" in line_of(report, a)
    assert " mirror: " in line_of(report, b) and "profile balance/earnings 57/100" in line_of(report, b)
    assert " wallet+mirror: " in line_of(report, c) and "transactions say 85/125/40" in line_of(report, c)
    assert line_of(report, d) == ""
    assert {name: money(u) for name, u in drifted.items()} == before


def test_repair_sets_wallet_and_mirror_from_the_transactions_and_a_second_run_finds_none(drifted):
    a, b, c, d = drifted.values()
    report = reconcile("--all", "--batch-size", "2")
    assert "repaired" in report
    assert money(a) == money(b) == money(d) == (60, 100, 40, 60, 100)
    assert money(c) == (85, 125, 40, 85, 125)
    again = reconcile("--all", "--dry-run")
    assert again.startswith("0 drifted wallet(s) (none)"), again


def test_user_id_checks_and_repairs_only_that_users_wallet(drifted):
    a, b, _, _ = drifted.values()
    report = reconcile("--user-id", str(b.pk))
    assert line_of(report, b) and not line_of(report, a)
    assert money(b) == (60, 100, 40, 60, 100)
    assert money(a)[0] == 67  # not examined


def test_limit_stops_after_that_many_drifted_wallets(drifted):
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("reconcile_economy", "--all", "--dry-run", "--limit", "1", stdout=out)
    assert "1 drifted wallet(s)" in out.getvalue() and "[limit reached]" in out.getvalue()


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
    for u in users:
        assert line_of(reconcile("--user-id", str(u.pk)), u) == ""
