"""The DeltaCoin economy: debits per second through the service, beside a naive read-check-write, and reconcile_economy.

  hot   - `--threads` threads debit 1 coin from ONE wallet holding half of what they try to take (contention);
  many  - the same threads, each on its own wallet;
  naive - the hot run done the naive way (read the balance, check it, insert, write balance - amount; no lock):
          faster, and it overdraws and loses updates, which the run counts;
  reconcile - reconcile_economy --all --dry-run over `--wallets` wallets with `--per-wallet` transactions each.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/economy.py [--debits 2000] [--threads 4] [--wallets 100000] [--per-wallet 10]

Uses its own database (BENCH_DATABASE_NAME, default activity_bench). The activity receivers are disconnected: the
figures are the money path alone (recording is measured by bench/ingest.py).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_db import use_bench_database  # noqa: E402


def mute_recording() -> None:
    from django.db.models.signals import post_save

    from activity.sources import SOURCES

    for label, kind in SOURCES.items():
        post_save.disconnect(sender=kind.model, dispatch_uid=f"activity.record.{label}")


def make_users(prefix: str, n: int) -> list[int]:
    from esports.profiles.services import create_users_bulk

    return sorted(create_users_bulk([(f"{prefix}-{i}", f"{prefix} {i}") for i in range(n)]).values())


def in_threads(n: int, work: Callable[[int], int]) -> tuple[int, float]:
    """Run work(i) in n threads released together; returns (sum of their results, seconds)."""
    from django.db import connection

    barrier, results = threading.Barrier(n), [0] * n

    def body(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(results), time.perf_counter() - started


def service_debits(users: list[int], per_thread: int) -> Callable[[int], int]:
    from esports.economy import services as economy

    def work(i: int) -> int:
        paid = 0
        for _ in range(per_thread):
            try:
                economy.debit(users[i % len(users)], 1, "bench")
                paid += 1
            except economy.InsufficientFunds:
                pass
        return paid

    return work


def naive_debits(user: int, per_thread: int) -> Callable[[int], int]:
    """The seeds' way: read, check, insert, write back what was read minus the amount; no lock, no condition."""
    from django.db import transaction

    from esports.economy.models import DeltaCrownTransaction, DeltaCrownWallet

    def work(i: int) -> int:
        paid = 0
        for _ in range(per_thread):
            with transaction.atomic():
                wallet = DeltaCrownWallet.objects.get(profile_id=user)
                if wallet.cached_balance < 1:
                    continue
                DeltaCrownTransaction.objects.create(wallet=wallet, amount=-1, reason="naive bench")
                DeltaCrownWallet.objects.filter(pk=wallet.pk).update(
                    cached_balance=wallet.cached_balance - 1, lifetime_spent=wallet.lifetime_spent + 1
                )
                paid += 1
        return paid

    return work


def debit_figures(args) -> None:
    from esports.economy import services as economy
    from esports.economy.models import DeltaCrownWallet

    stamp = time.strftime("%Y%m%d%H%M%S")
    per_thread = args.debits // args.threads
    budget = per_thread * args.threads // 2
    hot, naive_user = make_users(f"econ-hot-{stamp}", 2)
    many = make_users(f"econ-many-{stamp}", args.threads)
    for uid in (hot, naive_user, *many):
        economy.credit(uid, budget if uid in (hot, naive_user) else per_thread, "bench budget")

    paid, seconds = in_threads(args.threads, service_debits([hot], per_thread))
    hot_rate = args.threads * per_thread / seconds
    balance = DeltaCrownWallet.objects.get(profile_id=hot).cached_balance
    print(
        f"hot wallet, service: {hot_rate:,.0f} debit calls/s ({args.threads} threads); paid {paid} of budget "
        f"{budget}, final balance {balance}"
    )
    paid, seconds = in_threads(args.threads, service_debits(many, per_thread))
    print(f"many wallets, service: {args.threads * per_thread / seconds:,.0f} debits/s (paid {paid})")
    paid, seconds = in_threads(args.threads, naive_debits(naive_user, per_thread))
    naive_rate = args.threads * per_thread / seconds
    wallet = DeltaCrownWallet.objects.get(profile_id=naive_user)
    rows = wallet.transactions.filter(amount=-1).count()
    print(
        f"hot wallet, naive read-check-write: {naive_rate:,.0f} debit calls/s; paid {rows} coins from a budget of "
        f"{budget} (overdrawn by {max(rows - budget, 0)}), cached balance {wallet.cached_balance} vs transactions "
        f"{budget - rows} (lost updates); service/naive speed ratio {hot_rate / naive_rate:.2f}"
    )


