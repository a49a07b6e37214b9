"""Reconciliation: events no signal delivered are found (sources -> ledger), drifted counters are found per field and
repaired (ledger -> stats), a report-only run writes nothing, and live recording during a run is never drift."""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activity.append import append
from activity.derivation import Derivation
from activity.event_types import COIN_EVENTS, EventType
from activity.events import NewEvent
from activity.models import UserActivity
from activity.recording import record_events_for
from activity.sources import SOURCES
from esports.economy.models import DeltaCrownTransaction, DeltaCrownWallet
from esports.tournaments.models import Match
from monitoring import metrics
from stats.counters import COUNTER_FIELDS
from stats.models import ReconciliationRun, UserProfileStats
from stats.reconcile import (
    NO_STATS_ROW,
    ReconciliationAlreadyRunning,
    ReconciliationError,
    compare_ledger_to_stats,
    run_reconciliation,
)
from tests.factories import MatchFactory, TransactionFactory, UserFactory, complete_match

STATS_TABLE = UserProfileStats._meta.db_table
TX_LABEL = "economy.deltacrowntransaction"


def record_everything() -> None:
    """Record every source row through the one service, as live recording would have."""
    for label, kind in SOURCES.items():
        ids = list(kind.model._default_manager.values_list(kind.model._meta.pk.attname, flat=True))
        if ids:
            record_events_for(label, ids)


def snapshot() -> tuple[list, list]:
    ledger = list(UserActivity.objects.order_by("id").values_list())
    stats = list(UserProfileStats.objects.order_by("profile_id").values_list())
    return ledger, stats


def gauge(metric) -> float:
    return metric._value.get()


