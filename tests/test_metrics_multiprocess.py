"""Metrics are true across processes: what a real Celery worker (prefork pool) and a management command count shows
on web's /metrics, through the directory scripts/with-metrics-dir sets up as the Procfile runs it; a deploy's reset
empties the counters and keeps the last reconciliation's facts; /metrics needs its token with DEBUG off."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from activity.models import UserActivity
from esports.economy.models import DeltaCrownTransaction
from project import metrics_dir
from tasks.recording import record_source_change
from tests.conftest import wait_until
from tests.factories import TransactionFactory, UserFactory
from tests.prefork_worker import PreforkWorker
from tests.private_services import subprocess_database_url

ROOT = Path(__file__).resolve().parent.parent
WRAPPER = str(ROOT / "scripts" / "with-metrics-dir")
TOKEN = "multiprocess-scrape-token"
COINS = DeltaCrownTransaction._meta.label_lower


@pytest.fixture
def shared_dir(tmp_path, monkeypatch, settings):
    """The host's metrics directory, as web sees it: this test process serves /metrics from it."""
    path = tmp_path / "metrics"
    monkeypatch.setenv(metrics_dir.ENV, str(path))
    settings.METRICS_TOKEN = TOKEN
    return path


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def with_venv_on_path() -> dict[str, str]:
    """The Procfile's commands (`python`, `celery`, `gunicorn`) resolve to this venv's."""
    return {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_every_procfile_process_shares_the_metrics_directory_and_release_resets_it():
    processes = procfile()
    assert set(processes) == {"release", "web", "worker", "beat"}
    for name, line in processes.items():
        assert line.startswith("scripts/with-metrics-dir "), name
    assert processes["release"].startswith("scripts/with-metrics-dir --reset ")
    assert "--config python:project.gunicorn_conf" in processes["web"]  # child_exit -> mark_process_dead


def recorded(event_type: str) -> tuple[str, tuple]:
    return ("activity_events_recorded_total", (("event_type", event_type), ("origin", "live")))


@pytest.mark.integration
@pytest.mark.slow
def test_events_recorded_by_a_real_worker_process_show_on_web_metrics(
    transactional_db, enqueued, only_our_worker_consumes_events, shared_dir, client, tmp_path
):
    rows = [TransactionFactory(amount=10 + i) for i in range(3)]  # coins_earned, one per row
    shared_dir.mkdir()
    assert recorded("coins_earned") not in scrape(client)

    # The Procfile's own worker line (prefork pool, both queues), with this test's directory instead of the host's.
    worker = PreforkWorker(
        tmp_path / "worker.log",
        command=procfile()["worker"],
        WORKER_CONCURRENCY="1",
        **{metrics_dir.ENV: str(shared_dir)},
        **with_venv_on_path(),
    )
    try:
        for row in rows:
            record_source_change.apply_async((COINS, row.pk), retry=False)
        wait_until(
            lambda: UserActivity.objects.filter(source_model=COINS).count() == 3,
            timeout=60,
            message="the worker to record the rows",
        )
        samples = wait_until(
            lambda: (s := scrape(client)).get(recorded("coins_earned")) == 3 and s,
            timeout=10,
            message="web's /metrics to show the worker's events",
        )
    except BaseException:
        print(f"--- worker log\n{worker.output()[-4000:]}")
        raise
    finally:
        worker.stop()
    assert samples[("activity_recording_lag_seconds_count", (("origin", "live"),))] == 3
    written_by = {name.rsplit("_", 1)[1].removesuffix(".db") for name in os.listdir(shared_dir)}
    assert str(os.getpid()) not in written_by  # the figures come from the worker's files, not from this process


def _command(shared_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        metrics_dir.ENV: str(shared_dir),
        **with_venv_on_path(),
    }
    return subprocess.run([WRAPPER, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.integration
def test_a_management_commands_figures_show_on_web_metrics_and_a_reset_keeps_only_the_last_facts(
    transactional_db, enqueued, shared_dir, client
):
    user = UserFactory()
    TransactionFactory(wallet=user.profile.wallet, amount=25)  # never recorded: reconciliation finds it missing

    result = _command(shared_dir, sys.executable, "manage.py", "reconcile_user_stats", "--fix")
    assert result.returncode == 0, result.stdout + result.stderr
    samples = scrape(client)
    missing = ("stats_reconcile_missing_events_total", (("event_type", "coins_earned"), ("source", COINS)))
    assert samples[missing] >= 1
    last_success = samples[("stats_reconcile_last_success_timestamp_seconds", ())]
    assert last_success > 0
    # The economy pass of the same run, counted in the command's process: the wallet's caches miss the 25 coins.
    economy_drift = ("stats_economy_wallets_drifted", (("kind", "wallet"),))
    assert samples[economy_drift] == 1

    result = _command(shared_dir, "--reset", "true")  # the release step
    assert result.returncode == 0, result.stderr
    samples = scrape(client)
    assert missing not in samples  # counters restart at the deploy (Prometheus reads a counter reset)
    assert samples[("stats_reconcile_last_success_timestamp_seconds", ())] == last_success  # ReconciliationOverdue
    assert samples[economy_drift] == 1  # a fact about the database: DeltaCoinWalletDrift stays until the next run
    assert os.listdir(shared_dir) == [metrics_dir.CARRIED_OVER_FILE]  # stays quiet


def test_metrics_are_refused_with_debug_off_and_no_token(db, client, settings):
    settings.DEBUG, settings.METRICS_TOKEN = False, ""
    assert client.get("/metrics").status_code == 403
    settings.DEBUG = True  # a developer's machine
    assert client.get("/metrics").status_code == 200


def test_production_checks_fail_without_a_metrics_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "METRICS_TOKEN")}
    env.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",
        REDIS_URL="redis://127.0.0.1:6379/0",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "ERROR"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "metrics.E001" in result.stderr + result.stdout


def test_production_checks_warn_when_processes_do_not_share_a_metrics_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", metrics_dir.ENV)}
    env.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",
        REDIS_URL="redis://127.0.0.1:6379/0",
        METRICS_TOKEN="t",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "metrics.W001" in result.stderr + result.stdout