def reconcile_figures(args) -> None:
    from django.db import connection

    from esports.economy.balances import refresh_all_wallets
    from esports.economy.models import DeltaCrownWallet
    from esports.economy.reconciliation import reconcile_economy
    from stats.economy_check import reconcile_economy_ledger
    from stats.economy_pass import check_economy

    mine = DeltaCrownWallet.objects.filter(profile__user__username__startswith="econ-recon-")
    started = time.perf_counter()
    if mine.count() < args.wallets:
        make_users(f"econ-recon-{time.strftime('%Y%m%d%H%M%S')}", args.wallets - mine.count())
    empty = sorted(mine.filter(transactions__isnull=True).values_list("id", flat=True))
    for start in range(0, len(empty), 10_000):  # 10k wallets per statement: well inside the statement timeout
        with connection.cursor() as cursor:
            # Earn 20 twice for every spend of 10: never overdrawn, any order.
            cursor.execute(
                "INSERT INTO economy_deltacrowntransaction (wallet_id, amount, reason, created_at) "
                "SELECT w, CASE WHEN g %% 3 = 0 THEN -10 ELSE 20 END, 'reconcile bench', now() "
                "FROM unnest(%s::bigint[]) w CROSS JOIN generate_series(1, %s) g",
                [empty[start : start + 10_000], args.per_wallet],
            )
    if empty:
        refresh_all_wallets()
        print(f"gave {len(empty)} wallets {args.per_wallet} transactions each in {time.perf_counter() - started:.1f} s")
    wallets = DeltaCrownWallet.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM economy_deltacrowntransaction")
        (txns,) = cursor.fetchone()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE economy_deltacrownwallet; ANALYZE economy_deltacrowntransaction")
    started = time.perf_counter()
    report = reconcile_economy(repair=False, batch_size=args.batch_size)
    seconds = time.perf_counter() - started
    print(
        f"reconcile_economy --all --dry-run: {wallets:,} wallets / {txns:,} transactions in {seconds:.2f} s "
        f"({len(report.drift)} drifted; goal <= 10 s at 100k / 1M)"
    )
    started = time.perf_counter()
    ledger = reconcile_economy_ledger(repair=False, batch_size=args.batch_size)
    print(
        f"  ledger and stats leg (dry run): {time.perf_counter() - started:.2f} s "
        f"({len(ledger.drift):,} wallets with drift: the bench's transactions are not recorded, receivers muted)"
    )
    started = time.perf_counter()
    check = check_economy(repair_wallets=False, repair_ledger=False, batch_size=args.batch_size)
    print(
        f"  economy pass of a reconciliation run (all three sides, report only): {time.perf_counter() - started:.2f} s "
        f"({check.wallets_checked:,} wallets checked, {len(check.drifted_wallets):,} drifted)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debits", type=int, default=2000, help="debit calls per run (default 2000)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--wallets", type=int, default=100_000, help="wallets for the reconcile figure")
    parser.add_argument("--per-wallet", type=int, default=10, help="transactions per reconcile wallet")
    parser.add_argument("--batch-size", type=int, default=10_000, help="reconcile chunk (wallet ids)")
    args = parser.parse_args()
    use_bench_database()
    mute_recording()
    debit_figures(args)
    reconcile_figures(args)


if __name__ == "__main__":
    main()
