"""Operating signals: /metrics exposes the series after activity (also aggregated across processes), task failures
and retries are counted from Celery's signals, and /healthz answers 503 naming the broker while a real Redis is down
and 200 once it is back (a private redis-server: the shared one is never touched)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from activity.recording import record_events_for
from project.celery import app as celery_app
from tests.conftest import wait_until
from tests.factories import UserFactory
from tests.private_services import PrivateRedis, free_port

ROOT = Path(__file__).resolve().parent.parent


SCRAPE_TOKEN = "scrape-token-for-tests"


def scrape(client) -> dict[tuple[str, tuple], float]:
    """A scrape as Prometheus makes it (the caller sets settings.METRICS_TOKEN = SCRAPE_TOKEN)."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def sample(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- /metrics ---------------------------------------------------------------------------------------------------


def test_the_metrics_endpoint_exposes_events_recorded_and_lag_after_activity(db, client, settings):
    settings.METRICS_TOKEN = SCRAPE_TOKEN
    user = UserFactory()
    before = scrape(client)

    result = record_events_for("profiles.userprofile", [user.pk])

    after = scrape(client)
    assert len(result.inserted) == 1
    name = "activity_events_recorded_total"
    assert (
        sample(after, name, event_type="profile_created", origin="live")
        == sample(before, name, event_type="profile_created", origin="live") + 1
    )
    lag = "activity_recording_lag_seconds_count"
    assert sample(after, lag, origin="live") == sample(before, lag, origin="live") + 1
    for series in ("stats_users_drifted", "stats_drift_ratio", "stats_drift_alert", "activity_backfill_progress_ratio"):
        assert (series, ()) in after  # gauges are exposed before their first run


def test_the_metrics_endpoint_can_require_a_bearer_token(db, client, settings):
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_in_multiprocess_mode_the_endpoint_aggregates_every_process(tmp_path):
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "METRICS_TOKEN": SCRAPE_TOKEN,
    }
    worker = (
        "from monitoring import metrics\n"
        "metrics.EVENTS_RECORDED.labels(event_type='match_won', origin='live').inc(3)\n"
        "metrics.TASK_FAILURES.labels(task='tasks.x').inc()\n"
    )
    for _ in range(2):  # two processes (say, two Celery worker children), each writing its own file
        subprocess.run([sys.executable, "-c", worker], env=env, cwd=ROOT, check=True, timeout=60)
    web = (
        "import django; django.setup()\n"
        "from django.test import RequestFactory\n"
        "from project.metrics_view import metrics\n"
        f"request = RequestFactory().get('/metrics', HTTP_AUTHORIZATION='Bearer {SCRAPE_TOKEN}')\n"
        "print(metrics(request).content.decode())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", web], env=env, cwd=ROOT, check=True, timeout=60, capture_output=True, text=True
    ).stdout

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(out)
        for s in family.samples
    }
    assert samples[("activity_events_recorded_total", (("event_type", "match_won"), ("origin", "live")))] == 6
    assert samples[("activity_task_failures_total", (("task", "tasks.x"),))] == 2


# --- task failures and retries ----------------------------------------------------------------------------------


@celery_app.task(name="tests.monitoring.always_fails")
def always_fails() -> None:
    raise ValueError("boom")


@celery_app.task(
    name="tests.monitoring.retries_once", bind=True, autoretry_for=(KeyError,), max_retries=1, default_retry_delay=0
)
def retries_once(self) -> None:
    raise KeyError("transient")


@pytest.mark.integration
def test_task_failures_and_retries_are_counted_through_the_real_worker(live_worker):
    from monitoring import metrics

    def failures(name: str) -> float:
        return metrics.TASK_FAILURES.labels(task=name)._value.get()

    def retries(name: str) -> float:
        return metrics.TASK_RETRIES.labels(task=name)._value.get()

    base = failures(always_fails.name), failures(retries_once.name), retries(retries_once.name)
    always_fails.apply_async()
    retries_once.apply_async()

    wait_until(lambda: failures(always_fails.name) == base[0] + 1, message="the failure to be counted")
    wait_until(lambda: failures(retries_once.name) == base[1] + 1, message="the final failure after the retry")
    assert retries(retries_once.name) == base[2] + 1


