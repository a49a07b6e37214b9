"""One settings module; every difference between environments comes from environment variables.

The database is PostgreSQL (psycopg 3), always. With DATABASE_URL unset it is the embedded PostgreSQL server of the
checkout (project/embedded.py; `make demo`, `make run` and `make test` start it) at its default address, so a machine
with no servers can run the quick start; a DATABASE_URL of any other scheme is refused. Tasks always go to Celery
workers through the Redis broker at REDIS_URL / CELERY_BROKER_URL (`make demo` / `make run` point it at the embedded
Redis); without one, publishes fail fast
and the catch-up sweep records what they would have.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from dispatch.names import celery_routes
from project.embedded import EmbeddedStack

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw in (None, "") else int(raw)


DEBUG = env_bool("DEBUG", False)
EMBEDDED = not os.environ.get("DATABASE_URL")
# Production (a DATABASE_URL and DEBUG off) must bring its own secret; only the embedded default and DEBUG runs fall
# back to a throwaway development key.
SECRET_KEY = os.environ.get("SECRET_KEY") or ""
if not SECRET_KEY:
    if DEBUG or EMBEDDED:
        SECRET_KEY = "dev-only-insecure-key-never-used-in-production-0123456789abcdef"
    else:
        raise ImproperlyConfigured("SECRET_KEY must be set in the environment (or DEBUG=1 for local development).")

ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from our static files (no CDN)
    "esports.profiles",
    "esports.tournaments",
    "esports.economy",
    "esports.teams",
    "esports.achievements",
    "esports.moderation",
    "audit",
    "activity",
    "stats",
    "tasks",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves STATIC_ROOT (what the release step's collectstatic wrote) from the web process itself: no separate
    # static server to configure. Right after SecurityMiddleware, as whitenoise documents.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A request id (X-Request-ID in and out) and the client's network for audit events recorded during the request.
    "audit.context.RequestContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Production (a DATABASE_URL and DEBUG off) is HTTPS-only behind a TLS-terminating proxy; HTTPS_ONLY=0 turns it off
# for plain-HTTP test runs. `manage.py check --deploy` is clean with these defaults.
HTTPS_ONLY = env_bool("HTTPS_ONLY", not DEBUG and not EMBEDDED)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS_ONLY
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]  # probes and scrapers talk plain HTTP inside the network
SESSION_COOKIE_SECURE = HTTPS_ONLY
CSRF_COOKIE_SECURE = HTTPS_ONLY
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS_ONLY else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS_ONLY
SECURE_HSTS_PRELOAD = HTTPS_ONLY
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------------
# The address `python -m project.embedded env` prints (EMBEDDED_PG_PORT may move it): one place composes it.
EMBEDDED_DATABASE_URL = EmbeddedStack().database_url
DATABASE_URL = os.environ.get("DATABASE_URL") or EMBEDDED_DATABASE_URL
_DATABASE_SCHEMES = ("postgres", "postgresql", "pgsql")
if DATABASE_URL.split("://", 1)[0].lower() not in _DATABASE_SCHEMES:
    # Every write and read path speaks one SQL dialect; another database would fail later and less clearly.
    raise ImproperlyConfigured(
        f"DATABASE_URL must be a PostgreSQL URL (postgres://user:password@host:port/name), not "
        f"{DATABASE_URL.split('://', 1)[0]!r}: the project runs on PostgreSQL only. Unset it to use the embedded "
        f"server ({EMBEDDED_DATABASE_URL})."
    )
# Seconds (libpq counts whole seconds, at least 2), milliseconds; 0 means no statement timeout.
DB_CONNECT_TIMEOUT = env_int("DB_CONNECT_TIMEOUT", 3)
DB_STATEMENT_TIMEOUT_MS = env_int("DB_STATEMENT_TIMEOUT_MS", 5000)
DB_JOB_STATEMENT_TIMEOUT_MS = env_int("DB_JOB_STATEMENT_TIMEOUT_MS", 0)
# The per-game leaderboard aggregates the ledger: its statement gets its own bound, wherever it runs.
LEADERBOARD_STATEMENT_TIMEOUT_MS = env_int("LEADERBOARD_STATEMENT_TIMEOUT_MS", 3000)
# Field names redacted from audit events in addition to audit.redaction.FORBIDDEN_FIELDS (comma-separated).
AUDIT_FORBIDDEN_FIELDS = tuple(
    f.strip().lower() for f in os.environ.get("AUDIT_FORBIDDEN_FIELDS", "").split(",") if f.strip()
)
# /healthz probes the database on its own short-lived connection, never the request's (project/health.py).
HEALTHZ_DB_TIMEOUT_SECONDS = float(os.environ.get("HEALTHZ_DB_TIMEOUT_SECONDS", "0.5"))
HEALTHZ_DATABASE: dict | None = None  # None: probe DATABASES["default"]; tests point it at a hung port
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
DATABASES["default"].setdefault("OPTIONS", {})
# No dependency may hang a request: a connect timeout, and a statement timeout for web requests (a stuck lock
# must also surface as an error the task retries, never as a worker hung forever). Long jobs (the Celery worker,
# management commands) replace the statement timeout with DB_JOB_STATEMENT_TIMEOUT_MS when they start
# (project/db_timeouts.py).
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", DB_CONNECT_TIMEOUT)
DATABASES["default"]["OPTIONS"].setdefault(
    "options", f"-c lock_timeout={env_int('DB_LOCK_TIMEOUT_MS', 10000)} -c statement_timeout={DB_STATEMENT_TIMEOUT_MS}"
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"  # written by `collectstatic` in the Procfile's release step; gitignored
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names (cached forever by browsers, changed by every edit) and gzip/brotli copies, served by whitenoise.
    # Pages need the manifest collectstatic writes; with DEBUG on, Django links the unhashed files instead.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Cache (read side: lifetime stats, leaderboards) -----------------------------------------------------------
# Redis when CACHE_URL (or REDIS_URL) is set, else this process's local memory (a process without Redis). Short socket
# timeouts: a dead Redis may slow a read by a fraction of a second (it then falls back to the database), never hang it.
CACHE_URL = os.environ.get("CACHE_URL") or os.environ.get("REDIS_URL") or ""
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "project.redis_cache.RedisCache",  # one redis-py client per pool (see the module)
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": os.environ.get(
                "CACHE_KEY_PREFIX", "cache"
            ),  # shares the broker's Redis: keep apart from kombu keys
            # No retries (redis-py retries nothing unless asked): a hung Redis costs one socket timeout, and then the
            # read side skips the cache for CACHE_DOWN_PAUSE_SECONDS (stats/cache.py).
            "OPTIONS": {
                "socket_connect_timeout": float(os.environ.get("CACHE_CONNECT_TIMEOUT", "0.25")),
                "socket_timeout": float(os.environ.get("CACHE_SOCKET_TIMEOUT", "0.25")),
                "retry_on_timeout": False,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "activity-read-side"}}
CACHE_DOWN_PAUSE_SECONDS = float(os.environ.get("CACHE_DOWN_PAUSE_SECONDS", "5"))

# --- JSON API (web/api) -------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    # Reads are public; each view applies the privacy rules (activity.privacy) for the viewer it finds.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "web.api.errors.api_exception_handler",
    # Numbers as numbers: win rates and other Decimals are JSON numbers, not strings.
    "COERCE_DECIMAL_TO_STRING": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "DeltaCrown activity API",
    "DESCRIPTION": "Player activity timelines, match and tournament history, lifetime stats, leaderboards, economy "
    "summary and GDPR export. Lists are cursor-paginated (opaque `cursor`, `limit` 1-50).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery ---------------------------------------------------------------------------------------------------
# Tasks always go to a worker through this broker. A web process without one fails its publishes at once, as during
# an outage (dispatch.publish): logged, and the catch-up sweep records what they carried. Worker and beat refuse to
# start without it (project/celery.py).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or ""
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"  # beat crontabs are read in this zone: 03:00 means 03:00 UTC
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 540)
CELERY_TASK_DEFAULT_QUEUE = "events"
CELERY_TASK_CREATE_MISSING_QUEUES = False
CELERY_TASK_ROUTES = celery_routes()
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# kombu's Redis transport has no socket timeouts by default: a dead Redis would hang the publishing request.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": float(os.environ.get("BROKER_CONNECT_TIMEOUT", "0.25")),
    # Also bounds a publish to a Redis that accepts connections but does not answer (paused, failing over): it is
    # paid inside the request. The worker's BRPOP runs in the event loop, where this timeout does not apply.
    "socket_timeout": float(os.environ.get("BROKER_SOCKET_TIMEOUT", "0.25")),
    "max_retries": 0,
    "visibility_timeout": env_int("BROKER_VISIBILITY_TIMEOUT", 3600),
    "retry_on_timeout": False,
}
CELERY_BROKER_CONNECTION_TIMEOUT = float(os.environ.get("BROKER_CONNECT_TIMEOUT", "0.25"))
CELERY_TASK_PUBLISH_RETRY = False
# Celery's Django fixup closes every database connection before and after each task unless this is set (whatever
# CONN_MAX_AGE says): a new PostgreSQL connection per task. With it, the worker reconnects every N tasks, and
# tasks/recording.py drops connections that broke or outlived CONN_MAX_AGE around each task, as Django does per request.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False


def _redacted(url: str) -> str:
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


# One line naming the database and task backend in use; the commands that use them print it.
_db = DATABASES["default"]
_DATABASE_DESCRIPTION = "postgresql {}:{}/{}{}".format(
    _db.get("HOST") or "localhost",
    _db.get("PORT") or 5432,
    _db["NAME"],
    " (embedded)" if DATABASE_URL == EMBEDDED_DATABASE_URL else "",
)
BACKENDS_DESCRIPTION = "database: {}; tasks: {}".format(
    _DATABASE_DESCRIPTION,
    f"Celery workers via {_redacted(CELERY_BROKER_URL)}"
    if CELERY_BROKER_URL
    else "no broker configured (publishes fail fast; the catch-up sweep records)",
)

# --- Activity ledger --------------------------------------------------------------------------------------------
# How the receivers hand a committed change to the worker. "batch" (default): the row goes on a Redis list that a
# drain task records many rows per transaction (tasks/batching.py) - one commit per row tops out near 250 events/s on
# this machine kind, batches reach thousands. "task": one record_source_change task per saved row.
ACTIVITY_ENQUEUE_MODE = os.environ.get("ACTIVITY_ENQUEUE_MODE", "batch")
# Batch mode's sender thread waits this long after a wake-up before pushing (tasks/handoff.py): fewer, larger pushes
# under load; each hand-off reaches Redis at most this much later.
ACTIVITY_HANDOFF_GATHER_MS = env_int("ACTIVITY_HANDOFF_GATHER_MS", 2)
if ACTIVITY_ENQUEUE_MODE not in {"task", "batch"}:
    raise ImproperlyConfigured(f"ACTIVITY_ENQUEUE_MODE must be 'task' or 'batch', not {ACTIVITY_ENQUEUE_MODE!r}.")
ACTIVITY_METADATA_MAX_BYTES = env_int("ACTIVITY_METADATA_MAX_BYTES", 4096)
# A recording transaction commits without waiting for its WAL flush (see activity/recording.py: it only writes what the
# source tables, committed durably, imply; the sweep re-derives what a server crash loses). Off: one fsync per task.
ACTIVITY_ASYNC_COMMIT = env_bool("ACTIVITY_ASYNC_COMMIT", True)
# /metrics: a scrape must send "Authorization: Bearer <METRICS_TOKEN>". Unset, /metrics answers 403 unless DEBUG is on
# (`check --deploy` and so the release step fail first). The multiprocess directory that makes web's /metrics show
# every process's work is PROMETHEUS_MULTIPROC_DIR, read by prometheus_client itself (project/metrics_dir.py).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# Backfill (issue 4): chunk size bounds (a chunk is one transaction; small enough never to hold up live recording)
# and how long a running backfill may go without a committed chunk before it is re-enqueued from its cursor.
# 5,000 rows / 20,000 events: the per-chunk costs (one counter UPDATE per touched user and scope, the lane's row,
# COMMIT) halve per event against 2,000 / 10,000 (issue 19), while a chunk still commits within a few seconds on a
# busy machine (it holds its users' stats rows that long).
BACKFILL_DEFAULT_BATCH_SIZE = env_int("BACKFILL_DEFAULT_BATCH_SIZE", 5000)
BACKFILL_MAX_BATCH_SIZE = env_int("BACKFILL_MAX_BATCH_SIZE", 10000)
# A chunk takes fewer rows than the batch size when its rows imply many events (e.g. one per tournament entrant).
BACKFILL_MAX_EVENTS_PER_CHUNK = env_int("BACKFILL_MAX_EVENTS_PER_CHUNK", 20000)
BACKFILL_STALE_SECONDS = env_int("BACKFILL_STALE_SECONDS", 300)
# Catch-up sweep: rescan rows changed since the watermark minus this overlap (rows committed late by long
# transactions), leave rows younger than the grace period to their live task, and start this far back when a source
# has no watermark yet (older history is the backfill's job).
ACTIVITY_SWEEP_OVERLAP_SECONDS = env_int("ACTIVITY_SWEEP_OVERLAP_SECONDS", 120)
ACTIVITY_SWEEP_GRACE_SECONDS = env_int("ACTIVITY_SWEEP_GRACE_SECONDS", 15)
ACTIVITY_SWEEP_INITIAL_LOOKBACK_SECONDS = env_int("ACTIVITY_SWEEP_INITIAL_LOOKBACK_SECONDS", 3600)
ACTIVITY_SWEEP_BATCH_SIZE = env_int("ACTIVITY_SWEEP_BATCH_SIZE", 1000)
# Rows per source per sweep run: a bigger backlog (bulk import, long outage) is swept a bounded slice a minute.
ACTIVITY_SWEEP_MAX_ROWS_PER_RUN = env_int("ACTIVITY_SWEEP_MAX_ROWS_PER_RUN", 50000)
# The nightly reconciliation re-derives the rows changed since its last repairing run plus one rolling slice of every
# source table: N slices, so every source row is re-derived at least once every N successful nightly runs
# (stats.nightly_sources; `reconcile_user_stats --full` re-derives everything at once).
RECONCILE_SLICES = env_int("RECONCILE_SLICES", 7)
# Processes the nightly sources pass deals its chunks to (stats.nightly_lanes): deriving rows is Python, one core per
# process; 2 on the 2-core machines this runs on.
RECONCILE_LANES = env_int("RECONCILE_LANES", 2)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
