"""Money moves only through esports.economy.services (issue 13, items 1 and 2): the wallet's caches and the profile's
mirror move with the transaction row in one database transaction, never below 0, never twice for one key."""

from __future__ import annotations

import importlib
import random

import pytest
from django.db import IntegrityError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activity.erasure import erase_user
from activity.event_types import EventType as E
from esports.economy import services as economy
from esports.economy.models import DeltaCrownTransaction, DeltaCrownWallet
from esports.economy.payouts import pay_prizes
from esports.profiles.models import UserProfile
from tests.factories import RegistrationFactory, TeamFactory, TournamentFactory, TournamentResultFactory, UserFactory
from tests.ledger_helpers import counters, ledger_counts, nonzero, record, run_in_threads

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("enqueued")]


def money(user) -> tuple[int, int, int, int, int]:
    """(balance, earned, spent) of the wallet and (balance, earnings) of the profile, read fresh."""
    w = DeltaCrownWallet.objects.get(profile_id=user.pk)
    p = UserProfile.objects.get(pk=user.pk)
    return w.cached_balance, w.lifetime_earned, w.lifetime_spent, p.deltacoin_balance, p.lifetime_earnings


def test_credit_and_debit_move_balance_lifetimes_and_mirror_and_the_ledger_records_the_rows():
    user = UserFactory()
    earn = economy.credit(user, 100, "prize")
    spend = economy.debit(user=user, amount=30, reason="shop")  # keyword form, as the issue names it
    assert (earn.amount, spend.amount) == (100, -30)
    assert money(user) == (70, 100, 30, 70, 100)
    # The transaction row is still the ledger's source row: recording derives the coin events from it.
    record(earn, spend)
    assert ledger_counts(user) == {E.COINS_EARNED: 1, E.COINS_SPENT: 1}
    assert nonzero(counters(user)) == {"total_earned": 100, "total_spent": 30}


def test_a_failure_after_the_insert_leaves_no_row_and_no_moved_balance():
    """The mirror is written in the same transaction: when its UPDATE fails, the row and the wallet go too."""
    user = UserFactory()
    economy.credit(user, 50, "start")
    with connection.cursor() as cursor:  # DDL inside the test's transaction: rolled back with it
        cursor.execute(
            "CREATE FUNCTION fail_mirror() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'mirror write refused'; END $$; "
            "CREATE TRIGGER fail_mirror BEFORE UPDATE ON profiles_userprofile FOR EACH ROW "
            "EXECUTE FUNCTION fail_mirror()"
        )
    with pytest.raises(Exception, match="mirror write refused"):
        economy.credit(user, 10, "half-done")
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER fail_mirror ON profiles_userprofile")
    assert money(user) == (50, 50, 0, 50, 50)
    assert DeltaCrownTransaction.objects.filter(wallet__profile_id=user.pk).count() == 1


def test_a_rolled_back_caller_leaves_nothing():
    user = UserFactory()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        economy.credit(user, 100, "prize", idempotency_key="result:1")
        raise Boom
    assert money(user) == (0, 0, 0, 0, 0)
    assert not DeltaCrownTransaction.objects.filter(wallet__profile_id=user.pk).exists()
    # The key was not burnt: the retry after the rollback pays.
    economy.credit(user, 100, "prize", idempotency_key="result:1")
    assert money(user) == (100, 100, 0, 100, 100)


def test_debit_beyond_the_balance_raises_insufficient_funds_and_writes_nothing():
    user = UserFactory()
    economy.credit(user, 40, "prize")
    with pytest.raises(economy.InsufficientFunds, match="has 40 DeltaCoins, cannot pay 41") as raised:
        economy.debit(user, 41, "too much")
    assert (raised.value.balance, raised.value.amount) == (40, 41)
    assert money(user) == (40, 40, 0, 40, 40)
    economy.debit(user, 40, "all of it")
    assert money(user) == (0, 40, 40, 0, 40)


def test_the_same_idempotency_key_twice_is_one_transaction_and_one_movement():
    user, other = UserFactory(), UserFactory()
    first = economy.credit(user, 1000, "prize: Cup", idempotency_key="result:7:winner")
    again = economy.credit(user, 1000, "prize: Cup", idempotency_key="result:7:winner")
    assert again.pk == first.pk
    assert money(user) == (1000, 1000, 0, 1000, 1000)
    # Unique per wallet, not globally: another wallet may use the same key.
    economy.credit(other, 1000, "prize: Cup", idempotency_key="result:7:winner")
    # The same key for a different movement is a caller bug: refused, nothing written.
    with pytest.raises(economy.IdempotencyConflict):
        economy.debit(user, 1000, "refund?", idempotency_key="result:7:winner")
    assert DeltaCrownTransaction.objects.filter(wallet__profile_id=user.pk).count() == 1