# --- /healthz ---------------------------------------------------------------------------------------------------


def test_healthz_is_200_with_the_database_and_broker_up(db, client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["failed"] == []
    assert body["checks"] == {"database": {"ok": True}, "broker": {"ok": True}}


def test_healthz_without_a_broker_url_is_503_naming_the_broker_not_configured(db, client, settings):
    settings.CELERY_BROKER_URL = ""  # nothing runs tasks in this process: without a broker nothing gets recorded
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"ok": False, "detail": "not configured"}


def test_healthz_is_503_naming_the_broker_while_redis_is_down_and_200_when_it_is_back(db, client, settings):
    redis = PrivateRedis()
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{redis.port}/0"
    redis.start()
    try:
        assert client.get("/healthz").status_code == 200

        redis.stop()
        began = time.monotonic()
        down = client.get("/healthz")
        assert time.monotonic() - began < 3  # a dead broker must not hang the probe
        assert down.status_code == 503
        body = down.json()
        assert body["status"] == "unavailable" and body["failed"] == ["broker"]
        assert body["checks"]["database"] == {"ok": True}
        assert body["checks"]["broker"] == {"ok": False, "error": "unavailable"}  # no host or port in public

        redis.start()
        back = client.get("/healthz")
        assert back.status_code == 200 and back.json()["failed"] == []
    finally:
        redis.stop()


def test_healthz_is_503_naming_the_database_when_it_is_unreachable():
    # A separate process whose DATABASE_URL points at a closed port (the test database itself is never touched).
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/nothing_here",
        "DJANGO_SETTINGS_MODULE": "project.settings",
    }
    code = (
        "import django, json; django.setup()\n"
        "from django.test import RequestFactory\n"
        "from project.health import healthz\n"
        "r = healthz(RequestFactory().get('/healthz'))\n"
        "print(r.status_code, r.content.decode())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    status, body = out.split(" ", 1)
    assert status == "503"
    assert '"failed": ["database"]' in body


# --- dashboard and alert rules ----------------------------------------------------------------------------------


def _exposed_series_names() -> set[str]:
    from prometheus_client.metrics import MetricWrapperBase

    from monitoring import metrics

    names = set()
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            base, kind = metric._name, metric._type
            assert kind is not None, f"{base}: only the abstract base has no type"
            names |= {
                "counter": {f"{base}_total"},
                "gauge": {base},
                "histogram": {f"{base}_bucket", f"{base}_count", f"{base}_sum"},
            }[kind]
    return names


def _referenced_series(text: str) -> set[str]:
    import re

    return set(re.findall(r"\b((?:activity|stats|audit)_[a-z0-9_]+)", text))


def test_the_dashboard_and_alert_rules_query_only_series_the_code_exposes():
    import json

    import yaml

    exposed = _exposed_series_names()
    rules = yaml.safe_load((ROOT / "monitoring" / "alerts.yml").read_text())["groups"][0]["rules"]
    alert_exprs = " ".join(str(rule["expr"]) for rule in rules)
    dashboard = json.loads((ROOT / "monitoring" / "grafana-dashboard.json").read_text())
    panel_exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))

    assert _referenced_series(alert_exprs) <= exposed, _referenced_series(alert_exprs) - exposed
    assert _referenced_series(panel_exprs) <= exposed, _referenced_series(panel_exprs) - exposed
    assert {r["alert"] for r in rules} >= {
        "StatsDriftAboveOnePercent",
        "RecordingLagP99Above60s",
        "CatchUpSweepFindingEvents",
        "TaskFailureRateHigh",
    }
