"""bench/economy.py at a tiny size runs to its report (issue 13's benchmark), in a database of its own that is dropped
afterwards: the service pays exactly the hot wallet's budget and leaves it at 0 under contention, the naive way is
measured beside it, and the reconcile figure is printed."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.test_bench_runs import run_bench, scratch_database

pytestmark = pytest.mark.slow


def test_the_economy_benchmark_runs_to_its_report() -> None:
    with scratch_database("economybench") as url:
        server = urlsplit(url)
        result = run_bench(
            "economy.py",
            ["--debits", "80", "--threads", "2", "--wallets", "40", "--per-wallet", "3", "--batch-size", "16"],
            {"DATABASE_URL": server._replace(path="/postgres").geturl(), "BENCH_DATABASE_NAME": server.path[1:]},
        )
    report = result.stdout[-3000:] + result.stderr[-3000:]
    # 2 threads x 40 debits of 1 coin against a budget of 40: exactly the budget is paid, never more.
    assert re.search(
        r"hot wallet, service: [\d,]+ debit calls/s \(2 threads\); paid 40 of budget 40, final balance 0", result.stdout
    ), report
    for line in (
        "many wallets, service:",
        "naive read-check-write:",
        "speed ratio",
        "economy pass of a reconciliation",
    ):
        assert line in result.stdout, report
    assert re.search(
        r"reconcile_economy --all --dry-run: [\d,]+ wallets / [\d,]+ transactions in [\d.]+ s", result.stdout
    ), report