def test_the_database_refuses_a_second_row_with_a_wallets_idempotency_key():
    user = UserFactory()
    first = economy.credit(user, 5, "x", idempotency_key="k")
    with pytest.raises(IntegrityError, match="transaction_idempotency_key_per_wallet"), transaction.atomic():
        DeltaCrownTransaction.objects.create(wallet=first.wallet, amount=5, reason="x", idempotency_key="k")


def test_the_database_refuses_a_negative_wallet_balance_whoever_writes_it():
    """Behind debit's InsufficientFunds: a raw UPDATE (earned and spent kept consistent) cannot overdraw either."""
    user = UserFactory()
    economy.credit(user, 5, "x")
    with pytest.raises(IntegrityError, match="wallet_balance_not_negative"), transaction.atomic():
        DeltaCrownWallet.objects.filter(profile_id=user.pk).update(cached_balance=-5, lifetime_spent=10)
    assert money(user)[0] == 5


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (0, "positive"),
        (-5, "positive"),
        (economy.MAX_AMOUNT + 1, "exceeds"),
        (2.5, "whole number"),
        (True, "whole number"),
        ("10", "whole number"),
    ],
)
def test_zero_negative_oversized_and_non_integer_amounts_are_refused_with_nothing_written(amount, message):
    user = UserFactory()
    for move in (economy.credit, economy.debit):
        with pytest.raises(economy.InvalidAmount, match=message):
            move(user, amount, "bad")
    assert money(user) == (0, 0, 0, 0, 0)
    assert not DeltaCrownTransaction.objects.filter(wallet__profile_id=user.pk).exists()


def test_deactivated_and_missing_users_and_blank_reasons_are_refused():
    gone = UserFactory(is_active=False)
    with pytest.raises(economy.AccountUnavailable, match="deactivated"):
        economy.credit(gone, 10, "prize")
    with pytest.raises(economy.AccountUnavailable, match="does not exist"):
        economy.credit(10**9, 10, "prize")
    deleted = UserFactory()
    deleted_id = deleted.pk
    deleted.delete()
    with pytest.raises(economy.AccountUnavailable, match="does not exist"):
        economy.credit(deleted_id, 10, "prize")
    fresh = UserFactory()
    with pytest.raises(economy.InvalidMovement, match="reason"):
        economy.credit(fresh, 10, "  ")
    assert money(gone) == money(fresh) == (0, 0, 0, 0, 0)
    assert not DeltaCrownTransaction.objects.filter(wallet__profile_id__in=[gone.pk, fresh.pk]).exists()


def test_reverse_moves_the_balance_back_on_the_side_it_cancels_and_is_allowed_once():
    user = UserFactory()
    prize = economy.credit(user, 300, "prize")
    shop = economy.debit(user, 100, "shop")
    refund = economy.reverse(shop)
    assert (refund.amount, refund.reverses_id) == (100, shop.pk)
    assert money(user) == (300, 300, 0, 300, 300)  # a refund un-spends
    revoked = economy.reverse(prize, reason="prize revoked: cheating")
    assert money(user) == (0, 0, 0, 0, 0)  # a revoked prize un-earns
    with pytest.raises(economy.NotReversible, match="itself a reversal"):
        economy.reverse(revoked)
    with pytest.raises(economy.NotReversible, match="already reversed"):
        economy.reverse(prize)
    record(prize, shop, refund, revoked)
    assert nonzero(counters(user)) == {}  # the ledger nets the reversals out the same way


def test_reversing_an_earning_that_was_spent_would_overdraw_and_is_refused():
    user = UserFactory()
    prize = economy.credit(user, 100, "prize")
    economy.debit(user, 80, "shop")
    with pytest.raises(economy.InsufficientFunds):
        economy.reverse(prize)
    assert money(user) == (20, 100, 80, 20, 100)


