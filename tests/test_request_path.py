"""The request path: saving a source row only schedules an enqueue for after the commit; the request's transaction
writes nothing to the ledger or the stats, and a broker outage neither fails nor slows the request."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from urllib.parse import urlsplit

import psycopg
import pytest
from django.db import connection, transaction
from django.db.models.signals import post_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from activity.models import UserActivity
from activity.sources import SOURCES
from dispatch.publish import reset_pause
from esports.moderation.models import Dispute
from esports.tournaments.models import Match
from monitoring import metrics
from stats.models import UserProfileStats
from tasks import enqueue
from tests.factories import (
    MatchFactory,
    RegistrationFactory,
    TeamFactory,
    TeamMembershipFactory,
    TournamentResultFactory,
    TransactionFactory,
    UserAchievementFactory,
    UserFactory,
    complete_match,
)
from tests.ledger_helpers import LEDGER_TABLE, STATS_TABLE, counters
from tests.private_services import (
    ROOT,
    BlackHoleListener,
    PrivateRedis,
    broker_at,
    run_outage_probe,
    subprocess_database_url,
)

WRITE = re.compile(r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)\"?", re.IGNORECASE)


def written_tables(queries) -> set[str]:
    return {m.group(2) for q in queries for m in [WRITE.match(q["sql"])] if m}


def match_change_form(match: Match, winner) -> dict:
    now = timezone.localtime()
    loser = match.participant2 if winner.pk == match.participant1_id else match.participant1
    return {
        "tournament": match.tournament_id,
        "round": match.round,
        "match_num": "",
        "participant1": match.participant1_id,
        "participant2": match.participant2_id,
        "winner": winner.pk,
        "loser": loser.pk,
        "state": Match.State.COMPLETED,
        "score": "13-9",
        "completed_at_0": now.strftime("%Y-%m-%d"),
        "completed_at_1": now.strftime("%H:%M:%S"),
    }


# --- receivers ------------------------------------------------------------------------------------------------


def test_every_source_model_has_a_receiver():
    for kind in SOURCES.values():
        assert post_save.has_listeners(kind.model), kind.label


@pytest.mark.django_db
def test_saving_each_source_kind_enqueues_its_label_and_id_after_commit(enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        user = UserFactory()
        rows = [
            user.profile,
            TeamFactory(created_by=user),
            TeamMembershipFactory(user=user),
            RegistrationFactory(user=user),
            MatchFactory(),
            TournamentResultFactory(),
            TransactionFactory(),
            UserAchievementFactory(user=user),
            Dispute.objects.create(match=MatchFactory(), filed_by=user, reason="x", match_state_before="completed"),
        ]
    for row in rows:
        assert (row._meta.label_lower, row.pk) in enqueued
    assert {label for label, _ in enqueued} == set(SOURCES)


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_enqueues_nothing(enqueued):
    match = MatchFactory()
    enqueued.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        complete_match(match, match.participant1)
        raise RuntimeError("the request failed")
    assert enqueued == []


# --- the request writes nothing to the ledger or stats ------------------------------------------------------


@pytest.mark.django_db
def test_saving_a_match_in_a_request_writes_nothing_to_the_ledger_or_stats(
    admin_client, django_capture_on_commit_callbacks
):
    match = MatchFactory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks, CaptureQueriesContext(connection) as queries:
        response = admin_client.post(
            f"/admin/tournaments/match/{match.pk}/change/", match_change_form(match, match.participant1)
        )
    assert response.status_code == 302, response.content[:2000]
    assert Match.objects.get(pk=match.pk).state == Match.State.COMPLETED
    tables = written_tables(queries.captured_queries)
    assert "tournaments_match" in tables  # the capture sees the request's writes...
    assert not tables & {LEDGER_TABLE, STATS_TABLE}  # ...and none of them touches the ledger or the stats
    assert [(cb.func.__name__, cb.args) for cb in callbacks] == [
        ("enqueue_source_change", ("tournaments.match", match.pk))
    ]


@pytest.mark.integration
def test_a_request_returns_before_recording_and_the_worker_records_after_it(live_worker, tracker, admin_client):
    match = MatchFactory()
    tracker.wait_idle()
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.post(
            f"/admin/tournaments/match/{match.pk}/change/", match_change_form(match, match.participant2)
        )
    assert response.status_code == 302
    assert not written_tables(queries.captured_queries) & {LEDGER_TABLE, STATS_TABLE}
    tracker.wait_idle()
    assert (counters(match.participant2.user)["matches_won"], counters(match.participant1.user)["matches_lost"]) == (
        1,
        1,
    )


@pytest.mark.django_db(transaction=True)
def test_the_benchmarks_sync_baseline_records_inline_after_the_commit_through_the_same_service(enqueued):
    """bench/sync_recording.py (the seeds' way, the benchmarks' baseline; no production setting) records right after
    the commit, never inside the request's transaction. (`enqueued` keeps the setup's rows off the session worker.)"""
    from bench import sync_recording

    match = MatchFactory()
    sync_recording.enable()
    try:
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            complete_match(match, match.participant1)
            in_transaction = len(queries.captured_queries)
    finally:
        sync_recording.disable()
    assert not sync_recording.enabled()
    assert not written_tables(queries.captured_queries[:in_transaction]) & {LEDGER_TABLE, STATS_TABLE}
    assert LEDGER_TABLE in written_tables(queries.captured_queries[in_transaction:])  # recorded right after the commit
    assert UserActivity.objects.filter(source_model="tournaments.match", source_id=match.pk).count() == 4
    assert UserProfileStats.objects.get(profile_id=match.participant1.user_id).matches_won == 1


# --- broker down ------------------------------------------------------------------------------------------------


@pytest.fixture
def broker_down(monkeypatch, settings):
    """Publishing goes to a broker that accepts connections and never answers (a hung Redis); per-row task mode
    (batch mode's outage path is tested in test_batched_enqueue.py). Returns the listener: `.accepted` counts the
    publish attempts that reached the network."""
    settings.ACTIVITY_ENQUEUE_MODE = "task"
    with BlackHoleListener() as hung, broker_at(monkeypatch, f"redis://127.0.0.1:{hung.port}/0"):
        yield hung


def test_a_failed_publish_is_logged_with_the_ids_and_never_raised(broker_down, caplog):
    started = time.monotonic()
    enqueue.enqueue_source_change("tournaments.match", 4242)
    assert time.monotonic() - started < 2.0  # one short socket timeout, no retries
    assert broker_down.accepted == 1
    assert any("enqueue failed for tournaments.match id=4242" in r.getMessage() for r in caplog.records)


def test_after_a_failed_publish_further_enqueues_are_skipped_and_logged_for_a_pause(broker_down, caplog):
    failures = metrics.ENQUEUE_FAILURES.labels(source="economy.deltacrowntransaction")._value.get()
    enqueue.enqueue_source_change("tournaments.match", 1)
    enqueue.enqueue_source_change("economy.deltacrowntransaction", 2)
    assert broker_down.accepted == 1  # a hung broker costs one socket timeout per pause, not one per saved row
    assert any("enqueue skipped for economy.deltacrowntransaction id=2" in r.getMessage() for r in caplog.records)
    assert metrics.ENQUEUE_FAILURES.labels(source="economy.deltacrowntransaction")._value.get() == failures + 1
    reset_pause()  # the pause is over
    enqueue.enqueue_source_change("tournaments.match", 3)
    assert broker_down.accepted == 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("outage", ["stopped", "hung"])
def test_saving_a_match_still_succeeds_quickly_with_redis_stopped(admin_user, enqueued, capsys, outage):
    """A private redis-server is started, a subprocess web process publishes through it once, then the server is
    stopped (connections refused) or hung (SIGSTOP: connections accepted, never answered), and the same process saves
    the match and posts it through the admin: both succeed quickly and the failed enqueues are logged with the ids.
    The shared Redis is never touched."""
    match = MatchFactory()
    result, err = run_outage_probe(match.pk, admin_user.username, outage)
    with capsys.disabled():
        print(
            f"\n[broker {outage}] save+commit {result['save_seconds'] * 1000:.1f} ms, "
            f"admin request {result['request_seconds'] * 1000:.1f} ms (status {result['status']})"
        )
    assert result["saved_state"] == Match.State.COMPLETED
    assert result["save_seconds"] < 1.0
    assert result["status"] == 302 and result["winner_after_request"] == match.participant2_id
    assert result["request_seconds"] < 1.0
    assert err.count(f"enqueue failed for tournaments.match id={match.pk}") == 1, err[-3000:]
    assert err.count(f"enqueue skipped for tournaments.match id={match.pk}") == 1, err[-3000:]  # the admin request
    assert not UserActivity.objects.filter(source_model="tournaments.match", source_id=match.pk).exists()


@pytest.mark.slow
def test_the_request_path_benchmark_runs_to_its_report(tmp_path):
    """bench/request_path.py, scaled down to a few rounds, prints every figure it promises: it once bound its list of
    publish timings to the name of the publish function it timed and crashed before the report. It gets a database
    of its own (dropped after) and a private redis-server, since it purges the broker's queues."""
    bench_db = f"{connection.settings_dict['NAME']}_reqbench"
    server = urlsplit(subprocess_database_url())
    env = {
        **os.environ,
        "DATABASE_URL": server._replace(path="/postgres").geturl(),
        "BENCH_DATABASE_NAME": bench_db,
    }
    try:
        with PrivateRedis() as redis:
            env["REDIS_URL"] = env["CELERY_BROKER_URL"] = env["CACHE_URL"] = redis.url
            result = subprocess.run(
                [sys.executable, str(ROOT / "bench" / "request_path.py"), "--rounds", "3", "--warmup", "1"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
    finally:
        with psycopg.connect(server._replace(path="/postgres").geturl(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
    report = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, report
    for line in ("save, no receivers", "save + async enqueue (production)", "one bare Celery publish", "ratios:"):
        assert line in result.stdout, report
    for line in (
        "4 threads committing at once",
        "save + push in the request (before)",
        "waiting (wall - CPU",
        "pushes",
    ):
        assert line in result.stdout, report  # the concurrent run and its breakdown (issue 19's where-the-tail-is)
