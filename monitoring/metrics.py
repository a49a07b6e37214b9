"""Prometheus metrics of the ledger and projection. A leaf module: it imports nothing from the project.

Multiprocess-safe: when PROMETHEUS_MULTIPROC_DIR is set (gunicorn workers, Celery worker processes), prometheus_client
writes per-process files that the /metrics view aggregates.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_RECORDED = Counter(
    "activity_events_recorded_total",
    "Events inserted into the ledger.",
    ["event_type", "origin"],
)
RECORDING_LAG = Histogram(
    "activity_recording_lag_seconds",
    "Source time -> recorded time of events recorded live or by the catch-up sweep.",
    ["origin"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600),
)
ENQUEUE_FAILURES = Counter(
    "activity_enqueue_failures_total",
    "Publishes of a recording task that failed (broker down); the sweep catches up.",
    ["source"],
)
PUBLISH_FAILURES = Counter(
    "dispatch_publish_failures_total",
    "Task publishes the broker did not take (or skipped during the pause after such a failure).",
    ["task"],
)
TASK_FAILURES = Counter("activity_task_failures_total", "Celery tasks that failed for good.", ["task"])
TASK_RETRIES = Counter("activity_task_retries_total", "Celery task retries.", ["task"])
SWEEP_FINDINGS = Counter(
    "activity_catchup_events_found_total",
    "Events that only the catch-up sweep recorded (their live task was lost).",
    ["event_type"],
)
BACKFILL_PROGRESS = Gauge(
    "activity_backfill_progress_ratio",
    "Progress of the running backfill, 0..1.",
    multiprocess_mode="mostrecent",
)
BACKFILL_EVENTS = Counter("activity_backfill_events_created_total", "Events created by backfill runs.")
USERS_DRIFTED = Gauge(
    "stats_users_drifted",
    "Users whose stats differed from the ledger in the last reconciliation.",
    multiprocess_mode="mostrecent",
)
DRIFT_RATIO = Gauge(
    "stats_drift_ratio",
    "Drifted users / users checked in the last reconciliation.",
    multiprocess_mode="mostrecent",
)
DRIFT_ALERT = Gauge(
    "stats_drift_alert",
    "1 when the last reconciliation found drift above the alert threshold.",
    multiprocess_mode="mostrecent",
)
RECONCILE_MISSING_EVENTS = Counter(
    "stats_reconcile_missing_events_total",
    "Events the sources -> ledger pass found missing from the ledger.",
    ["source", "event_type"],
)
RECONCILE_DURATION = Gauge(
    "stats_reconcile_duration_seconds",
    "Duration of the last reconciliation.",
    multiprocess_mode="mostrecent",
)
RECONCILE_LAST_SUCCESS = Gauge(
    "stats_reconcile_last_success_timestamp_seconds",
    "Unix time the last full reconciliation finished.",
    multiprocess_mode="mostrecent",
)
STATS_RECOMPUTED = Counter("stats_recomputed_users_total", "Users whose stats the stale-stats job recomputed.")
AUDIT_VERIFY_OK = Gauge(
    "audit_verify_ok",
    "1 when the last audit_verify_integrity run found the chain intact, 0 when it found a broken row.",
    multiprocess_mode="mostrecent",
)
AUDIT_VERIFY_ROWS = Gauge(
    "audit_verify_rows_checked",
    "Rows the last audit chain verification checked.",
    multiprocess_mode="mostrecent",
)
AUDIT_VERIFY_DURATION = Gauge(
    "audit_verify_duration_seconds",
    "Duration of the last audit chain verification.",
    multiprocess_mode="mostrecent",
)
AUDIT_VERIFY_LAST_RUN = Gauge(
    "audit_verify_last_run_timestamp_seconds",
    "Unix time the last audit chain verification finished (intact or not).",
    multiprocess_mode="mostrecent",
)
POISON_ROWS = Counter(
    "activity_poison_rows_total",
    "Source rows set aside as poison rows (each failed attempt counts).",
    ["source", "origin"],
)
POISON_UNRESOLVED = Gauge(
    "activity_poison_rows_unresolved",
    "Unresolved poison rows, as counted by the last poison retry run.",
    multiprocess_mode="mostrecent",
)
ECONOMY_WALLETS_DRIFTED = Gauge(
    "stats_economy_wallets_drifted",
    "Wallets differing from their transactions in the last full reconciliation, per kind "
    "(wallet caches, profile mirror, ledger coin events, stats totals).",
    ["kind"],
    multiprocess_mode="mostrecent",
)
ECONOMY_WALLETS_UNREPAIRABLE = Gauge(
    "stats_economy_wallets_unrepairable",
    "Wallets whose transactions overdraw (written by raw SQL), found by the last full reconciliation.",
    multiprocess_mode="mostrecent",
)

# Ratings (issue 17)
RATING_REPLAY_SECONDS = Histogram(
    "stats_rating_replay_seconds",
    "Duration of one rating replay run of a game (every pass until the game is idle again).",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 900),
)
RATING_SWITCH_SECONDS = Histogram(
    "stats_rating_switch_seconds",
    "Duration of a rating replay's switch: the transaction that moves its draft into the published ratings (holding "
    "the game's row, which live updates of that game wait for).",
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
RATING_REPLAY_LAG = Gauge(
    "stats_rating_replay_lag_seconds",
    "Age of the oldest pending replay mark (a correction or late match not yet reflected in the ratings).",
    multiprocess_mode="mostrecent",
)
RATING_LIVE_UPDATES = Counter(
    "stats_rating_live_updates_total",
    "Recordings of match outcomes handled by the rating projection: O(1) in the recording or marked for replay.",
    ["path"],
)