def corrupt(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def season(db):
    """Two finished matches and some coins, all recorded: ledger and stats agree."""
    m1 = MatchFactory()
    complete_match(m1, m1.participant1)
    m2 = MatchFactory()
    complete_match(m2, m2.participant2)
    TransactionFactory(wallet=m1.participant1.user.profile.wallet, amount=500)
    TransactionFactory(wallet=m1.participant1.user.profile.wallet, amount=-120)
    record_everything()
    return m1, m2


def test_a_match_completed_with_queryset_update_is_found_by_the_sources_pass_and_reported(season):
    match = MatchFactory()
    record_everything()
    p1, p2 = match.participant1, match.participant2
    # No save(), no signal: the live path never hears of it.
    Match.objects.filter(pk=match.pk).update(
        state=Match.State.COMPLETED, winner=p1, loser=p2, completed_at=timezone.now()
    )

    report = run_reconciliation(fix=False)

    assert report.missing_events == {"tournaments.match": {"match_lost": 1, "match_played": 2, "match_won": 1}}
    assert report.missing_events_total == 4
    assert not UserActivity.objects.filter(source_model="tournaments.match", source_id=match.pk).exists()

    repair = run_reconciliation(fix=True)

    assert repair.missing_events == report.missing_events
    winner = UserProfileStats.objects.get(profile_id=p1.user_id)
    loser = UserProfileStats.objects.get(profile_id=p2.user_id)
    assert (winner.matches_played, winner.matches_won, loser.matches_played, loser.matches_lost) == (1, 1, 1, 1)
    assert repair.users_drifted == 0  # the recorded events moved the counters through the projection
    clean = run_reconciliation(fix=False)
    assert (clean.missing_events_total, clean.users_drifted) == (0, 0)


def test_counters_corrupted_by_raw_sql_are_detected_per_field_and_repaired(season):
    m1, m2 = season
    rich, other, gone = m1.participant1.user_id, m2.participant1.user_id, m2.participant2.user_id
    expected = {
        row["profile_id"]: row
        for row in UserProfileStats.objects.values("profile_id", *COUNTER_FIELDS, "last_activity_at")
    }
    corrupt(f"UPDATE {STATS_TABLE} SET matches_won = matches_won + 3, total_earned = 1 WHERE profile_id = %s", [rich])
    corrupt(f"UPDATE {STATS_TABLE} SET matches_lost = 0, last_activity_at = NULL WHERE profile_id = %s", [other])
    corrupt(f"DELETE FROM {STATS_TABLE} WHERE profile_id = %s", [gone])

    report = run_reconciliation(fix=False, skip_sources=True)

    assert report.users_drifted == 3
    # `gone` (no row) differs in every field its ledger sets: registered, played (checked in), one match won.
    assert report.field_drift == {
        "matches_won": 2,
        "total_earned": 1,
        "matches_lost": 1,
        "last_activity_at": 2,
        "matches_played": 1,
        "tournaments_registered": 1,
        "tournaments_played": 1,
        NO_STATS_ROW: 1,
    }
    sample = {d["user_id"]: d for d in report.drift_sample}
    assert sample[rich]["fields"]["matches_won"] == {"stats": 4, "ledger": 1}
    assert sample[rich]["fields"]["total_earned"] == {"stats": 1, "ledger": 500}
    assert sample[gone]["missing_row"] is True
    assert report.users_checked == UserProfileStats.objects.count() + 1  # the missing row's user is checked too

    repair = run_reconciliation(fix=True, skip_sources=True)

    assert (repair.users_drifted, repair.users_fixed) == (3, 3)
    after = {
        row["profile_id"]: row
        for row in UserProfileStats.objects.values("profile_id", *COUNTER_FIELDS, "last_activity_at")
    }
    for user_id in (rich, other, gone):
        assert after[user_id] == expected[user_id]
    assert run_reconciliation(fix=False).users_drifted == 0


def test_a_run_with_repair_off_changes_nothing(season):
    m1, _ = season
    match = MatchFactory()
    record_everything()
    Match.objects.filter(pk=match.pk).update(state=Match.State.FORFEIT)
    corrupt(f"UPDATE {STATS_TABLE} SET tournaments_registered = 9 WHERE profile_id = %s", [m1.participant1.user_id])
    before = snapshot()

    report = run_reconciliation(fix=False)

    assert report.missing_events_total == 2 and report.users_drifted == 1  # it did find both problems...
    assert snapshot() == before  # ...and wrote nothing but its own run row
    assert ReconciliationRun.objects.count() == 1


def test_every_counter_and_event_type_is_compared_through_the_one_mapping(db):
    user = UserFactory()
    t0 = timezone.now() - timedelta(days=2)
    # One event of every type (compensations included) for one user: stats come from the incremental apply.
    events = tuple(
        NewEvent(
            user.pk,
            event_type,
            t0 + timedelta(minutes=i),
            "test.source",
            1,
            amount=1000 - i if event_type in COIN_EVENTS else None,
        )  # a reversal cancels less than its base
        for i, event_type in enumerate(sorted(EventType.values))
    )
    append([Derivation("test.source", 1, events)])
    assert compare_ledger_to_stats(fix=False).users_drifted == 0

    for field in (*COUNTER_FIELDS, "last_activity_at"):
        change = f"{field} = {field} + 1" if field != "last_activity_at" else f"{field} = {field} - interval '1 second'"
        corrupt(f"UPDATE {STATS_TABLE} SET {change} WHERE profile_id = %s", [user.pk])
        found = compare_ledger_to_stats(fix=True)
        assert (found.users_drifted, dict(found.field_drift), found.users_fixed) == (1, {field: 1}, 1), field
    assert compare_ledger_to_stats(fix=False).users_drifted == 0


def test_drift_above_one_percent_logs_an_error_and_raises_the_alert_gauge(db, caplog):
    users = UserFactory.create_batch(120)
    record_everything()
    run_reconciliation(fix=False, skip_sources=True)
    assert (gauge(metrics.DRIFT_ALERT), gauge(metrics.USERS_DRIFTED)) == (0, 0)

    corrupt(f"UPDATE {STATS_TABLE} SET teams_created = 1 WHERE profile_id = %s", [users[0].pk])
    with caplog.at_level(logging.WARNING, logger="stats.reconcile"):
        one = run_reconciliation(fix=False, skip_sources=True)
    assert one.users_drifted == 1 and one.drift_rate < 0.01
    assert gauge(metrics.DRIFT_ALERT) == 0 and gauge(metrics.USERS_DRIFTED) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    corrupt(f"UPDATE {STATS_TABLE} SET teams_created = 1 WHERE profile_id = %s", [users[1].pk])
    with caplog.at_level(logging.WARNING, logger="stats.reconcile"):
        two = run_reconciliation(fix=False, skip_sources=True)
    assert two.drift_rate == pytest.approx(2 / 120)
    assert gauge(metrics.DRIFT_ALERT) == 1 and gauge(metrics.DRIFT_RATIO) == pytest.approx(2 / 120)
    assert any(r.levelno == logging.ERROR and "alert threshold" in r.getMessage() for r in caplog.records)


def test_a_user_scoped_run_checks_only_that_user_and_leaves_the_fleet_gauges_alone(season):
    m1, m2 = season
    target, bystander = m1.participant1.user_id, m2.participant1.user_id
    corrupt(f"UPDATE {STATS_TABLE} SET matches_played = 7 WHERE profile_id IN (%s, %s)", [target, bystander])
    metrics.USERS_DRIFTED.set(0)

    run = run_reconciliation(fix=True, user_id=target)

    assert (run.scope, run.scope_user_id, run.sources_checked) == ("user", target, False)
    assert (run.users_checked, run.users_drifted, run.users_fixed) == (1, 1, 1)
    assert UserProfileStats.objects.get(profile_id=target).matches_played == 1
    assert UserProfileStats.objects.get(profile_id=bystander).matches_played == 7
    assert gauge(metrics.USERS_DRIFTED) == 0


def test_the_comparison_runs_a_fixed_number_of_queries_whatever_the_number_of_users(db):
    def queries_for_one_chunk() -> int:
        with CaptureQueriesContext(connection) as ctx:
            compare_ledger_to_stats(fix=False, chunk_users=10_000)
        return len(ctx.captured_queries)

    UserFactory.create_batch(3)
    record_everything()
    few = queries_for_one_chunk()
    UserFactory.create_batch(60)
    record_everything()
    corrupt(f"UPDATE {STATS_TABLE} SET achievements_count = 2", [])  # every user drifted: still no per-row query
    assert queries_for_one_chunk() == few


def test_unknown_user_and_bad_sizes_are_refused_before_anything_is_written(db):
    with pytest.raises(ReconciliationError, match="no user with id 999999"):
        run_reconciliation(user_id=999999)
    with pytest.raises(ReconciliationError, match="at least 1"):
        run_reconciliation(chunk_users=0)
    assert not ReconciliationRun.objects.exists()


def test_a_second_reconciliation_does_not_start_while_one_runs(db):
    from stats.reconcile import _RUN_LOCK_KEY

    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [_RUN_LOCK_KEY])
        with pytest.raises(ReconciliationAlreadyRunning):
            run_reconciliation()
        assert not ReconciliationRun.objects.exists()
    finally:
        holder.close()