def test_the_migrations_data_step_computes_wallets_and_mirror_from_existing_transactions():
    migration = importlib.import_module("esports.economy.migrations.0004_wallet_balances")
    user, idle = UserFactory(), UserFactory()
    wallet = user.profile.wallet
    # History written before the service existed: plain rows, caches left at 0.
    rows = [DeltaCrownTransaction.objects.create(wallet=wallet, amount=a, reason="old") for a in (500, -120, -30)]
    DeltaCrownTransaction.objects.create(wallet=wallet, amount=30, reason="refund", reverses=rows[2])
    with connection.cursor() as cursor:
        cursor.execute(migration.FILL_WALLETS)
        cursor.execute(migration.FILL_PROFILES)
    assert money(user) == (380, 500, 120, 380, 500)
    assert money(idle) == (0, 0, 0, 0, 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_twenty_threads_debiting_ten_from_a_hundred_exactly_ten_succeed_and_the_balance_ends_at_zero():
    user = UserFactory()
    economy.credit(user, 100, "start")
    paid: list[int] = []

    def spend(i: int) -> None:
        paid.append(economy.debit(user.pk, 10, f"spend {i}").pk)

    errors = run_in_threads(20, spend)
    assert len(paid) == 10
    assert len(errors) == 10 and all(isinstance(e, economy.InsufficientFunds) for e in errors), errors
    assert money(user) == (0, 100, 100, 0, 100)
    assert DeltaCrownTransaction.objects.filter(wallet__profile_id=user.pk, amount=-10).count() == 10


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_ten_threads_retrying_one_payout_pay_it_once():
    user = UserFactory()
    seen: list[int] = []

    def payout(i: int) -> None:
        seen.append(economy.credit(user.pk, 1000, "prize", idempotency_key="result:42").pk)

    assert run_in_threads(10, payout) == []
    assert len(set(seen)) == 1
    assert money(user) == (1000, 1000, 0, 1000, 1000)


def test_prize_payouts_credit_the_placed_solo_entrants_once_per_result_and_place():
    tournament = TournamentFactory(name="Spring Cup")
    winner, runner_up = UserFactory(), UserFactory()
    team_entry = RegistrationFactory(tournament=tournament, user=None, team=TeamFactory())
    result = TournamentResultFactory(
        tournament=tournament,
        winner=RegistrationFactory(tournament=tournament, user=winner),
        runner_up=RegistrationFactory(tournament=tournament, user=runner_up),
        third_place=team_entry,
    )
    prizes = {"winner": 1000, "runner_up": 400, "third_place": 200}
    paid = pay_prizes(result, prizes)
    assert [(t.wallet.profile_id, t.amount) for t in paid] == [(winner.pk, 1000), (runner_up.pk, 400)]
    assert pay_prizes(result, prizes) == paid  # the retried payout returns the same transactions
    assert money(winner) == (1000, 1000, 0, 1000, 1000) and money(runner_up)[0] == 400
    with pytest.raises(ValueError, match="not a place"):
        pay_prizes(result, {"fifth": 10})


OPS = st.lists(
    st.tuples(st.sampled_from(("credit", "debit", "reverse", "retry")), st.integers(0, 2), st.integers(1, 300)),
    min_size=1,
    max_size=30,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, seed=st.integers(0, 2**16))
def test_after_any_workload_wallets_mirror_ledger_and_stats_equal_the_transactions(ops, seed):
    with transaction.atomic():  # each example in a savepoint rolled back at its end
        users = [UserFactory() for _ in range(3)]
        rng, made = random.Random(seed), []
        for op, who, amount in ops:
            try:
                if op == "credit":
                    made.append(economy.credit(users[who], amount, "earn"))
                elif op == "debit":
                    made.append(economy.debit(users[who], amount, "spend"))
                elif op == "retry":  # a payout retried with its key: at most one row per key
                    made.append(economy.credit(users[who], amount, "payout", idempotency_key=f"k{amount % 3}"))
                elif made:
                    made.append(economy.reverse(rng.choice(made)))
            except (economy.InsufficientFunds, economy.NotReversible, economy.IdempotencyConflict):
                pass
        rows = list(DeltaCrownTransaction.objects.filter(wallet__profile_id__in=[u.pk for u in users]))
        if rows:
            record(*rows)
        for user in users:
            mine = [t for t in rows if t.wallet.profile_id == user.pk]
            earned = sum(t.amount for t in mine if (t.amount > 0) == (t.reverses_id is None))
            spent = -sum(t.amount for t in mine if (t.amount > 0) != (t.reverses_id is None))
            balance = sum(t.amount for t in mine)
            assert balance >= 0
            assert money(user) == (balance, earned, spent, balance, earned)
            got = counters(user)
            assert (got["total_earned"], got["total_spent"]) == (earned, spent)
        transaction.set_rollback(True)


def test_an_erased_players_wallet_and_mirror_move_to_the_tombstone_which_cannot_be_paid():
    user = UserFactory()
    economy.credit(user, 300, "prize")
    economy.debit(user, 100, "shop")
    tombstone = erase_user(user.pk).tombstone_id
    assert money(type(user)(pk=tombstone)) == (200, 300, 100, 200, 300)
    with pytest.raises(economy.AccountUnavailable, match="deactivated"):
        economy.credit(tombstone, 10, "prize")