# --- the command ---------------------------------------------------------------------------------------------------


def test_command_prints_the_report_and_fails_when_drift_remains(season, capsys):
    m1, _ = season
    corrupt(f"UPDATE {STATS_TABLE} SET matches_won = 5 WHERE profile_id = %s", [m1.participant1.user_id])

    with pytest.raises(CommandError, match="--fix"):
        call_command("reconcile_user_stats", "--skip-sources")
    out = capsys.readouterr().out
    assert "1 drifted" in out and "matches_won: 1 user(s)" in out and "matches_won 5 != 1" in out

    call_command("reconcile_user_stats", "--fix")
    out = capsys.readouterr().out
    assert "1 fixed" in out
    call_command("reconcile_user_stats")  # clean now: no error
    assert "0 drifted" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--user-id", "424242"], "no user with id 424242"),
        (["--user-id", "abc"], "--user-id: expected a positive integer, got 'abc'"),
        (["--user-id", "0"], "--user-id: expected a positive integer, got '0'"),
        (["--chunk-users", "-5"], "--chunk-users: expected a positive integer"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_command_with_wrong_arguments_gives_a_clear_error(db, args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("reconcile_user_stats", *args)
    assert not ReconciliationRun.objects.exists()


# --- concurrency ---------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_reconciliation_while_a_thread_records_events_reports_zero_drift_and_repairs_nothing(
    transactional_db, enqueued
) -> None:
    users = UserFactory.create_batch(80)
    record_everything()
    wallets = list(DeltaCrownWallet.objects.filter(profile_id__in=[u.pk for u in users]).values_list("id", flat=True))
    stop = threading.Event()
    commits: list[float] = []
    errors: list[BaseException] = []

    def recorder() -> None:
        rng = random.Random(7)
        try:
            while not stop.is_set():
                # Source rows and their events commit together (bulk_create sends no signal): the sources pass never
                # sees a row whose recording is still in flight, so "missing" must stay 0 as well.
                with transaction.atomic():
                    rows = DeltaCrownTransaction.objects.bulk_create(
                        [
                            DeltaCrownTransaction(wallet_id=w, amount=rng.choice([-30, 15, 40, 200]), reason="live")
                            for w in rng.sample(wallets, 3)
                        ]
                    )
                    record_events_for(TX_LABEL, [r.pk for r in rows])
                commits.append(time.monotonic())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=recorder, daemon=True)
    thread.start()
    try:
        time.sleep(0.2)
        runs = []
        began = time.monotonic()
        for fix in (False, True, False, True):
            runs.append(run_reconciliation(fix=fix, chunk_users=7, source_batch=50))
        ended = time.monotonic()
    finally:
        stop.set()
        thread.join(30)
    assert not errors, errors
    assert not thread.is_alive()
    assert sum(1 for t in commits if began <= t <= ended) >= 20, "the recorder must really run during reconciliation"
    for run in runs:
        assert (run.users_drifted, run.users_fixed, run.missing_events_total) == (0, 0, 0), run.field_drift
        # Until a repairing run left a watermark every user is compared; after it, the live users by their new
        # events (stats.nightly_stats), compared while the recorder goes on.
        assert run.users_checked >= 80 if run.users_appended is None else run.users_appended > 0
    assert [run.users_appended is None for run in runs] == [True, True, False, False]
    # Nothing was overwritten with a stale aggregate: quiet now, stats equal the ledger everywhere.
    final = run_reconciliation(fix=False)
    assert (final.users_drifted, final.missing_events_total) == (0, 0)
    earned = sum(UserProfileStats.objects.values_list("total_earned", flat=True))
    assert earned == sum(t for t in DeltaCrownTransaction.objects.filter(amount__gt=0).values_list("amount", flat=True))


def test_outside_a_transaction_the_two_passes_run_side_by_side_and_each_finds_and_repairs_its_own(
    transactional_db, monkeypatch
) -> None:
    # The sources pass runs in a thread of its own (its own connection) while the ledger -> stats pass runs here:
    # a signal-less match and a corrupted counter are both found and repaired in one run, and nothing is left behind.
    from stats import reconcile

    m1 = MatchFactory()
    complete_match(m1, m1.participant1)
    record_everything()
    hidden = MatchFactory()
    record_everything()
    Match.objects.filter(pk=hidden.pk).update(
        state=Match.State.COMPLETED, winner=hidden.participant1, loser=hidden.participant2, completed_at=timezone.now()
    )
    corrupt(f"UPDATE {STATS_TABLE} SET matches_won = matches_won + 5 WHERE profile_id = %s", [m1.participant1.user_id])
    threads: dict[str, str] = {}
    real_sources, real_compare = reconcile._sources_pass, reconcile.compare_ledger_to_stats

    def sources(*args, **kwargs):
        threads["sources"] = threading.current_thread().name
        time.sleep(0.3)  # still running when the stats pass starts: they overlap
        return real_sources(*args, **kwargs)

    def compare(**kwargs):
        threads["stats"] = threading.current_thread().name
        return real_compare(**kwargs)

    monkeypatch.setattr(reconcile, "_sources_pass", sources)
    monkeypatch.setattr(reconcile, "compare_ledger_to_stats", compare)
    lines: list[str] = []
    run = run_reconciliation(fix=True, full=True, progress=lines.append)

    assert threads["sources"] != threads["stats"] == threading.main_thread().name
    assert run.missing_events == {"tournaments.match": {"match_lost": 1, "match_played": 2, "match_won": 1}}
    assert (run.users_drifted, run.users_fixed) == (1, 1) and run.status == ReconciliationRun.Status.SUCCEEDED
    assert any(line.startswith("sources -> ledger") for line in lines)
    assert not [t for t in threading.enumerate() if t.name == "alongside"]
    clean = run_reconciliation(fix=False, full=True)
    assert (clean.missing_events_total, clean.users_drifted) == (0, 0)


def test_a_failing_sources_pass_beside_the_stats_pass_fails_the_run_after_both_ended(transactional_db, monkeypatch):
    from stats import reconcile

    record_everything()

    def broken(*args, **kwargs):
        raise RuntimeError("the sources pass broke")

    monkeypatch.setattr(reconcile, "_sources_pass", broken)
    with pytest.raises(RuntimeError, match="the sources pass broke"):
        run_reconciliation(fix=False)
    run = ReconciliationRun.objects.get()
    assert run.status == ReconciliationRun.Status.FAILED and "the sources pass broke" in run.error
